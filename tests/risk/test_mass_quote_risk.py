"""Pre-trade risk of mass quotes. The calling contract (compliance/risk/__init__.py) says a batch is
checked quote by quote, "so each check sees the quotes before it"; and a mass quote replaces the
participant's live quotes on each instrument it names, so what it replaces should not count against
what replaces it.

``Hub.mass_quote`` decides the sides of one message in turn under a risk hold
(``RiskEngine.hold``): the quotes the message replaces are released first, every accepted side
counts for the sides after it (position limit, margin), and the hold is undone before the batch is
sequenced, so the risk state moves only through what the ledger holds (and replay redoes). The
tests below pin the boundaries (at the limit / one lot beyond), partly filled quotes, a message the
hub cannot sequence, and replay.
"""

from __future__ import annotations

import pytest

from compliance.risk import ParticipantRiskConfig, RiskConfig, RiskReject
from hub.core import QuoteSpec
from hub.v1 import common_pb2 as cpb
from matching.types import RejectReason
from tests.risk.support import AAPL, MSFT, SEC, M, P, RiskHub

MM = "mm-1"
LIMIT_1000 = RiskConfig(participants=(ParticipantRiskConfig(participant_id=MM, position_limits=((AAPL, 1_000),)),))
THIN = RiskConfig(participants=(ParticipantRiskConfig(participant_id=MM, collateral=(("USD", 3_135_00),)),))


def _quote(rh: RiskHub, *quotes: QuoteSpec) -> list[tuple[int, int]]:
    """(bid reject, ask reject) per quote; 0 where the side stands."""
    _, rows, reason, text = rh.hub.mass_quote(rh.who[MM], list(quotes), 0)
    assert reason == 0, text
    return [(bid_r, ask_r) for _, _, bid_r, _, ask_r in rows]


def test_a_quote_side_beyond_the_position_limit_is_refused_and_the_other_side_stands(make_hub) -> None:
    rh = make_hub(LIMIT_1000)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 1_001, P + 100, 1_000)) == [(RiskReject.POSITION_LIMIT, 0)]
    assert rh.hub.risk.position(MM, AAPL) == (0, 0, 1_000)


def test_each_quote_side_is_checked_with_the_sides_before_it_in_the_same_message(make_hub) -> None:
    rh = make_hub(LIMIT_1000)
    rows = _quote(rh, QuoteSpec("AAPL", P - 100, 600, 0, 0), QuoteSpec("AAPL", P - 200, 600, 0, 0))
    assert rows == [(0, 0), (RiskReject.POSITION_LIMIT, 0)]
    assert rh.hub.risk.position(MM, AAPL)[1] <= 1_000


def test_quotes_in_one_message_cannot_together_exceed_the_margin(make_hub) -> None:
    rh = make_hub(THIN)  # one bid of 100 AAPL at 190 uses the whole USD 3,135.00
    _quote(rh, QuoteSpec("AAPL", P, 100, 0, 0), QuoteSpec("AAPL", P, 100, 0, 0))
    margin = rh.hub.risk.margin(MM)
    assert margin.initial <= margin.equity


def test_requoting_the_same_size_near_the_limit_keeps_the_market_maker_quoted(make_hub) -> None:
    rh = make_hub(LIMIT_1000)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 600, P + 100, 600)) == [(0, 0)]
    rh.clock.advance(1_000_000_000)
    assert _quote(rh, QuoteSpec("AAPL", P - 200, 600, P + 200, 600)) == [(0, 0)]
    assert rh.hub.risk.position(MM, AAPL) == (0, 600, 600)


def test_a_killed_participant_cannot_quote_and_its_quotes_are_pulled(make_hub) -> None:
    from compliance.risk import Scope

    rh = make_hub()
    assert _quote(rh, QuoteSpec("MSFT", M - 100, 10, M + 100, 10)) == [(0, 0)]
    rh.kill(Scope.PARTICIPANT, MM)
    assert rh.resting_ids(MM) == set()
    assert _quote(rh, QuoteSpec("MSFT", M - 100, 10, M + 100, 10)) == [(RiskReject.KILL_SWITCH,) * 2]


