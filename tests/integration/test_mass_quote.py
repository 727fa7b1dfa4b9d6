"""Item 8: a mass quote replaces the market maker's previous quotes instrument by instrument."""

from __future__ import annotations

from hub.client import BookSet
from hub.v1 import common_pb2 as cpb
from tests.integration.support import (
    TICK,
    M,
    P,
    drop_copies_attached,
    engine_depth,
    engine_orders,
    md_sequence,
    read_n,
)

MM_ACCOUNT = 3001
WATCHED = ("AAPL", "MSFT", "ESZ6", "EURUSD", "BTC-USD", "GCZ6")
FIRST = [  # symbol, bid price, bid qty, ask price, ask qty
    ("AAPL", P - TICK, 100, P + TICK, 100),
    ("MSFT", M - TICK, 70, M + TICK, 80),
    ("ESZ6", 6000_00 - 25, 10, 6000_00 + 25, 12),
    ("EURUSD", 1_08500 - 1, 1_000_000, 1_08500 + 1, 2_000_000),
    ("BTC-USD", 95_000_00 - 100, 50_000_000, 95_000_00, 0),  # bid only
]
SECOND = [
    ("AAPL", P - 2 * TICK, 50, P + 2 * TICK, 60),
    ("MSFT", M - 2 * TICK, 0, M + 2 * TICK, 30),  # ask only: the old bid just goes
    ("ESZ6", 6000_00 - 50, 5, 6000_00 + 50, 6),
    ("EURUSD", 1_08500 - 3, 3_000_000, 1_08500 + 3, 1_000_000),
]


def _follow(hub, stream, books: BookSet) -> None:
    targets = {s: md_sequence(hub, s) for s in WATCHED}
    while any(books[s].md_sequence < targets[s] for s in WATCHED):
        update = stream.read(timeout=5)
        assert update is not None
        books.apply(update)
    for s in WATCHED:
        assert (books[s].bids, books[s].asks) == engine_depth(hub, s), s


def _check_quote_ack(ack, quotes) -> dict[str, tuple[int, int]]:
    """Every side entered; returns symbol -> (bid order id, ask order id)."""
    assert ack.accepted and ack.reject_reason == 0 and ack.reject_text == ""
    assert [q.symbol for q in ack.quotes] == [q[0] for q in quotes]
    ids = {}
    for q, (symbol, _, bid_qty, _, ask_qty) in zip(ack.quotes, quotes, strict=True):
        assert (q.bid_reject_reason, q.ask_reject_reason) == (0, 0), q
        assert bool(q.bid_order_id) == bool(bid_qty) and bool(q.ask_order_id) == bool(ask_qty), q
        ids[symbol] = (q.bid_order_id, q.ask_order_id)
    return ids


def _new_reports(ack, quotes, ids) -> list[tuple]:
    out = []
    for symbol, bp, bq, ap, aq in quotes:
        bid, ask = ids[symbol]
        if bq:
            out.append((symbol, bid, cpb.EXEC_NEW, cpb.BUY, bp, bq))
        if aq:
            out.append((symbol, ask, cpb.EXEC_NEW, cpb.SELL, ap, aq))
    return out


def _reports(ack) -> list[tuple]:
    for r in ack.executions:
        assert r.account == MM_ACCOUNT and r.client_order_id == "" and r.sequence >= 1
    return [(r.symbol, r.order_id, r.exec_type, r.side, r.price, r.leaves_quantity) for r in ack.executions]


def _expected_open(quotes, ids) -> list[tuple]:
    rows = []
    for symbol, bp, bq, ap, aq in quotes:
        bid, ask = ids[symbol]
        if bq:
            rows.append((bid, symbol, cpb.BUY, bp, bq))
        if aq:
            rows.append((ask, symbol, cpb.SELL, ap, aq))
    return sorted(rows)


def _open(client) -> list[tuple]:
    orders = client.open_orders()
    for o in orders:
        assert (o.account, o.time_in_force, o.display_quantity, o.client_order_id) == (MM_ACCOUNT, cpb.GTC, 0, "")
    return sorted((o.order_id, o.symbol, o.side, o.price, o.leaves_quantity) for o in orders)


