"""Book scenarios: every order type and edge, with the exact events and book they must produce.

Each test runs against both engines (the ``make_engine`` fixture is parametrized). Expected
events are written out by hand from the documented semantics, never captured from an engine.
Instrument 1 is AAPL (tick 100, lot 1); ``P`` is its reference price.
"""

from __future__ import annotations

import pytest

from matching.types import (
    Accepted,
    BookDelta,
    Cancelled,
    CancelReason,
    CommandKind,
    Depth,
    Done,
    Expired,
    MassCancelReport,
    OrderView,
    Rejected,
    RejectReason,
    Replaced,
    SessionEndReport,
    StpMode,
    TopOfBook,
    Trade,
)
from tests.support import (
    AAPL,
    BUY,
    DAY,
    FOK,
    GTC,
    IOC,
    MSFT,
    SELL,
    TICK,
    M,
    P,
    Session,
    assert_events,
)

STP = CancelReason.SELF_TRADE_PREVENTION
REMAINDER = CancelReason.IMMEDIATE_REMAINDER
UNKNOWN = RejectReason.UNKNOWN_ORDER


@pytest.fixture
def session(make_engine) -> Session:
    """An equity engine (AAPL=1, MSFT=2) of each implementation, commands aimed at AAPL by default."""
    return Session(make_engine())


def ids(session: Session, instrument_id: int = AAPL) -> list[int]:
    """Resting order ids in priority order (bids best first, then asks best first)."""
    return [o.order_id for o in session.engine.orders(instrument_id)]


def plain(order_id: int, account: int, side: int, price: int, remaining: int, tif: int = GTC) -> OrderView:
    return OrderView(order_id, account, side, price, remaining, remaining, 0, tif, 0, StpMode.NONE)


# -- RESTING AND MARKET DATA --------------------------------------------------------------------


def test_resting_orders_publish_level_deltas_and_top_of_book_only_when_the_best_changes(session):
    first = session.sell(P + TICK, 100, account=1)
    assert_events(first.events, [
        Accepted(first.seq, AAPL, first.order_id, 1, SELL, P + TICK, 100),
        BookDelta(first.seq, AAPL, SELL, P + TICK, 100),
        TopOfBook(first.seq, AAPL, 0, 0, P + TICK, 100),
    ])
    joins = session.sell(P + TICK, 50, account=2)
    assert_events(joins.events, [
        Accepted(joins.seq, AAPL, joins.order_id, 2, SELL, P + TICK, 50),
        BookDelta(joins.seq, AAPL, SELL, P + TICK, 150),
        TopOfBook(joins.seq, AAPL, 0, 0, P + TICK, 150),
    ])
    behind = session.sell(P + 2 * TICK, 70, account=1)
    assert_events(behind.events, [
        Accepted(behind.seq, AAPL, behind.order_id, 1, SELL, P + 2 * TICK, 70),
        BookDelta(behind.seq, AAPL, SELL, P + 2 * TICK, 70),
    ])
    bid = session.buy(P - TICK, 10, account=3)
    assert_events(bid.events, [
        Accepted(bid.seq, AAPL, bid.order_id, 3, BUY, P - TICK, 10),
        BookDelta(bid.seq, AAPL, BUY, P - TICK, 10),
        TopOfBook(bid.seq, AAPL, P - TICK, 10, P + TICK, 150),
    ])
    assert session.engine.depth(AAPL) == Depth([(P - TICK, 10)], [(P + TICK, 150), (P + 2 * TICK, 70)])
    assert session.engine.depth(AAPL, 1) == Depth([(P - TICK, 10)], [(P + TICK, 150)])
    assert session.engine.orders(AAPL) == [
        plain(4, 3, BUY, P - TICK, 10),
        plain(1, 1, SELL, P + TICK, 100),
        plain(2, 2, SELL, P + TICK, 50),
        plain(3, 1, SELL, P + 2 * TICK, 70),
    ]
    assert session.engine.depth(MSFT) == Depth([], [])


# -- PARTIAL FILLS, PRICE-TIME PRIORITY -------------------------------------------------------


def test_buy_sweeps_levels_in_price_time_order_and_trades_at_maker_prices(session):
    o1 = session.sell(P + TICK, 100, account=1).order_id
    o2 = session.sell(P + TICK, 50, account=2).order_id
    o3 = session.sell(P + 2 * TICK, 70, account=1).order_id
    r = session.buy(P + 3 * TICK, 200, account=3)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 3, BUY, P + 3 * TICK, 200),
        Trade(r.seq, AAPL, 1, P + TICK, 100, BUY, o1, 1, r.order_id, 3, 0, 100),
        Done(r.seq, AAPL, o1, 1),
        Trade(r.seq, AAPL, 2, P + TICK, 50, BUY, o2, 2, r.order_id, 3, 0, 50),
        Done(r.seq, AAPL, o2, 2),
        Trade(r.seq, AAPL, 3, P + 2 * TICK, 50, BUY, o3, 1, r.order_id, 3, 20, 0),
        Done(r.seq, AAPL, r.order_id, 3),
        BookDelta(r.seq, AAPL, SELL, P + TICK, 0),
        BookDelta(r.seq, AAPL, SELL, P + 2 * TICK, 20),
        TopOfBook(r.seq, AAPL, 0, 0, P + 2 * TICK, 20),
    ])
    assert session.engine.depth(AAPL) == Depth([], [(P + 2 * TICK, 20)])
    assert session.engine.orders(AAPL) == [plain(o3, 1, SELL, P + 2 * TICK, 20)]
    assert session.engine.last_trade_id == 3