def test_quotes_pulled_by_a_kill_are_reported_as_risk_cancels(make_hub) -> None:
    from compliance.risk import Scope
    from hub.v1 import common_pb2 as cpb

    rh = make_hub()
    _, rows, _, _ = rh.hub.mass_quote(rh.who[MM], [QuoteSpec("MSFT", M - 100, 10, M + 100, 10)], 0)
    quote_ids = {rows[0][1], rows[0][3]}
    kill_seq = rh.kill(Scope.PARTICIPANT, MM)
    pulled = [r for r in rh.hub.executions(rh.who[MM], kill_seq, 0) if r.order_id in quote_ids]
    assert sorted((r.exec_type, r.cancel_reason, r.leaves_quantity) for r in pulled) == [
        (cpb.EXEC_CANCELLED, cpb.CANCEL_RISK, 0)] * 2, "the venue's risk controls, not the market maker, pulled them"


# -- boundaries: each side counts for the next, the replaced quotes for none --------------------------------------


def test_the_second_side_of_a_message_is_accepted_at_the_limit_and_refused_one_lot_beyond(make_hub) -> None:
    rh = make_hub(LIMIT_1000)
    at_limit = _quote(rh, QuoteSpec("AAPL", P - 100, 600, P + 100, 1_000), QuoteSpec("AAPL", P - 200, 400, 0, 0))
    assert at_limit == [(0, 0), (0, 0)]
    assert rh.hub.risk.position(MM, AAPL) == (0, 1_000, 1_000)
    # the next message replaces all three: the same bids one lot larger breach on the second bid only
    beyond = _quote(rh, QuoteSpec("AAPL", P - 100, 600, P + 100, 1_000), QuoteSpec("AAPL", P - 200, 401, P + 200, 1))
    assert beyond == [(0, 0), (RiskReject.POSITION_LIMIT, RiskReject.POSITION_LIMIT)]
    assert rh.hub.risk.position(MM, AAPL) == (0, 600, 1_000)
    assert len(rh.resting_ids(MM)) == 2, "the refused sides are not sequenced; the replaced quotes are gone"


def test_a_requote_at_the_limit_is_accepted_and_one_lot_beyond_is_refused(make_hub) -> None:
    rh = make_hub(LIMIT_1000)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 1_000, P + 100, 1_000)) == [(0, 0)]
    first = rh.resting_ids(MM)
    assert _quote(rh, QuoteSpec("AAPL", P - 200, 1_000, P + 200, 1_000)) == [(0, 0)]
    assert rh.hub.risk.position(MM, AAPL) == (0, 1_000, 1_000)
    assert rh.resting_ids(MM).isdisjoint(first), "the replaced quotes were cancelled"
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 1_001, P + 100, 1_001)) == [(RiskReject.POSITION_LIMIT,) * 2]
    assert rh.hub.risk.position(MM, AAPL) == (0, 0, 0), "the message replaced the quotes even though it added none"
    rh.hub.risk.verify()


def test_a_partly_filled_quote_releases_only_its_remaining_quantity(make_hub) -> None:
    rh = make_hub(LIMIT_1000)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 600, 0, 0)) == [(0, 0)]
    assert rh.sell("scalper-1", "AAPL", P - 100, 100, tif=cpb.IOC).trades()  # mm-1 is long 100, 500 bid left
    assert rh.hub.risk.position(MM, AAPL) == (100, 500, 0)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 901, 0, 0)) == [(RiskReject.POSITION_LIMIT, 0)]
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 900, 0, 0)) == [(0, 0)]
    assert rh.hub.risk.position(MM, AAPL) == (100, 900, 0)
    rh.hub.risk.verify()


def test_two_bids_that_together_use_exactly_the_margin_stand_and_one_lot_more_is_refused(make_hub) -> None:
    rh = make_hub(THIN)
    assert _quote(rh, QuoteSpec("AAPL", P, 50, 0, 0), QuoteSpec("AAPL", P, 50, 0, 0)) == [(0, 0), (0, 0)]
    margin = rh.hub.risk.margin(MM)
    assert margin.initial == margin.equity, "100 AAPL at 190 uses the whole collateral"
    assert _quote(rh, QuoteSpec("AAPL", P, 50, 0, 0), QuoteSpec("AAPL", P, 51, 0, 0)) == [(0, 0), (RiskReject.MARGIN, 0)]
    assert rh.hub.risk.position(MM, AAPL) == (0, 50, 0)


