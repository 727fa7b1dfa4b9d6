"""Cross-margining: one account across asset classes, SPAN-like scan risk, inter-class credits,
FX-converted collateral, profit in one class supporting another, margin call then reduce-only.

Default scans: equities +-15 %, futures +-6 %, crypto +-20 % (SPAN rows incl. 2x at 35 %);
initial = 1.10 x maintenance; equity/future offset credit 50 %. Money in USD cents.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from compliance.risk import (
    BreakerConfig,
    CancelCause,
    CancelOrders,
    MarginCall,
    MarginConfig,
    ParticipantRiskConfig,
    RiskConfig,
    RiskReject,
)
from compliance.risk.config import fx_rates_from_instruments
from matching.instruments import DEFAULT_INSTRUMENTS
from tests.compliance.risk.conftest import AAPL, BTC, BUY, ES, LIMIT, SEC, SELL, T0, kinds, new_engine, trade


def _cfg(collateral: dict[str, tuple[tuple[str, int], ...]], offsets: bool = True, **kw) -> RiskConfig:
    margin = MarginConfig() if offsets else MarginConfig(offsets=())
    return RiskConfig(margin=margin, participants=tuple(
        ParticipantRiskConfig(participant_id=pid, collateral=c) for pid, c in collateral.items()), **kw)


def test_collateral_is_converted_at_the_configured_fx_rate() -> None:
    engine = new_engine(_cfg({"eu": (("EUR", 10_000_00),), "mixed": (("EUR", 1_00), ("GBP", 1_00), ("JPY", 1_000))}))
    assert engine.margin("eu").equity == 10_850_00  # EUR 10,000 at 1.08500
    assert engine.margin("mixed").equity == 108 + 127 + 670  # each converted and floored: 1.085 + 1.27 + 6.70
    assert dict(fx_rates_from_instruments(DEFAULT_INSTRUMENTS)) == {"USD": 10**8, "EUR": 108_500_000,
                                                                     "GBP": 127_000_000}


HEDGER = {"h": (("USD", 50_000_00),)}


def _hedged(offsets: bool):
    """Long 1,579 AAPL at 190 (delta USD 300,010, scan 45,001.50) with USD 50,000 of collateral."""
    engine = new_engine(_cfg(HEDGER, offsets))
    engine.on_trade(T0, AAPL, 190_0000, 1_579, "h", "street")
    return engine


@pytest.mark.parametrize("offsets, side, qty, then", [
    # given long AAPL; when selling ES futures against it; then
    (True, SELL, 1, None),  # hedge: initial 34,651.65 with the 50 % credit <= 50,000
    (False, SELL, 1, RiskReject.MARGIN),  # per-class margin: 49,501.65 + 19,800 = 69,301.65 > 50,000
    (True, BUY, 1, RiskReject.MARGIN),  # same direction: no credit, 69,301.65 > 50,000
    (False, BUY, 1, RiskReject.MARGIN),
    (True, SELL, 2, RiskReject.MARGIN),  # over-hedged: the extra contract is naked, 54,450.50 > 50,000
], ids=["hedge accepted with offsets", "hedge rejected per class", "same-direction rejected",
        "same-direction rejected per class", "over-hedge rejected"])
def test_cross_class_hedge(offsets: bool, side: int, qty: int, then: RiskReject | None) -> None:
    engine = _hedged(offsets)
    assert engine.margin("h").maintenance == 4_500_150
    assert engine.check_order(T0, "h", "h/1", ES, side, LIMIT, 6000_00, qty) == then


def test_hedged_account_numbers_after_the_fill() -> None:
    engine = _hedged(True)
    engine.on_trade(T0, ES, 6000_00, 1, "street", "h")
    m = engine.margin("h")
    # scans 4,500,150 (AAPL) and 1,800,000 (ES); matched delta 30,000,000 of 30,001,000
    # credits: 2,250,000 and 900,000 -> maintenance 3,150,150; initial 2,475,165 + 990,000
    assert (m.maintenance, m.initial, m.equity) == (3_150_150, 3_465_165, 50_000_00)
    no_offsets = _hedged(False)
    no_offsets.on_trade(T0, ES, 6000_00, 1, "street", "h")
    assert (no_offsets.margin("h").maintenance, no_offsets.margin("h").initial) == (6_300_150, 6_930_165)
    engine.verify()


def test_profit_in_one_class_supports_margin_in_another() -> None:
    engine = new_engine(_cfg({"c": (("USD", 25_000_00),)}))
    engine.on_trade(T0, BTC, 95_000_00, 1_00000000, "c", "street")  # long 1 BTC: initial 20,900
    assert engine.check_order(T0, "c", "c/1", AAPL, BUY, LIMIT, 190_0000, 200) == RiskReject.MARGIN  # +6,270
    trade(engine, T0 + SEC, BTC, 99_750_00, 10_000)  # BTC +5 %: +4,750 unrealised
    m = engine.margin("c")
    assert (m.pnl, m.equity, m.initial) == (4_750_00, 29_750_00, 21_945_00)
    assert engine.check_order(T0 + SEC, "c", "c/1", AAPL, BUY, LIMIT, 190_0000, 200) is None  # 28,215 <= 29,750
    engine.verify()


def test_realised_profit_counts_too() -> None:
    engine = new_engine(_cfg({"c": (("USD", 10_000_00),)}))
    engine.on_trade(T0, AAPL, 190_0000, 100, "c", "street")
    engine.on_trade(T0 + SEC, AAPL, 199_0000, 100, "street", "c")  # sold at +9: flat, +900 realised
    m = engine.margin("c")
    assert (m.pnl, m.maintenance, m.initial) == (900_00, 0, 0)
    assert engine.position("c", AAPL) == (0, 0, 0)
    engine.verify()


def test_margin_call_then_reduce_only_after_the_grace() -> None:
    grace = 600 * SEC
    cfg = _cfg({"m": (("USD", 5_000_00),)}, breakers=BreakerConfig(max_daily_loss_bps=10_000))
    engine = new_engine(cfg)
    engine.on_trade(T0, AAPL, 190_0000, 100, "m", "street")  # long 100: maintenance 2,850
    engine.on_order_entered(T0, "m", "m/1", 42, AAPL, BUY, 185_0000, 10)  # a resting bid

    # the price falls to 164: equity 2,400 < maintenance 2,460 -> margin call
    t1 = T0 + 10 * SEC
    events = trade(engine, t1, AAPL, 164_0000, 1)
    calls = [e for e in events if isinstance(e, MarginCall)]
    assert [(c.participant_id, c.equity, c.maintenance, c.reduce_only_at) for c in calls] == [
        ("m", 2_400_00, 2_460_00, t1 + grace)]
    # during the grace: adding risk fails on margin, reducing passes
    assert engine.check_order(t1, "m", "m/1", AAPL, BUY, LIMIT, 164_0000, 1) == RiskReject.MARGIN
    assert engine.check_order(t1, "m", "m/1", AAPL, SELL, LIMIT, 164_0000, 100) is None
    assert engine.tick(t1 + grace - 1) == []
    assert engine.check_order(t1 + grace - 1, "m", "m/1", AAPL, BUY, LIMIT, 164_0000, 1) == RiskReject.MARGIN

    # the grace expires: reduce-only, and the resting bid is cancelled
    events = engine.tick(t1 + grace)
    assert kinds(events) == ["reduce_only_started", "cancel_orders"]
    assert events[0].ts == t1 + grace
    assert isinstance(events[1], CancelOrders) and events[1].order_ids == (42,)
    assert events[1].cause == CancelCause.MARGIN_REDUCE_ONLY
    assert engine.tick(t1 + grace + 1) == []  # announced once
    engine.on_order_done(t1 + grace, 42)
    t2 = t1 + grace
    assert engine.check_order(t2, "m", "m/1", AAPL, BUY, LIMIT, 164_0000, 1) == RiskReject.REDUCE_ONLY
    assert engine.check_order(t2, "m", "m/1", AAPL, SELL, LIMIT, 164_0000, 100) is None
    assert engine.check_order(t2, "m", "m/1", AAPL, SELL, LIMIT, 164_0000, 101) == RiskReject.REDUCE_ONLY

    # the price recovers: equity 3,000 >= maintenance 2,550 -> resolved, reduce-only ends
    events = trade(engine, t2 + SEC, AAPL, 170_0000, 1)
    assert kinds(events) == ["margin_call_resolved", "reduce_only_ended"]
    assert engine.check_order(t2 + SEC, "m", "m/1", AAPL, BUY, LIMIT, 170_0000, 1) is None
    engine.verify()


def test_deposit_resolves_a_margin_call_and_withdrawals_are_checked() -> None:
    cfg = _cfg({"m": (("USD", 5_000_00),)}, breakers=BreakerConfig(max_daily_loss_bps=10_000))
    engine = new_engine(cfg)
    engine.on_trade(T0, AAPL, 190_0000, 100, "m", "street")
    trade(engine, T0 + SEC, AAPL, 164_0000, 1)
    assert engine.margin("m").margin_call_since == T0 + SEC
    events = engine.deposit(T0 + 2 * SEC, "m", "EUR", 100_00)  # EUR 100 = USD 108.50
    assert kinds(events) == ["collateral_changed", "margin_call_resolved"]
    assert engine.margin("m").equity == 2_508_50
    # initial is 2,706 (100 x 164 x 15 % x 1.1): nothing can be withdrawn; a deposit can come back out
    assert engine.check_withdrawal("m", "USD", 1) == RiskReject.MARGIN
    assert engine.check_withdrawal("m", "EUR", 101_00) == RiskReject.MARGIN  # more than the balance
    engine.deposit(T0 + 3 * SEC, "m", "USD", 1_000_00)
    assert engine.check_withdrawal("m", "USD", 802_50) is None  # leaves exactly 2,706.00
    assert engine.check_withdrawal("m", "USD", 802_51) == RiskReject.MARGIN
    engine.verify()


def test_offsets_apply_in_priority_order() -> None:
    """Two pairs share the futures delta: the first configured pair consumes it first."""
    from compliance.risk import OffsetConfig
    from matching.types import AssetClass as AC
    base = MarginConfig()
    first_eq = replace(base, offsets=(OffsetConfig(class_a=AC.EQUITY, class_b=AC.FUTURE, credit_bps=5_000),
                                      OffsetConfig(class_a=AC.CRYPTO, class_b=AC.FUTURE, credit_bps=5_000)))
    first_crypto = replace(base, offsets=tuple(reversed(first_eq.offsets)))
    results = []
    for margin in (first_eq, first_crypto):
        engine = new_engine(RiskConfig(margin=margin))
        engine.on_trade(T0, AAPL, 190_0000, 1_579, "x", "street")  # +300,010
        engine.on_trade(T0, BTC, 95_000_00, 3_15789474, "x", "street")  # ~ +300,000
        engine.on_trade(T0, ES, 6000_00, 1, "street", "x")  # -300,000: enough for one pair only
        results.append(engine.margin("x").maintenance)
        engine.verify()
    # equity first: credit 50 % of AAPL's 45,001.50 and of ES; crypto first: 50 % of BTC's 60,000
    assert results[0] > results[1]


_SPEC = {AAPL: (190_0000, 100, 1), ES: (6000_00, 25, 1), BTC: (95_000_00, 1, 10_000)}  # ref, tick, lot


@settings(max_examples=300, deadline=None)
@given(positions=st.lists(st.tuples(st.sampled_from(sorted(_SPEC)), st.integers(-10, 10)), max_size=4),
       iid=st.sampled_from(sorted(_SPEC)), buy=st.booleans(), lots=st.integers(1, 10), off=st.integers(-20, 20),
       market=st.booleans(), collateral=st.integers(0, 40).map(lambda k: k * 10_000_00), offsets=st.booleans())
def test_margin_decision_equals_entering_the_order(positions, iid, buy, lots, off, market, collateral,
                                                   offsets) -> None:
    """check_order's margin verdict (bound or exact path) equals what the account would look like
    with the order entered: reject iff it adds exposure and the new initial requirement plus the
    execution loss exceeds equity and the current requirement."""
    cfg = _cfg({"x": (("USD", collateral),)}, offsets)

    def given_state():
        engine = new_engine(cfg)
        for i, n in positions:
            ref, _, lot = _SPEC[i]
            scale = 100 if i == AAPL else 1_000 if i == BTC else 1
            if n:
                engine.on_trade(T0, i, ref, abs(n) * lot * scale, "x" if n > 0 else "o", "o" if n > 0 else "x")
        return engine

    engine = given_state()
    ref, tick, lot = _SPEC[iid]
    qty = lots * lot * (10 if iid == AAPL else 1)
    price = ref + off * tick
    reject = engine.check_order(T0, "x", "x/1", iid, BUY if buy else SELL, 2 if market else LIMIT, price, qty)
    if reject not in (None, RiskReject.MARGIN):
        return  # another check decided first
    before = engine.margin("x")
    pos = engine.position("x", iid)[0]
    increases = (pos + qty > 0) if buy else (pos - qty < 0)
    inst = next(i for i in DEFAULT_INSTRUMENTS if i.instrument_id == iid)
    if market:
        width = ref * inst.price_band_bps // 10_000
        price = ref + width if buy else ref - width
    raw_loss = max(0, (price - ref) if buy else (ref - price)) * qty * inst.contract_multiplier
    exec_loss = -((-raw_loss) // 10 ** (inst.price_scale + inst.quantity_scale - 2))  # USD: to cents, rounded up
    after = given_state()
    after.on_order_entered(T0, "x", "x/1", 1, iid, BUY if buy else SELL, price, qty)
    required = after.margin("x").initial + exec_loss
    expected = RiskReject.MARGIN if increases and required > before.equity and required > before.initial else None
    event(f"{reject!r} increases={increases} over_equity={required > before.equity}")
    assert reject == expected