def test_limit_remainder_rests_at_its_limit_after_taking_what_crosses(session):
    o1 = session.sell(P + TICK, 100, account=1).order_id
    o2 = session.sell(P + TICK, 50, account=2).order_id
    session.sell(P + 2 * TICK, 70, account=1)
    r = session.buy(P + TICK, 200, account=3)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 3, BUY, P + TICK, 200),
        Trade(r.seq, AAPL, 1, P + TICK, 100, BUY, o1, 1, r.order_id, 3, 0, 100),
        Done(r.seq, AAPL, o1, 1),
        Trade(r.seq, AAPL, 2, P + TICK, 50, BUY, o2, 2, r.order_id, 3, 0, 50),
        Done(r.seq, AAPL, o2, 2),
        BookDelta(r.seq, AAPL, SELL, P + TICK, 0),
        BookDelta(r.seq, AAPL, BUY, P + TICK, 50),
        TopOfBook(r.seq, AAPL, P + TICK, 50, P + 2 * TICK, 70),
    ])
    assert session.engine.depth(AAPL) == Depth([(P + TICK, 50)], [(P + 2 * TICK, 70)])


def test_sell_aggressor_hits_best_bid_first_and_partially_fills_the_maker(session):
    low = session.buy(P - TICK, 40, account=1).order_id
    high = session.buy(P, 30, account=2).order_id
    r = session.sell(P - TICK, 50, account=3)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 3, SELL, P - TICK, 50),
        Trade(r.seq, AAPL, 1, P, 30, SELL, high, 2, r.order_id, 3, 0, 20),
        Done(r.seq, AAPL, high, 2),
        Trade(r.seq, AAPL, 2, P - TICK, 20, SELL, low, 1, r.order_id, 3, 20, 0),
        Done(r.seq, AAPL, r.order_id, 3),
        BookDelta(r.seq, AAPL, BUY, P, 0),
        BookDelta(r.seq, AAPL, BUY, P - TICK, 20),
        TopOfBook(r.seq, AAPL, P - TICK, 20, 0, 0),
    ])
    assert session.engine.orders(AAPL) == [plain(low, 1, BUY, P - TICK, 20)]


def test_trade_ids_increase_by_one_across_commands_and_survive_a_rejected_fok(session):
    session.sell(P, 10, account=1)
    session.sell(P, 10, account=1)
    first = session.buy(P, 15, account=2)
    assert [e.trade_id for e in first.events if isinstance(e, Trade)] == [1, 2]
    assert session.engine.last_trade_id == 2
    rejected = session.buy(P, 6, account=2, tif=FOK)  # only 5 left
    assert [type(e) for e in rejected.events] == [Rejected]
    assert session.engine.last_trade_id == 2
    session.sell(P + TICK, 10, account=1)
    second = session.buy(P + TICK, 15, account=2)
    assert [e.trade_id for e in second.events if isinstance(e, Trade)] == [3, 4]
    assert session.engine.last_trade_id == 4


# -- ICEBERGS -----------------------------------------------------------------------------------


def test_iceberg_refill_goes_behind_a_later_order_at_the_same_price(session):
    ice = session.sell(P, 100, account=1, display=30)
    assert_events(ice.events, [
        Accepted(ice.seq, AAPL, ice.order_id, 1, SELL, P, 100),
        BookDelta(ice.seq, AAPL, SELL, P, 30),
        TopOfBook(ice.seq, AAPL, 0, 0, P, 30),
    ])
    assert session.engine.orders(AAPL) == [OrderView(ice.order_id, 1, SELL, P, 100, 30, 30, GTC, 0, 0)]
    later = session.sell(P, 40, account=2)
    assert session.engine.depth(AAPL) == Depth([], [(P, 70)])

    # Taking exactly the visible slice refills it: 70 visible before and after, so no delta.
    r = session.buy(P, 30, account=3)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 3, BUY, P, 30),
        Trade(r.seq, AAPL, 1, P, 30, BUY, ice.order_id, 1, r.order_id, 3, 70, 0),
        Done(r.seq, AAPL, r.order_id, 3),
    ])
    assert ids(session) == [later.order_id, ice.order_id]
    assert session.engine.order(AAPL, ice.order_id) == OrderView(
        ice.order_id, 1, SELL, P, 70, 30, 30, GTC, 0, 0)

    # The later order now trades first.
    r = session.buy(P, 50, account=3)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 3, BUY, P, 50),
        Trade(r.seq, AAPL, 2, P, 40, BUY, later.order_id, 2, r.order_id, 3, 0, 10),
        Done(r.seq, AAPL, later.order_id, 2),
        Trade(r.seq, AAPL, 3, P, 10, BUY, ice.order_id, 1, r.order_id, 3, 60, 0),
        Done(r.seq, AAPL, r.order_id, 3),
        BookDelta(r.seq, AAPL, SELL, P, 20),
        TopOfBook(r.seq, AAPL, 0, 0, P, 20),
    ])
    assert session.engine.depth(AAPL) == Depth([], [(P, 20)])

    # One taker larger than the slice eats through successive refills of the same iceberg.
    r = session.buy(P, 60, account=3)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 3, BUY, P, 60),
        Trade(r.seq, AAPL, 4, P, 20, BUY, ice.order_id, 1, r.order_id, 3, 40, 40),
        Trade(r.seq, AAPL, 5, P, 30, BUY, ice.order_id, 1, r.order_id, 3, 10, 10),
        Trade(r.seq, AAPL, 6, P, 10, BUY, ice.order_id, 1, r.order_id, 3, 0, 0),
        Done(r.seq, AAPL, ice.order_id, 1),
        Done(r.seq, AAPL, r.order_id, 3),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        TopOfBook(r.seq, AAPL, 0, 0, 0, 0),
    ])
    assert session.engine.orders(AAPL) == []


