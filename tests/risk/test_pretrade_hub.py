"""Pre-trade checks through the hub's real order path, at their exact boundaries: given a hub state
(built with orders and trades through the hub), when one order arrives, then it is accepted or
refused with the expected 5xx reason. A refusal is journaled as a gateway reject carrying that
reason, no engine command is sequenced, and the hub's state digest (engines, fees, risk) is
unchanged. The engine unit tests cover the arithmetic; these prove the hub asks, at sequencing
time, with the state its own events built.

Defaults: AAPL reference 190.0000 (tick 0.0100), band 5 %, 50 orders/s per participant and
instrument (burst 50), 500 messages/s per session (burst 1,500), collateral USD 10 M.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from compliance.risk import InstrumentRiskConfig, ParticipantRiskConfig, RiskConfig, RiskReject
from hub.journal import EntryKind
from hub.v1 import common_pb2 as cpb
from matching.types import RejectReason
from tests.risk.support import AAPL, BUY, MS, MSFT, SEC, SELL, TICK, P, RiskHub

R = RiskReject
ME = "scalper-1"


@dataclass
class Case:
    name: str
    order: tuple[str, int, int, int, int]  # symbol, side, order type, price, quantity
    then: int  # 0: accepted, else the reject reason
    given: Callable[[RiskHub], object] = lambda rh: None
    config: RiskConfig = field(default_factory=RiskConfig)


def _traded_at(price: int) -> Callable[[RiskHub], object]:
    return lambda rh: rh.trade("AAPL", price, 100, "mm-1", "scalper-2")


def _resting(side: int, qty: int, price: int = P) -> Callable[[RiskHub], object]:
    def given(rh: RiskHub) -> None:
        assert rh.order(ME, "AAPL", side, price, qty).accepted
    return given


def _long(qty: int) -> Callable[[RiskHub], object]:
    return lambda rh: rh.trade("AAPL", P, qty, ME, "mm-1")


def _instrument(**kw) -> RiskConfig:
    return RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=AAPL, **kw),))


def _me(**kw) -> RiskConfig:
    return RiskConfig(participants=(ParticipantRiskConfig(participant_id=ME, **kw),))


LIMIT, MARKET = cpb.LIMIT, cpb.MARKET
QTY_1000 = _instrument(max_order_quantity=1_000)
NOTIONAL_19K = _instrument(max_order_notional=19_000_00)
NOTIONAL_19950 = _instrument(max_order_notional=19_950_00)
POS_1000 = _me(position_limits=((AAPL, 1_000),))
THIN = _me(collateral=(("USD", 3_135_00),))  # = 100 AAPL x 190 x 15 % scan x 1.10 initial

CASES = [
    # -- price band (defaults: 5 % of 190.0000 = 9.5000)
    Case("band: buy at exactly +5% is accepted", ("AAPL", BUY, LIMIT, 199_5000, 100), 0),
    Case("band: buy one tick beyond +5% is refused PRICE_BAND", ("AAPL", BUY, LIMIT, 199_5100, 100), R.PRICE_BAND),
    Case("band: sell at exactly -5% is accepted", ("AAPL", SELL, LIMIT, 180_5000, 100), 0),
    Case("band: sell one tick beyond -5% is refused PRICE_BAND", ("AAPL", SELL, LIMIT, 180_4900, 100), R.PRICE_BAND),
    Case("band: EURUSD's own 2% band, +0.02170 accepted", ("EURUSD", BUY, LIMIT, 1_10670, 1_000), 0),
    Case("band: EURUSD one pip beyond 2% refused PRICE_BAND", ("EURUSD", BUY, LIMIT, 1_10671, 1_000), R.PRICE_BAND),
    Case("band: after a hub trade at 195, 204.7500 (+5%) is accepted", ("AAPL", BUY, LIMIT, 204_7500, 100), 0,
         given=_traded_at(195_0000)),
    Case("band: after a hub trade at 195, 204.7600 is refused PRICE_BAND", ("AAPL", BUY, LIMIT, 204_7600, 100),
         R.PRICE_BAND, given=_traded_at(195_0000)),
    Case("band: after a hub trade at 195, the old edge 180.5000 is refused PRICE_BAND",
         ("AAPL", SELL, LIMIT, 180_5000, 100), R.PRICE_BAND, given=_traded_at(195_0000)),
    Case("band: an order the engine refuses anyway gets the engine's reason, not the band's",
         ("AAPL", BUY, LIMIT, 250_0050, 100), RejectReason.PRICE_NOT_ON_TICK),
    # -- max order quantity / notional (risk overrides below the instrument's own caps)
    Case("quantity: exactly the 1,000 cap is accepted", ("AAPL", BUY, LIMIT, P, 1_000), 0, config=QTY_1000),
    Case("quantity: 1,001 is refused MAX_ORDER_QUANTITY", ("AAPL", BUY, LIMIT, P, 1_001), R.MAX_ORDER_QUANTITY,
         config=QTY_1000),
    Case("notional: 100 x 190 = USD 19,000 cap is accepted", ("AAPL", BUY, LIMIT, P, 100), 0, config=NOTIONAL_19K),
    Case("notional: 101 x 190 is refused MAX_ORDER_NOTIONAL", ("AAPL", BUY, LIMIT, P, 101), R.MAX_ORDER_NOTIONAL,
         config=NOTIONAL_19K),
    Case("notional: a market buy of 100 is valued at the band edge 199.50 and accepted",
         ("AAPL", BUY, MARKET, 0, 100), 0, config=NOTIONAL_19950),
    Case("notional: a market buy of 101 at the band edge is refused MAX_ORDER_NOTIONAL",
         ("AAPL", BUY, MARKET, 0, 101), R.MAX_ORDER_NOTIONAL, config=NOTIONAL_19950),
    # -- position limit 1,000 (participant override), worst case incl. open orders
    Case("position: buying exactly the limit from flat is accepted", ("AAPL", BUY, LIMIT, P, 1_000), 0, config=POS_1000),
    Case("position: 1,001 from flat is refused POSITION_LIMIT", ("AAPL", BUY, LIMIT, P, 1_001), R.POSITION_LIMIT,
         config=POS_1000),
    Case("position: a resting buy of 600 counts, 400 more accepted", ("AAPL", BUY, LIMIT, P, 400), 0,
         given=_resting(BUY, 600), config=POS_1000),
    Case("position: a resting buy of 600 counts, 401 more refused POSITION_LIMIT", ("AAPL", BUY, LIMIT, P, 401),
         R.POSITION_LIMIT, given=_resting(BUY, 600), config=POS_1000),
    Case("position: long 300 from a hub trade, selling 1,300 (short 1,000) accepted", ("AAPL", SELL, LIMIT, P, 1_300),
         0, given=_long(300), config=POS_1000),
    Case("position: long 300 from a hub trade, selling 1,301 refused POSITION_LIMIT",
         ("AAPL", SELL, LIMIT, P, 1_301), R.POSITION_LIMIT, given=_long(300), config=POS_1000),
    Case("position: long 300 from a hub trade, buying 701 refused POSITION_LIMIT", ("AAPL", BUY, LIMIT, P, 701),
         R.POSITION_LIMIT, given=_long(300), config=POS_1000),
    # -- margin: collateral USD 3,135.00
    Case("margin: initial requirement exactly equal to equity is accepted", ("AAPL", BUY, LIMIT, P, 100), 0,
         config=THIN),
    Case("margin: one more share is refused MARGIN", ("AAPL", BUY, LIMIT, P, 101), R.MARGIN, config=THIN),
    Case("margin: paying one tick over the mark costs USD 1.00 and is refused MARGIN",
         ("AAPL", BUY, LIMIT, P + TICK, 100), R.MARGIN, config=THIN),
    Case("margin: a resting buy of 50 counts, 50 more accepted", ("AAPL", BUY, LIMIT, P, 50), 0,
         given=_resting(BUY, 50), config=THIN),
    Case("margin: a resting buy of 50 counts, 51 more refused MARGIN", ("AAPL", BUY, LIMIT, P, 51), R.MARGIN,
         given=_resting(BUY, 50), config=THIN),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pretrade_boundary_through_the_hub(make_hub, case: Case) -> None:
    rh = make_hub(case.config)
    case.given(rh)
    rh.clock.advance(MS)
    digest_before = rh.hub.state_digest_bytes()
    seq_before = rh.hub.last_sequence
    symbol, side, otype, price, qty = case.order
    tif = cpb.IOC if otype == MARKET else cpb.GTC
    sent = rh.order(ME, symbol, side, price, qty, order_type=otype, tif=tif)
    assert sent.reason == case.then, f"expected {case.then}, got {sent.reason} {sent.text}"
    entries = [e for e in rh.hub.journal.entries() if e.seq_first > seq_before]
    if case.then in {int(r) for r in RiskReject}:
        assert sent.outcome is None and sent.text == RiskReject(case.then).name
        (entry,) = entries
        assert entry.kind == EntryKind.GATEWAY_REJECT, "a risk reject is journaled, and sequences no command"
        assert b'"reason":%d' % case.then in entry.detail
        assert rh.hub.state_digest_bytes() == digest_before, "a risk reject must not change any state"
    else:
        assert entries[0].kind == EntryKind.ENGINE
        # what follows can only be the risk events the order raised (a bid at the band edge is LULD's limit state)
        assert all(e.kind == EntryKind.ADMIN and b'"action":"risk_events"' in e.detail for e in entries[1:])
    rh.hub.risk.verify()


def test_order_rate_burst_of_50_in_one_instant_then_one_token_every_20ms(make_hub) -> None:
    rh = make_hub()  # defaults: 50 orders/s per participant and instrument, bucket of 50
    t0 = rh.clock.now
    burst = [rh.buy(ME, "AAPL", P - 10 * TICK, 1) for _ in range(50)]
    assert all(s.accepted for s in burst)
    assert len({s.outcome.ts for s in burst}) == 1, "the burst must arrive at one hub instant"
    assert rh.buy(ME, "AAPL", P - 10 * TICK, 1).reason == R.ORDER_RATE
    assert rh.sell(ME, "AAPL", P + 10 * TICK, 1).reason == R.ORDER_RATE, "the bucket is per instrument, both sides"
    # the same instant: another instrument and another participant have buckets of their own
    assert rh.buy(ME, "MSFT", 419_0000, 1).accepted
    assert rh.buy("scalper-2", "AAPL", P - 10 * TICK, 1).accepted
    # one token refills every 20,000,000 ns exactly
    rh.clock.now = t0 + 20 * MS - 1
    assert rh.buy(ME, "AAPL", P - 10 * TICK, 1).reason == R.ORDER_RATE
    rh.clock.now = t0 + 20 * MS
    assert rh.buy(ME, "AAPL", P - 10 * TICK, 1).accepted
    assert rh.buy(ME, "AAPL", P - 10 * TICK, 1).reason == R.ORDER_RATE
    # a replace costs a token too; a cancel never does
    rh.clock.now = t0 + 40 * MS
    first = burst[0].order_id
    assert rh.replace(ME, "AAPL", first, P - 11 * TICK, 1).accepted
    assert rh.replace(ME, "AAPL", first, P - 12 * TICK, 1).reason == R.ORDER_RATE
    assert rh.cancel(ME, "AAPL", burst[1].order_id).accepted
    rh.hub.risk.verify()


def test_session_rate_1500_messages_accepted_and_the_1501st_refused(make_hub) -> None:
    # the per-instrument throttle opened wide, the session limit at its default (500/s, burst 1,500)
    base = RiskConfig()
    rh = make_hub(base.with_(rates=replace(base.rates, orders_per_second=10**6, order_burst=10**6)))
    session = rh.hub.open_session(rh.who[ME], cancel_on_disconnect=False).session_id
    results = [rh.buy(ME, "AAPL", P - (1 + i % 50) * TICK, 1, session_id=session).reason for i in range(1_500)]
    assert results == [0] * 1_500
    assert rh.buy(ME, "AAPL", P, 1, session_id=session).reason == R.SESSION_RATE
    assert rh.buy(ME, "AAPL", P, 1).accepted, "unary calls (no session) use another bucket"
    rh.clock.advance(2 * MS)  # 500/s: one message every 2 ms
    assert rh.buy(ME, "MSFT", 419_0000, 1, session_id=session).accepted
    assert rh.buy(ME, "MSFT", 419_0000, 1, session_id=session).reason == R.SESSION_RATE


def test_replace_is_checked_with_its_own_quantity_released(make_hub) -> None:
    rh = make_hub(POS_1000)
    resting = rh.buy(ME, "AAPL", P, 800)
    assert resting.accepted
    rh.clock.advance(SEC)
    assert rh.replace(ME, "AAPL", resting.order_id, P, 1_001).reason == R.POSITION_LIMIT
    assert rh.replace(ME, "AAPL", resting.order_id, 199_5100, 800).reason == R.PRICE_BAND
    rh.clock.advance(SEC)
    assert rh.replace(ME, "AAPL", resting.order_id, P, 1_000).accepted
    assert rh.hub.risk.position(ME, AAPL) == (0, 1_000, 0), "the Replaced event moved the open quantity"
    assert rh.buy(ME, "AAPL", P, 1).reason == R.POSITION_LIMIT
    assert rh.cancel(ME, "AAPL", resting.order_id).accepted
    assert rh.hub.risk.position(ME, AAPL) == (0, 0, 0), "the Cancelled event released it"
    assert rh.buy(ME, "AAPL", P, 1_000).accepted


def test_fills_move_open_quantity_into_the_position_through_the_hub(make_hub) -> None:
    rh = make_hub(POS_1000)
    resting = rh.buy(ME, "AAPL", P, 600)
    rh.clock.advance(MS)
    assert rh.sell("mm-1", "AAPL", P, 250).trades()
    assert rh.hub.risk.position(ME, AAPL) == (250, 350, 0)
    assert rh.hub.risk.position("mm-1", AAPL) == (-250, 0, 0)
    assert rh.buy(ME, "AAPL", P, 400).accepted  # worst case 250 + 350 + 400 = 1,000
    assert rh.buy(ME, "AAPL", P, 1).reason == R.POSITION_LIMIT
    assert resting.accepted
    rh.hub.risk.verify()


def test_quote_sides_are_checked_for_band_and_limits_but_not_throttled(make_hub) -> None:
    from hub.core import QuoteSpec

    rh = make_hub()
    mm = rh.who["mm-1"]
    _, rows, reason, _ = rh.hub.mass_quote(mm, [QuoteSpec("AAPL", 180_5000, 10, 199_5100, 10),
                                                QuoteSpec("EURUSD", 1_06330, 1_000, 1_10670, 1_000)], 0)
    assert reason == 0
    (aapl_bid, aapl_bid_r, aapl_ask, aapl_ask_r), (eu_bid, eu_bid_r, eu_ask, eu_ask_r) = [r[1:] for r in rows]
    assert aapl_bid and aapl_bid_r == 0, "the bid at exactly -5 % stands"
    assert (aapl_ask, aapl_ask_r) == (0, R.PRICE_BAND), "the ask one tick beyond +5 % is refused"
    assert eu_bid and eu_ask and eu_bid_r == eu_ask_r == 0, "EURUSD's own 2 % band, both edges"
    # quotes skip the order-rate throttle: 60 requotes in one instant all stand
    for i in range(60):
        _, rows, _, _ = rh.hub.mass_quote(mm, [QuoteSpec("MSFT", 419_0000 - i * TICK, 1, 421_0000, 1)], 0)
        assert rows[0][2] == rows[0][4] == 0, (i, rows)
    assert rh.hub.risk.position("mm-1", MSFT) == (0, 1, 1), "each requote replaced the one before"


def test_a_replace_costs_a_token_of_the_session_it_came_in_on_live_and_on_replay(make_hub) -> None:
    """The session limit checks a replace against the caller's session and now also charges it
    there. Before, it was charged to the session that entered the order: a second session could
    replace without limit (its bucket never drained) and drained the first one's instead."""
    base = RiskConfig()
    rh = make_hub(base.with_(rates=replace(base.rates, orders_per_second=10**6, order_burst=10**6,
                                           session_messages_per_second=1, session_burst=3)), durable=True)
    hub, me = rh.hub, rh.who[ME]
    first = hub.open_session(me, cancel_on_disconnect=False).session_id
    second = hub.open_session(me, cancel_on_disconnect=False).session_id
    order = rh.buy(ME, "AAPL", P - TICK, 1, session_id=first)
    assert order.accepted
    for k in range(3):  # the second session's burst
        outcome, reason, _ = hub.replace_order(me, "AAPL", order.order_id, P - (2 + k) * TICK, 1, second)
        assert reason == 0, k
    assert hub.replace_order(me, "AAPL", order.order_id, P - 9 * TICK, 1, second)[1] == R.SESSION_RATE
    assert rh.buy(ME, "AAPL", P - TICK, 1, session_id=first).accepted  # the first session has 2 left
    assert rh.buy(ME, "AAPL", P - TICK, 1, session_id=first).accepted
    assert rh.buy(ME, "AAPL", P - TICK, 1, session_id=first).reason == R.SESSION_RATE
    rh.restart()  # the stop's checkpoint signs this state: replay charged the same buckets
    assert rh.hub.recovery.checkpoint_verified and rh.hub.recovery.checkpoint_size == rh.hub.recovery.records