def test_quotes_replaced_later_in_the_message_no_longer_count_for_its_earlier_quotes(make_hub) -> None:
    rh = make_hub(THIN)
    assert _quote(rh, QuoteSpec("AAPL", P, 100, 0, 0)) == [(0, 0)]  # the whole margin
    assert rh.buy(MM, "MSFT", M, 10).reason == RiskReject.MARGIN  # an order beside it does not fit
    # MSFT first, then AAPL with nothing: the AAPL bid it pulls does not count against the MSFT bid
    assert _quote(rh, QuoteSpec("MSFT", M, 10, 0, 0), QuoteSpec("AAPL", 0, 0, 0, 0)) == [(0, 0), (0, 0)]
    assert rh.hub.risk.position(MM, AAPL) == (0, 0, 0) and rh.hub.risk.position(MM, MSFT) == (0, 10, 0)
    margin = rh.hub.risk.margin(MM)
    assert 0 < margin.initial <= margin.equity


def test_a_mass_quote_the_hub_cannot_sequence_leaves_the_risk_state_as_it_was(make_hub) -> None:
    from hub.core import HubUnavailableError

    rh = make_hub(LIMIT_1000)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 600, P + 100, 600)) == [(0, 0)]
    risk = rh.hub.risk
    before = (risk.state_digest(), risk.margin(MM), risk.position(MM, AAPL), risk.position(MM, MSFT))
    quotes = [QuoteSpec("AAPL", P - 200, 1_000, P + 200, 400), QuoteSpec("MSFT", M - 100, 10, M + 100, 10)]

    rh.hub.journal.available = False  # the ledger is down
    with pytest.raises(HubUnavailableError, match="ledger unavailable"):
        rh.hub.mass_quote(rh.who[MM], quotes, 0)
    assert (risk.state_digest(), risk.margin(MM), risk.position(MM, AAPL), risk.position(MM, MSFT)) == before
    risk.verify()
    del rh.hub.journal.available

    rh.hub.accepting = False  # the hub is stopping
    with pytest.raises(HubUnavailableError, match="not accepting"):
        rh.hub.mass_quote(rh.who[MM], quotes, 0)
    assert (risk.state_digest(), risk.margin(MM), risk.position(MM, AAPL), risk.position(MM, MSFT)) == before
    risk.verify()
    rh.hub.accepting = True

    # and the same message, sequenced now, is decided on the state as it was
    assert _quote(rh, *quotes) == [(0, 0), (0, 0)]
    assert risk.position(MM, AAPL) == (0, 1_000, 400)


def test_a_participant_first_seen_in_a_refused_mass_quote_leaves_no_trace_in_the_risk_state(make_hub) -> None:
    from compliance.risk import Scope

    rh = make_hub(RiskConfig())  # mm-1 has no configured risk entry: the engine meets it here
    rh.kill(Scope.HUB)
    before = rh.hub.risk.state_digest()
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 10, P + 100, 10)) == [(RiskReject.KILL_SWITCH,) * 2]
    assert rh.hub.risk.state_digest() == before
    rh.hub.risk.verify()