def test_iceberg_never_shows_more_than_its_display_size(session):
    ice = session.sell(P, 95, account=1, display=20)
    published = [e.visible_quantity for e in ice.events if isinstance(e, BookDelta)]
    for qty in (7, 13, 5, 30, 1, 19):
        r = session.buy(P, qty, account=2)
        published += [e.visible_quantity for e in r.events if isinstance(e, BookDelta)]
        view = session.engine.order(AAPL, ice.order_id)
        depth = session.engine.depth(AAPL)
        if view is None:
            assert depth == Depth([], [])
            continue
        assert 0 < view.display <= 20
        assert depth == Depth([], [(P, view.display)])
        tops = [e for e in r.events if isinstance(e, TopOfBook)]
        assert all(t.ask_quantity == view.display for t in tops)
    # 95 - 75 taken = 20 left: the published sizes follow the slice, never the hidden total.
    assert published == [20, 13, 20, 15, 5, 4, 5]
    assert session.engine.order(AAPL, ice.order_id).remaining == 20


def test_iceberg_last_slice_is_the_smaller_remainder(session):
    ice = session.sell(P, 50, account=1, display=20)
    session.buy(P, 40, account=2)  # two full slices: 10 left, shown as 10
    assert session.engine.order(AAPL, ice.order_id) == OrderView(
        ice.order_id, 1, SELL, P, 10, 10, 20, GTC, 0, 0)
    assert session.engine.depth(AAPL) == Depth([], [(P, 10)])


# -- FILL OR KILL, IMMEDIATE OR CANCEL ----------------------------------------------------------


def test_fok_that_could_only_partly_fill_is_rejected_and_changes_nothing(session):
    session.sell(P, 50, account=1)
    session.sell(P + TICK, 30, account=2)
    digest, last_id = session.engine.digest(), session.engine.last_order_id
    r = session.buy(P + TICK, 100, account=3, tif=FOK)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, r.order_id, 3, RejectReason.FOK_NOT_FILLABLE, CommandKind.NEW_ORDER),
    ])
    # Enough quantity in the book, but not within the limit price.
    r = session.buy(P, 60, account=3, tif=FOK)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, r.order_id, 3, RejectReason.FOK_NOT_FILLABLE, CommandKind.NEW_ORDER),
    ])
    assert session.engine.digest() == digest
    assert session.engine.last_order_id == last_id
    assert session.engine.last_trade_id == 0


def test_fok_that_can_fill_completely_fills_across_levels(session):
    o1 = session.sell(P, 50, account=1).order_id
    o2 = session.sell(P + TICK, 30, account=2).order_id
    r = session.buy(P + TICK, 70, account=3, tif=FOK)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 3, BUY, P + TICK, 70),
        Trade(r.seq, AAPL, 1, P, 50, BUY, o1, 1, r.order_id, 3, 0, 20),
        Done(r.seq, AAPL, o1, 1),
        Trade(r.seq, AAPL, 2, P + TICK, 20, BUY, o2, 2, r.order_id, 3, 10, 0),
        Done(r.seq, AAPL, r.order_id, 3),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        BookDelta(r.seq, AAPL, SELL, P + TICK, 10),
        TopOfBook(r.seq, AAPL, 0, 0, P + TICK, 10),
    ])


def test_fok_counts_hidden_iceberg_quantity(session):
    ice = session.sell(P, 100, account=1, display=10).order_id
    r = session.buy(P, 25, account=2, tif=FOK)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 2, BUY, P, 25),
        Trade(r.seq, AAPL, 1, P, 10, BUY, ice, 1, r.order_id, 2, 90, 15),
        Trade(r.seq, AAPL, 2, P, 10, BUY, ice, 1, r.order_id, 2, 80, 5),
        Trade(r.seq, AAPL, 3, P, 5, BUY, ice, 1, r.order_id, 2, 75, 0),
        Done(r.seq, AAPL, r.order_id, 2),
        BookDelta(r.seq, AAPL, SELL, P, 5),
        TopOfBook(r.seq, AAPL, 0, 0, P, 5),
    ])


def test_ioc_remainder_is_cancelled_not_rested(session):
    maker = session.sell(P, 30, account=1).order_id
    r = session.buy(P + TICK, 50, account=2, tif=IOC)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 2, BUY, P + TICK, 50),
        Trade(r.seq, AAPL, 1, P, 30, BUY, maker, 1, r.order_id, 2, 0, 20),
        Done(r.seq, AAPL, maker, 1),
        Cancelled(r.seq, AAPL, r.order_id, 2, 20, REMAINDER),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        TopOfBook(r.seq, AAPL, 0, 0, 0, 0),
    ])
    assert session.engine.orders(AAPL) == []