def test_a_ledger_written_under_rules_1_replays_its_replaces_as_charged_then(make_hub, monkeypatch) -> None:
    """Its CONFIG record carries no rules version: replay charges those replaces to the order's own
    session as the hub that wrote it did, and the checkpoint it signed verifies."""
    import json

    import hub.recovery
    from hub.core import Hub

    written = hub.recovery.config_detail

    def rules_1(h) -> bytes:
        detail = json.loads(written(h))
        del detail["rules"]
        return json.dumps(detail, sort_keys=True, separators=(",", ":")).encode()

    base = RiskConfig()
    risk = base.with_(rates=replace(base.rates, orders_per_second=10**6, order_burst=10**6,
                                    session_messages_per_second=1, session_burst=3))
    with monkeypatch.context() as patched:
        patched.setattr(hub.recovery, "config_detail", rules_1)
        patched.setattr(Hub, "RULES_VERSION", 1)
        rh = make_hub(risk, durable=True)
        me = rh.who[ME]
        first = rh.hub.open_session(me, cancel_on_disconnect=False).session_id
        second = rh.hub.open_session(me, cancel_on_disconnect=False).session_id
        order = rh.buy(ME, "AAPL", P - TICK, 1, session_id=first)
        for k in range(2):  # charged to the first session under rules 1
            assert rh.hub.replace_order(me, "AAPL", order.order_id, P - (2 + k) * TICK, 1, second)[1] == 0
        assert rh.buy(ME, "AAPL", P - TICK, 1, session_id=first).reason == R.SESSION_RATE
        rh.stop()
    rh.hub = rh._start()  # today's hub on that ledger
    assert rh.hub.recovery.checkpoint_verified and rh.hub._rules == Hub.RULES_VERSION == 2