def test_mass_quotes_replay_to_the_same_risk_state(make_hub) -> None:
    cfg = RiskConfig(participants=(ParticipantRiskConfig(participant_id=MM, position_limits=((AAPL, 1_000),),
                                                         collateral=(("USD", 50_000_00),)),))
    rh = make_hub(cfg, durable=True)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 600, P + 100, 1_000),
                  QuoteSpec("AAPL", P - 200, 401, 0, 0)) == [(0, 0), (RiskReject.POSITION_LIMIT, 0)]
    assert rh.sell("scalper-1", "AAPL", P - 100, 100, tif=cpb.IOC).trades()
    rh.clock.advance(SEC)
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 900, P + 100, 1_000), QuoteSpec("MSFT", M - 100, 10, M + 100, 10),
                  QuoteSpec("AAPL", P - 200, 1, 0, 0)) == [(0, 0), (0, 0), (RiskReject.POSITION_LIMIT, 0)]
    # margin: bids until the collateral runs out, within one message
    refused = [bid for bid, _ in _quote(rh, *[QuoteSpec("MSFT", M - 100, 100, 0, 0)] * 8)]
    assert refused == [0, 0] + [RiskReject.MARGIN] * 6, refused
    before = (rh.hub.state_digest_bytes(), rh.hub.risk.state_digest(), rh.hub.risk.margin(MM),
              rh.hub.risk.position(MM, AAPL), rh.hub.risk.position(MM, MSFT), rh.resting_ids())
    rh.restart()
    assert rh.hub.recovery.checkpoint_verified
    assert (rh.hub.state_digest_bytes(), rh.hub.risk.state_digest(), rh.hub.risk.margin(MM),
            rh.hub.risk.position(MM, AAPL), rh.hub.risk.position(MM, MSFT), rh.resting_ids()) == before
    rh.hub.risk.verify()
    # the recovered hub decides the next requote as the live one would have
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 900, 0, 0), QuoteSpec("AAPL", P - 100, 1, 0, 0)) == [
        (0, 0), (RiskReject.POSITION_LIMIT, 0)]


def test_a_quote_side_refused_on_its_own_fields_counts_for_nothing_and_replays_alike(make_hub) -> None:
    # The bid at a negative price never rests (the engine refuses it: INVALID_PRICE), so it must not
    # count against the 1,000 limit: the full-size bid after it in the same message stands.
    rh = make_hub(LIMIT_1000, durable=True)
    rows = _quote(rh, QuoteSpec("AAPL", -100, 1_000, P + 100, 10), QuoteSpec("AAPL", P - 100, 1_000, 0, 0))
    assert rows == [(RejectReason.INVALID_PRICE, 0), (0, 0)]
    assert _quote(rh, QuoteSpec("AAPL", P - 100, 1_000, 0, 0), QuoteSpec("AAPL", P - 200, 1, 0, 0)) == [
        (0, 0), (RiskReject.POSITION_LIMIT, 0)]  # requoted: the same 1,000 stands, one lot more does not
    before = (rh.hub.state_digest_bytes(), rh.hub.risk.state_digest(), rh.hub.risk.position(MM, AAPL),
              rh.resting_ids())
    rh.restart()
    assert (rh.hub.state_digest_bytes(), rh.hub.risk.state_digest(), rh.hub.risk.position(MM, AAPL),
            rh.resting_ids()) == before
    rh.hub.risk.verify()


def test_mass_quote_messages_are_rate_limited_per_participant(make_hub) -> None:
    """Quote orders take no order-rate tokens, so the messages are limited instead: the burst
    passes, the next message in the same instant is refused (SESSION_RATE, journaled, nothing
    sequenced), and the bucket refills with hub time."""
    from dataclasses import replace

    from hub.config import LimitsConfig
    from hub.journal import EntryKind

    rh = make_hub()
    rh.hub.config = replace(rh.hub.config, limits=LimitsConfig(mass_quotes_per_second=10, mass_quote_burst=3))
    quote = QuoteSpec("AAPL", P - 100, 100, P + 100, 100)
    for _ in range(3):
        assert _quote(rh, quote) == [(0, 0)]
    sequenced = rh.hub.last_sequence
    _, rows, reason, text = rh.hub.mass_quote(rh.who[MM], [quote], 0)
    assert reason == RiskReject.SESSION_RATE and rows == [] and "10 mass quotes per second" in text
    last = rh.hub.journal.entries()[-1]
    assert last.kind == EntryKind.GATEWAY_REJECT and rh.hub.last_sequence == sequenced + 1  # only the reject
    _, _, reason, _ = rh.hub.mass_quote(rh.who["scalper-1"], [quote], 0)
    assert reason == 0  # another participant's bucket
    rh.clock.advance(100_000_000)  # one message's worth at 10/s
    assert _quote(rh, quote) == [(0, 0)]