def test_ioc_that_crosses_nothing_is_cancelled_whole_without_book_events(session):
    session.sell(P + TICK, 30, account=1)
    r = session.buy(P, 50, account=2, tif=IOC)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 2, BUY, P, 50),
        Cancelled(r.seq, AAPL, r.order_id, 2, 50, REMAINDER),
    ])


# -- MARKET ORDERS ------------------------------------------------------------------------------


def test_market_order_into_an_empty_book_is_cancelled_whole(session):
    r = session.market(BUY, 20, account=2)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 2, BUY, 0, 20),
        Cancelled(r.seq, AAPL, r.order_id, 2, 20, REMAINDER),
    ])
    assert session.engine.last_order_id == r.order_id


def test_market_fok_into_an_empty_book_is_rejected(session):
    r = session.market(SELL, 20, account=2, tif=FOK)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, r.order_id, 2, RejectReason.FOK_NOT_FILLABLE, CommandKind.NEW_ORDER),
    ])


def test_market_order_walks_a_thin_book_at_any_price_and_cancels_the_rest(session):
    near = session.sell(P, 10, account=1).order_id
    far = session.sell(P + 50 * TICK, 5, account=1).order_id
    r = session.market(BUY, 20, account=2)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 2, BUY, 0, 20),
        Trade(r.seq, AAPL, 1, P, 10, BUY, near, 1, r.order_id, 2, 0, 10),
        Done(r.seq, AAPL, near, 1),
        Trade(r.seq, AAPL, 2, P + 50 * TICK, 5, BUY, far, 1, r.order_id, 2, 0, 5),
        Done(r.seq, AAPL, far, 1),
        Cancelled(r.seq, AAPL, r.order_id, 2, 5, REMAINDER),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        BookDelta(r.seq, AAPL, SELL, P + 50 * TICK, 0),
        TopOfBook(r.seq, AAPL, 0, 0, 0, 0),
    ])


def test_market_fok_sell_fills_completely_against_bids(session):
    bid = session.buy(P - TICK, 10, account=1).order_id
    r = session.market(SELL, 4, account=2, tif=FOK)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 2, SELL, 0, 4),
        Trade(r.seq, AAPL, 1, P - TICK, 4, SELL, bid, 1, r.order_id, 2, 6, 0),
        Done(r.seq, AAPL, r.order_id, 2),
        BookDelta(r.seq, AAPL, BUY, P - TICK, 6),
        TopOfBook(r.seq, AAPL, P - TICK, 6, 0, 0),
    ])


# -- SELF-TRADE PREVENTION ----------------------------------------------------------------------


def test_stp_cancel_resting_cancels_own_resting_order_and_keeps_matching(session):
    own = session.sell(P, 10, account=1).order_id
    other = session.sell(P, 20, account=2).order_id
    r = session.buy(P, 25, account=1, stp=StpMode.CANCEL_RESTING)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 1, BUY, P, 25),
        Cancelled(r.seq, AAPL, own, 1, 10, STP),
        Trade(r.seq, AAPL, 1, P, 20, BUY, other, 2, r.order_id, 1, 0, 5),
        Done(r.seq, AAPL, other, 2),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        BookDelta(r.seq, AAPL, BUY, P, 5),
        TopOfBook(r.seq, AAPL, P, 5, 0, 0),
    ])
    assert session.engine.orders(AAPL) == [
        OrderView(r.order_id, 1, BUY, P, 5, 5, 0, GTC, 0, StpMode.CANCEL_RESTING)
    ]


def test_stp_cancel_incoming_trades_until_own_order_then_cancels_the_incoming_remainder(session):
    other = session.sell(P, 10, account=2).order_id
    own = session.sell(P, 10, account=1).order_id
    r = session.buy(P, 25, account=1, stp=StpMode.CANCEL_INCOMING)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 1, BUY, P, 25),
        Trade(r.seq, AAPL, 1, P, 10, BUY, other, 2, r.order_id, 1, 0, 15),
        Done(r.seq, AAPL, other, 2),
        Cancelled(r.seq, AAPL, r.order_id, 1, 15, STP),
        BookDelta(r.seq, AAPL, SELL, P, 10),
        TopOfBook(r.seq, AAPL, 0, 0, P, 10),
    ])
    assert session.engine.orders(AAPL) == [plain(own, 1, SELL, P, 10)]


def test_stp_cancel_both_cancels_resting_and_incoming(session):
    own = session.sell(P, 10, account=1).order_id
    session.sell(P + TICK, 20, account=2)
    r = session.buy(P + TICK, 25, account=1, stp=StpMode.CANCEL_BOTH)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 1, BUY, P + TICK, 25),
        Cancelled(r.seq, AAPL, own, 1, 10, STP),
        Cancelled(r.seq, AAPL, r.order_id, 1, 25, STP),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        TopOfBook(r.seq, AAPL, 0, 0, P + TICK, 20),
    ])
    assert session.engine.last_trade_id == 0


def test_stp_none_allows_a_self_trade(session):
    own = session.sell(P, 10, account=1).order_id
    r = session.buy(P, 10, account=1, stp=StpMode.NONE)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 1, BUY, P, 10),
        Trade(r.seq, AAPL, 1, P, 10, BUY, own, 1, r.order_id, 1, 0, 0),
        Done(r.seq, AAPL, own, 1),
        Done(r.seq, AAPL, r.order_id, 1),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        TopOfBook(r.seq, AAPL, 0, 0, 0, 0),
    ])