def test_mass_quote_replaces_previous_quotes(server, connect) -> None:
    hub = server.hub
    mm, taker, watcher = connect("mm-1"), connect("scalper-1"), connect("regulator")
    stream = watcher.subscribe(list(WATCHED))
    books = BookSet()
    for u in read_n(stream, len(WATCHED)):
        books.apply(u)
    drop = mm.drop_copy()
    drop_copies_attached(hub, "mm-1")

    # -- first quote message: five instruments in four engines
    ack1 = mm.mass_quote(FIRST)
    ids1 = _check_quote_ack(ack1, FIRST)
    assert _reports(ack1) == _new_reports(ack1, FIRST, ids1)
    assert _open(mm) == _expected_open(FIRST, ids1)
    _follow(hub, stream, books)
    assert books["AAPL"].bids == [(P - TICK, 100)] and books["AAPL"].asks == [(P + TICK, 100)]
    assert books["BTC-USD"].asks == [] and books["BTC-USD"].bids == [(95_000_00 - 100, 50_000_000)]
    btc_bid = ids1["BTC-USD"][0]

    # -- second message: the previous quotes of the listed instruments are cancelled first
    ack2 = mm.mass_quote(SECOND)
    ids2 = _check_quote_ack(ack2, SECOND)
    assert not set(ids2["AAPL"]) & set(ids1["AAPL"])
    cancelled = [(s, oid, cpb.EXEC_CANCELLED, side, px, 0)
                 for s, bp, _, ap, _ in FIRST if s != "BTC-USD"
                 for oid, side, px in ((ids1[s][0], cpb.BUY, bp), (ids1[s][1], cpb.SELL, ap))]
    got = _reports(ack2)
    assert sorted(r for r in got if r[2] == cpb.EXEC_CANCELLED) == sorted(cancelled)
    assert [r for r in got if r[2] == cpb.EXEC_NEW] == _new_reports(ack2, SECOND, ids2)
    assert all(r.cancel_reason == cpb.CANCEL_USER_REQUESTED for r in ack2.executions if r.exec_type == cpb.EXEC_CANCELLED)
    # only the new quotes (and the BTC-USD quote, which was not in the message) are open
    assert _open(mm) == sorted(_expected_open(SECOND, ids2) + [(btc_bid, "BTC-USD", cpb.BUY, 95_000_00 - 100,
                                                                 50_000_000)])
    _follow(hub, stream, books)
    for symbol, bp, bq, ap, aq in SECOND:
        assert (books[symbol].bids, books[symbol].asks) == ([(bp, bq)] if bq else [], [(ap, aq)] if aq else [])
        owners = {o.account for o in engine_orders(hub, symbol)}
        assert owners == {MM_ACCOUNT}
        assert {o.order_id for o in engine_orders(hub, symbol)} == {i for i in ids2[symbol] if i}

    # -- a partly filled quote is replaced too: only its remainder is cancelled
    hit = taker.submit("AAPL", "buy", 25, P + 2 * TICK, time_in_force="ioc")
    assert [(r.exec_type, r.last_quantity) for r in hit.executions][1] == (cpb.EXEC_TRADE, 25)
    third = [("AAPL", P - TICK, 40, P + TICK, 40)]
    ack3 = mm.mass_quote(third)
    ids3 = _check_quote_ack(ack3, third)
    assert sorted((r[1], r[2], r[5]) for r in _reports(ack3) if r[2] == cpb.EXEC_CANCELLED) == sorted(
        [(ids2["AAPL"][0], cpb.EXEC_CANCELLED, 0), (ids2["AAPL"][1], cpb.EXEC_CANCELLED, 0)])
    assert [o for o in _open(mm) if o[1] == "AAPL"] == _expected_open(third, ids3)

    # -- a quote side that would cross is refused (post-only), the other side still enters; an
    # unknown symbol is refused on its own; both answered per quote
    assert connect("scalper-2").submit("MSFT", "sell", 5, M + TICK).accepted
    crossing = [("MSFT", M + TICK, 10, M + 3 * TICK, 10), ("NOPE", 1, 1, 2, 1)]
    ack4 = mm.mass_quote(crossing)
    assert ack4.accepted
    q_msft, q_nope = ack4.quotes
    assert (q_msft.bid_order_id, q_msft.bid_reject_reason) == (0, cpb.REJECT_POST_ONLY_WOULD_CROSS)
    assert q_msft.ask_order_id and q_msft.ask_reject_reason == 0
    assert (q_nope.symbol, q_nope.bid_order_id, q_nope.bid_reject_reason, q_nope.ask_order_id,
            q_nope.ask_reject_reason) == ("NOPE", 0, cpb.REJECT_UNKNOWN_INSTRUMENT, 0, cpb.REJECT_UNKNOWN_INSTRUMENT)
    assert [o for o in _open(mm) if o[1] == "MSFT"] == [(q_msft.ask_order_id, "MSFT", cpb.SELL, M + 3 * TICK, 10)]

    # -- quotes entered on a streaming session are replaced by a unary quote message as well
    session = mm.open_session(timeout=10)
    s_ack = session.mass_quote([("GCZ6", 2650_00 - 10, 3, 2650_00 + 10, 3)])
    s_ids = _check_quote_ack(s_ack, [("GCZ6", 0, 3, 0, 3)])
    u_ack = mm.mass_quote([("GCZ6", 2650_00 - 20, 4, 2650_00 + 20, 4)])
    u_ids = _check_quote_ack(u_ack, [("GCZ6", 0, 4, 0, 4)])
    assert sorted(r.order_id for r in u_ack.executions if r.exec_type == cpb.EXEC_CANCELLED) == sorted(s_ids["GCZ6"])
    assert [o for o in _open(mm) if o[1] == "GCZ6"] == sorted(
        [(u_ids["GCZ6"][0], "GCZ6", cpb.BUY, 2650_00 - 20, 4), (u_ids["GCZ6"][1], "GCZ6", cpb.SELL, 2650_00 + 20, 4)])
    # the session's quotes changed elsewhere: it is told too (unsolicited), exactly what the ack said
    cancels = [r for r in u_ack.executions if r.exec_type == cpb.EXEC_CANCELLED]
    assert [session.executions.get(timeout=5) for _ in cancels] == cancels
    assert session.executions.empty()

    _follow(hub, stream, books)
    # the drop copy carried every report of every ack, in order
    everything = [r for ack in (ack1, ack2, ack3, ack4, s_ack, u_ack) for r in ack.executions]
    trade = [r for r in mm.executions() if r.exec_type == cpb.EXEC_TRADE]
    assert len(trade) == 1 and trade[0].order_id == ids2["AAPL"][1] and trade[0].leaves_quantity == 35
    expected = sorted(everything + trade, key=lambda r: r.sequence)
    got_drop = read_n(drop, len(expected))
    assert [r.sequence for r in got_drop] == sorted(r.sequence for r in got_drop)
    assert sorted(got_drop, key=lambda r: (r.sequence, r.order_id, r.exec_type)) == sorted(
        expected, key=lambda r: (r.sequence, r.order_id, r.exec_type))
    assert mm.executions() == got_drop
    stream.cancel()
    drop.cancel()


def test_requote_cancels_every_previous_quote_even_after_a_repeated_symbol(server, connect) -> None:
    """A message that lists one instrument twice must not leave quote orders behind that no later
    quote message replaces: after the next message for AAPL, only that message's quotes live."""
    mm = connect("mm-1")
    first = mm.mass_quote([("AAPL", P - 10 * TICK, 1, P + 10 * TICK, 1), ("AAPL", P - 20 * TICK, 2, P + 20 * TICK, 2)])
    assert first.accepted and len(first.quotes) == 2
    second = mm.mass_quote([("AAPL", P - 30 * TICK, 3, P + 30 * TICK, 3)])
    [q] = second.quotes
    assert q.bid_order_id and q.ask_order_id
    assert sorted(o.order_id for o in mm.open_orders("AAPL")) == sorted([q.bid_order_id, q.ask_order_id]), (
        "quote orders of the first message survived a requote", [(o.order_id, o.price) for o in mm.open_orders()])
    assert engine_depth(server.hub, "AAPL") == ([(P - 30 * TICK, 3)], [(P + 30 * TICK, 3)])