def test_stp_follows_the_incoming_orders_mode_not_the_resting_one(session):
    own = session.sell(P, 10, account=1, stp=StpMode.CANCEL_BOTH).order_id
    r = session.buy(P, 10, account=1)  # incoming STP NONE: self-trade allowed
    assert [type(e) for e in r.events][:2] == [Accepted, Trade]
    assert r.events[1].maker_order_id == own


def test_fok_with_stp_cancel_resting_fills_from_others_and_cancels_own(session):
    own = session.sell(P, 10, account=1).order_id
    other = session.sell(P, 20, account=2).order_id
    r = session.buy(P, 20, account=1, tif=FOK, stp=StpMode.CANCEL_RESTING)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 1, BUY, P, 20),
        Cancelled(r.seq, AAPL, own, 1, 10, STP),
        Trade(r.seq, AAPL, 1, P, 20, BUY, other, 2, r.order_id, 1, 0, 0),
        Done(r.seq, AAPL, other, 2),
        Done(r.seq, AAPL, r.order_id, 1),
        BookDelta(r.seq, AAPL, SELL, P, 0),
        TopOfBook(r.seq, AAPL, 0, 0, 0, 0),
    ])


def test_fok_with_stp_cancel_resting_that_cannot_fill_leaves_own_order_resting(session):
    session.sell(P, 10, account=1)
    session.sell(P, 20, account=2)
    digest = session.engine.digest()
    r = session.buy(P, 25, account=1, tif=FOK, stp=StpMode.CANCEL_RESTING)  # own 10 does not count
    assert_events(r.events, [
        Rejected(r.seq, AAPL, r.order_id, 1, RejectReason.FOK_NOT_FILLABLE, CommandKind.NEW_ORDER),
    ])
    assert session.engine.digest() == digest


def test_fok_with_stp_cancel_incoming_is_rejected_when_own_order_is_in_the_way(session):
    session.sell(P, 10, account=1)
    session.sell(P, 20, account=2)
    digest = session.engine.digest()
    for mode in (StpMode.CANCEL_INCOMING, StpMode.CANCEL_BOTH):
        r = session.buy(P, 5, account=1, tif=FOK, stp=mode)
        assert_events(r.events, [
            Rejected(r.seq, AAPL, r.order_id, 1, RejectReason.FOK_NOT_FILLABLE, CommandKind.NEW_ORDER),
        ])
    assert session.engine.digest() == digest


def test_fok_with_stp_cancel_incoming_fills_from_orders_ahead_of_own(session):
    other = session.sell(P, 20, account=2).order_id
    own = session.sell(P, 10, account=1).order_id
    too_big = session.buy(P, 21, account=1, tif=FOK, stp=StpMode.CANCEL_INCOMING)
    assert [type(e) for e in too_big.events] == [Rejected]
    r = session.buy(P, 20, account=1, tif=FOK, stp=StpMode.CANCEL_INCOMING)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 1, BUY, P, 20),
        Trade(r.seq, AAPL, 1, P, 20, BUY, other, 2, r.order_id, 1, 0, 0),
        Done(r.seq, AAPL, other, 2),
        Done(r.seq, AAPL, r.order_id, 1),
        BookDelta(r.seq, AAPL, SELL, P, 10),
        TopOfBook(r.seq, AAPL, 0, 0, P, 10),
    ])
    assert ids(session) == [own]


def test_fok_with_stp_cancel_incoming_cannot_count_iceberg_refills_queued_behind_own_order(session):
    session.sell(P, 100, account=2, display=10)  # slice of 10 ahead, refills behind own
    session.sell(P, 10, account=1)
    digest = session.engine.digest()
    r = session.buy(P, 15, account=1, tif=FOK, stp=StpMode.CANCEL_INCOMING)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, r.order_id, 1, RejectReason.FOK_NOT_FILLABLE, CommandKind.NEW_ORDER),
    ])
    assert session.engine.digest() == digest
    # Without self-trade prevention the hidden quantity is reachable.
    ok = session.buy(P, 15, account=1, tif=FOK)
    assert sum(e.quantity for e in ok.events if isinstance(e, Trade)) == 15


# -- REPLACE ------------------------------------------------------------------------------------


def test_replace_quantity_down_at_same_price_keeps_priority(session):
    first = session.sell(P, 50, account=1).order_id
    second = session.sell(P, 50, account=2).order_id
    r = session.replace(first, P, 30, account=1)
    assert_events(r.events, [
        Replaced(r.seq, AAPL, first, 1, P, 30, 1),
        BookDelta(r.seq, AAPL, SELL, P, 80),
        TopOfBook(r.seq, AAPL, 0, 0, P, 80),
    ])
    assert ids(session) == [first, second]
    taker = session.buy(P, 40, account=3)
    assert [(e.maker_order_id, e.quantity) for e in taker.events if isinstance(e, Trade)] == [
        (first, 30), (second, 10)]


def test_replace_to_same_price_and_quantity_keeps_priority_and_publishes_nothing(session):
    first = session.sell(P, 50, account=1).order_id
    session.sell(P, 50, account=2)
    r = session.replace(first, P, 50, account=1)
    assert_events(r.events, [Replaced(r.seq, AAPL, first, 1, P, 50, 1)])
    assert ids(session)[0] == first


def test_replace_quantity_up_loses_priority(session):
    first = session.sell(P, 50, account=1).order_id
    second = session.sell(P, 50, account=2).order_id
    r = session.replace(first, P, 60, account=1)
    assert_events(r.events, [
        Replaced(r.seq, AAPL, first, 1, P, 60, 0),
        BookDelta(r.seq, AAPL, SELL, P, 110),
        TopOfBook(r.seq, AAPL, 0, 0, P, 110),
    ])
    assert ids(session) == [second, first]
    taker = session.buy(P, 40, account=3)
    assert [(e.maker_order_id, e.quantity) for e in taker.events if isinstance(e, Trade)] == [(second, 40)]


def test_replace_sets_the_open_quantity_of_a_partially_filled_order(session):
    order = session.sell(P, 50, account=1).order_id
    session.buy(P, 20, account=2)  # 30 open
    r = session.replace(order, P, 40, account=1)  # up from 30: loses priority
    assert_events(r.events, [
        Replaced(r.seq, AAPL, order, 1, P, 40, 0),
        BookDelta(r.seq, AAPL, SELL, P, 40),
        TopOfBook(r.seq, AAPL, 0, 0, P, 40),
    ])
    r = session.replace(order, P, 40, account=1)  # equal to open quantity: keeps priority
    assert_events(r.events, [Replaced(r.seq, AAPL, order, 1, P, 40, 1)])


def test_replace_price_change_moves_the_order_to_the_back_of_the_new_level(session):
    moved = session.sell(P + TICK, 50, account=1).order_id
    waiting = session.sell(P + 2 * TICK, 20, account=2).order_id
    r = session.replace(moved, P + 2 * TICK, 50, account=1)
    assert_events(r.events, [
        Replaced(r.seq, AAPL, moved, 1, P + 2 * TICK, 50, 0),
        BookDelta(r.seq, AAPL, SELL, P + TICK, 0),
        BookDelta(r.seq, AAPL, SELL, P + 2 * TICK, 70),
        TopOfBook(r.seq, AAPL, 0, 0, P + 2 * TICK, 70),
    ])
    assert ids(session) == [waiting, moved]


def test_replace_price_change_that_crosses_trades_as_aggressor(session):
    bid = session.buy(P - TICK, 50, account=2).order_id
    ask = session.sell(P + TICK, 50, account=1).order_id
    session.sell(P + TICK, 20, account=3)
    r = session.replace(ask, P - TICK, 60, account=1)
    assert_events(r.events, [
        Replaced(r.seq, AAPL, ask, 1, P - TICK, 60, 0),
        Trade(r.seq, AAPL, 1, P - TICK, 50, SELL, bid, 2, ask, 1, 0, 10),
        Done(r.seq, AAPL, bid, 2),
        BookDelta(r.seq, AAPL, SELL, P + TICK, 20),
        BookDelta(r.seq, AAPL, BUY, P - TICK, 0),
        BookDelta(r.seq, AAPL, SELL, P - TICK, 10),
        TopOfBook(r.seq, AAPL, 0, 0, P - TICK, 10),
    ])
    assert session.engine.order(AAPL, ask) == plain(ask, 1, SELL, P - TICK, 10)


def test_replace_of_an_iceberg_down_keeps_priority_and_trims_the_slice(session):
    ice = session.sell(P, 100, account=1, display=30).order_id
    r = session.replace(ice, P, 20, account=1)
    assert_events(r.events, [
        Replaced(r.seq, AAPL, ice, 1, P, 20, 1),
        BookDelta(r.seq, AAPL, SELL, P, 20),
        TopOfBook(r.seq, AAPL, 0, 0, P, 20),
    ])
    assert session.engine.order(AAPL, ice) == OrderView(ice, 1, SELL, P, 20, 20, 30, GTC, 0, 0)


def test_replace_of_an_iceberg_up_shows_a_fresh_slice(session):
    ice = session.sell(P, 100, account=1, display=30).order_id
    session.buy(P, 25, account=2)  # 5 of the slice left showing
    r = session.replace(ice, P, 200, account=1)
    assert_events(r.events, [
        Replaced(r.seq, AAPL, ice, 1, P, 200, 0),
        BookDelta(r.seq, AAPL, SELL, P, 30),
        TopOfBook(r.seq, AAPL, 0, 0, P, 30),
    ])
    assert session.engine.order(AAPL, ice) == OrderView(ice, 1, SELL, P, 200, 30, 30, GTC, 0, 0)


# -- CANCEL / REPLACE OF ORDERS THAT ARE NOT YOURS OR NOT THERE ----------------------------------


def test_cancel_removes_the_order_and_publishes_the_level(session):
    order = session.buy(P, 10, account=1).order_id
    r = session.cancel(order, account=1)
    assert_events(r.events, [
        Cancelled(r.seq, AAPL, order, 1, 10, CancelReason.USER_REQUESTED),
        BookDelta(r.seq, AAPL, BUY, P, 0),
        TopOfBook(r.seq, AAPL, 0, 0, 0, 0),
    ])


def test_cancel_or_replace_of_a_filled_order_is_unknown_order(session):
    order = session.sell(P, 10, account=1).order_id
    session.buy(P, 10, account=2)
    digest = session.engine.digest()
    r = session.cancel(order, account=1)
    assert_events(r.events, [Rejected(r.seq, AAPL, order, 1, UNKNOWN, CommandKind.CANCEL)])
    r = session.replace(order, P, 5, account=1)
    assert_events(r.events, [Rejected(r.seq, AAPL, order, 1, UNKNOWN, CommandKind.REPLACE)])
    assert session.engine.digest() == digest


def test_cancel_of_an_unknown_or_already_cancelled_order_is_unknown_order(session):
    order = session.sell(P, 10, account=1).order_id
    session.cancel(order, account=1)
    digest = session.engine.digest()
    for target in (order, 999):
        r = session.cancel(target, account=1)
        assert_events(r.events, [
            Rejected(r.seq, AAPL, target, 1, UNKNOWN, CommandKind.CANCEL)])
    assert session.engine.digest() == digest


def test_cancel_or_replace_of_another_accounts_order_is_unknown_order(session):
    order = session.sell(P, 10, account=1).order_id
    digest = session.engine.digest()
    r = session.cancel(order, account=2)
    assert_events(r.events, [Rejected(r.seq, AAPL, order, 2, UNKNOWN, CommandKind.CANCEL)])
    r = session.replace(order, P, 5, account=2)
    assert_events(r.events, [Rejected(r.seq, AAPL, order, 2, UNKNOWN, CommandKind.REPLACE)])
    assert session.engine.digest() == digest
    assert session.engine.order(AAPL, order) == plain(order, 1, SELL, P, 10)


def test_cancel_or_replace_of_an_expired_mass_cancelled_or_ioc_order_is_unknown_order(session):
    expired = session.buy(P, 10, account=1, tif=DAY).order_id
    session.end_of_session(AAPL)
    swept = session.sell(P + TICK, 10, account=1).order_id
    session.mass_cancel(1)
    ioc = session.buy(P, 10, account=1, tif=IOC).order_id  # nothing to trade: cancelled whole
    digest = session.engine.digest()
    for order in (expired, swept, ioc):
        r = session.cancel(order, account=1)
        assert_events(r.events, [Rejected(r.seq, AAPL, order, 1, UNKNOWN, CommandKind.CANCEL)])
        r = session.replace(order, P, 5, account=1)
        assert_events(r.events, [Rejected(r.seq, AAPL, order, 1, UNKNOWN, CommandKind.REPLACE)])
    assert session.engine.digest() == digest


def test_cancel_on_the_wrong_instrument_is_unknown_order(session):
    order = session.sell(P, 10, account=1).order_id
    r = session.cancel(order, account=1, instrument_id=MSFT)
    assert_events(r.events, [Rejected(r.seq, MSFT, order, 1, UNKNOWN, CommandKind.CANCEL)])
    r = session.cancel(order, account=1, instrument_id=99)
    assert_events(r.events, [
        Rejected(r.seq, 99, order, 1, RejectReason.UNKNOWN_INSTRUMENT, CommandKind.CANCEL)])
    assert session.engine.order(AAPL, order) is not None
    assert session.engine.order(MSFT, order) is None


# -- POST ONLY ----------------------------------------------------------------------------------


def test_post_only_that_would_cross_is_rejected_never_repriced(session):
    session.sell(P, 10, account=1)
    digest = session.engine.digest()
    r = session.buy(P, 5, account=2, post_only=1)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, r.order_id, 2, RejectReason.POST_ONLY_WOULD_CROSS, CommandKind.NEW_ORDER)])
    assert session.engine.digest() == digest


def test_post_only_that_does_not_cross_rests(session):
    session.sell(P, 10, account=1)
    r = session.buy(P - TICK, 5, account=2, post_only=1)
    assert_events(r.events, [
        Accepted(r.seq, AAPL, r.order_id, 2, BUY, P - TICK, 5),
        BookDelta(r.seq, AAPL, BUY, P - TICK, 5),
        TopOfBook(r.seq, AAPL, P - TICK, 5, P, 10),
    ])
    assert session.engine.order(AAPL, r.order_id) == OrderView(
        r.order_id, 2, BUY, P - TICK, 5, 5, 0, GTC, 1, 0)


def test_replace_of_a_post_only_order_into_the_spread_that_would_cross_is_rejected(session):
    session.sell(P, 10, account=1)
    bid = session.buy(P - TICK, 5, account=2, post_only=1).order_id
    digest = session.engine.digest()
    r = session.replace(bid, P, 5, account=2)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, bid, 2, RejectReason.POST_ONLY_WOULD_CROSS, CommandKind.REPLACE)])
    assert session.engine.digest() == digest


# -- ORDER IDS ----------------------------------------------------------------------------------


def test_rejected_order_does_not_use_up_its_order_id(session):
    r = session.buy(P, 0, account=1, order_id=5)
    assert [type(e) for e in r.events] == [Rejected]
    assert session.engine.last_order_id == 0
    r = session.buy(P, 10, account=1, order_id=5)
    assert [type(e) for e in r.events] == [Accepted, BookDelta, TopOfBook]
    assert session.engine.last_order_id == 5
    r = session.buy(P, 10, account=1, order_id=5)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, 5, 1, RejectReason.DUPLICATE_ORDER_ID, CommandKind.NEW_ORDER)])


def test_order_ids_may_skip_but_never_go_back(session):
    session.buy(P, 10, account=1, order_id=100)
    r = session.buy(P, 10, account=1, order_id=50)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, 50, 1, RejectReason.DUPLICATE_ORDER_ID, CommandKind.NEW_ORDER)])
    r = session.buy(P, 10, account=1, order_id=101, instrument_id=MSFT)  # shared across instruments
    r = session.sell(P, 10, account=1, order_id=101)
    assert_events(r.events, [
        Rejected(r.seq, AAPL, 101, 1, RejectReason.DUPLICATE_ORDER_ID, CommandKind.NEW_ORDER)])


# -- END OF SESSION -----------------------------------------------------------------------------


def test_end_of_session_expires_day_orders_only_and_reports_the_count(session):
    gtc = session.buy(P, 10, account=1).order_id
    day_bid = session.buy(P, 20, account=2, tif=DAY).order_id
    day_ask = session.sell(P + TICK, 5, account=1, tif=DAY).order_id
    day_msft = session.buy(M, 7, account=1, tif=DAY, instrument_id=MSFT).order_id
    session.buy(P + TICK, 2, account=3, tif=IOC)  # day_ask partly filled: 3 left

    r = session.end_of_session(AAPL)
    assert_events(r.events, [
        Expired(r.seq, AAPL, day_bid, 2, 20),
        Expired(r.seq, AAPL, day_ask, 1, 3),
        BookDelta(r.seq, AAPL, BUY, P, 10),
        BookDelta(r.seq, AAPL, SELL, P + TICK, 0),
        TopOfBook(r.seq, AAPL, P, 10, 0, 0),
        SessionEndReport(r.seq, AAPL, 2),
    ])
    assert ids(session, AAPL) == [gtc]
    assert ids(session, MSFT) == [day_msft]

    r = session.end_of_session()
    assert_events(r.events, [
        Expired(r.seq, MSFT, day_msft, 1, 7),
        BookDelta(r.seq, MSFT, BUY, M, 0),
        TopOfBook(r.seq, MSFT, 0, 0, 0, 0),
        SessionEndReport(r.seq, 0, 1),
    ])
    r = session.end_of_session()
    assert_events(r.events, [SessionEndReport(r.seq, 0, 0)])
    assert ids(session, AAPL) == [gtc]


def test_end_of_session_for_an_unknown_instrument_is_rejected(session):
    r = session.end_of_session(99)
    assert_events(r.events, [
        Rejected(r.seq, 99, 0, 0, RejectReason.UNKNOWN_INSTRUMENT, CommandKind.END_OF_SESSION)])


# -- MASS CANCEL --------------------------------------------------------------------------------


def test_mass_cancel_by_instrument_cancels_only_that_accounts_orders_there_in_id_order(session):
    bid = session.buy(P, 10, account=1).order_id
    other = session.buy(P, 20, account=2).order_id
    far_ask = session.sell(P + 2 * TICK, 5, account=1).order_id
    msft = session.buy(M, 7, account=1, instrument_id=MSFT).order_id
    near_ask = session.sell(P + TICK, 3, account=1, tif=DAY).order_id

    r = session.mass_cancel(1, AAPL)
    assert_events(r.events, [
        Cancelled(r.seq, AAPL, bid, 1, 10, CancelReason.MASS_CANCEL),
        Cancelled(r.seq, AAPL, far_ask, 1, 5, CancelReason.MASS_CANCEL),
        Cancelled(r.seq, AAPL, near_ask, 1, 3, CancelReason.MASS_CANCEL),
        BookDelta(r.seq, AAPL, BUY, P, 20),
        BookDelta(r.seq, AAPL, SELL, P + 2 * TICK, 0),
        BookDelta(r.seq, AAPL, SELL, P + TICK, 0),
        TopOfBook(r.seq, AAPL, P, 20, 0, 0),
        MassCancelReport(r.seq, AAPL, 1, 3),
    ])
    assert ids(session, AAPL) == [other]
    assert ids(session, MSFT) == [msft]


def test_mass_cancel_of_all_instruments_goes_book_by_book(session):
    msft = session.buy(M, 7, account=1, instrument_id=MSFT).order_id
    aapl = session.sell(P, 4, account=1).order_id
    keep = session.sell(P, 6, account=2).order_id
    r = session.mass_cancel(1)
    assert_events(r.events, [
        Cancelled(r.seq, AAPL, aapl, 1, 4, CancelReason.MASS_CANCEL),
        BookDelta(r.seq, AAPL, SELL, P, 6),
        TopOfBook(r.seq, AAPL, 0, 0, P, 6),
        Cancelled(r.seq, MSFT, msft, 1, 7, CancelReason.MASS_CANCEL),
        BookDelta(r.seq, MSFT, BUY, M, 0),
        TopOfBook(r.seq, MSFT, 0, 0, 0, 0),
        MassCancelReport(r.seq, 0, 1, 2),
    ])
    assert ids(session, AAPL) == [keep]
    assert ids(session, MSFT) == []


def test_mass_cancel_with_nothing_to_cancel_only_reports_zero(session):
    session.buy(P, 10, account=2)
    digest = session.engine.digest()
    r = session.mass_cancel(3)
    assert_events(r.events, [MassCancelReport(r.seq, 0, 3, 0)])
    assert session.engine.digest() == digest


def test_mass_cancel_rejects_a_missing_account_or_unknown_instrument(session):
    session.buy(P, 10, account=2)
    digest = session.engine.digest()
    r = session.mass_cancel(0)
    assert_events(r.events, [Rejected(r.seq, 0, 0, 0, RejectReason.INVALID_ACCOUNT, CommandKind.MASS_CANCEL)])
    r = session.mass_cancel(2, 99)
    assert_events(r.events, [
        Rejected(r.seq, 99, 0, 2, RejectReason.UNKNOWN_INSTRUMENT, CommandKind.MASS_CANCEL)])
    assert session.engine.digest() == digest
