"""Pre-trade checks at their exact boundaries: given a state, when one order arrives, then the
expected reject (or None = accepted).

AAPL: reference 190.0000 (price units of 0.0001 USD, tick 100), band 500 bps, max quantity
1,000,000, max notional USD 50 M, default base position limit 10 x 1,000,000. EURUSD: band
200 bps. Default collateral USD 10 M.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.risk import (
    InstrumentRiskConfig,
    KillMode,
    ParticipantRiskConfig,
    RiskConfig,
    RiskEngine,
    RiskReject,
    Scope,
    limits,
)
from tests.compliance.risk.conftest import AAPL, BUY, ES, EURUSD, LIMIT, MARKET, SELL, T0, new_engine, trade

R = RiskReject


@dataclass
class Case:
    name: str
    order: tuple[int, int, int, int, int]  # instrument, side, type, price, quantity
    then: RiskReject | None
    given: Callable[[RiskEngine], object] = lambda e: None
    config: RiskConfig = field(default_factory=RiskConfig)
    participant: str = "p"


def _trade_aapl_at(price: int) -> Callable[[RiskEngine], object]:
    return lambda e: trade(e, T0, AAPL, price, 100)


def _long(qty: int, iid: int = AAPL, price: int = 190_0000) -> Callable[[RiskEngine], object]:
    return lambda e: e.on_trade(T0, iid, price, qty, "p", "other")


def _open(side: int, qty: int, price: int = 190_0000, order_id: int = 77) -> Callable[[RiskEngine], object]:
    return lambda e: e.on_order_entered(T0, "p", "p/s0", order_id, AAPL, side, price, qty)


def _both(*steps: Callable[[RiskEngine], object]) -> Callable[[RiskEngine], object]:
    return lambda e: [s(e) for s in steps]


_BAND_100 = RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=AAPL, price_band_bps=100),))
_QTY_1000 = RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=AAPL, max_order_quantity=1_000),))
_NOTIONAL_19K = RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=AAPL, max_order_notional=19_000_00),))
_NOTIONAL_19950 = RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=AAPL, max_order_notional=19_950_00),))
_LIMIT_1000 = RiskConfig(participants=(ParticipantRiskConfig(participant_id="p", position_limits=((AAPL, 1_000),)),))
_THIN = RiskConfig(participants=(ParticipantRiskConfig(participant_id="p", collateral=(("USD", 3_135_00),)),))

CASES = [
    # -- price band: 5.00 % of 190.0000 is 9.5000 -------------------------------------------
    Case("band: buy at exactly +5.00% is accepted", (AAPL, BUY, LIMIT, 199_5000, 100), None),
    Case("band: buy one tick beyond +5% is rejected", (AAPL, BUY, LIMIT, 199_5100, 100), R.PRICE_BAND),
    Case("band: sell at exactly -5.00% is accepted", (AAPL, SELL, LIMIT, 180_5000, 100), None),
    Case("band: sell one tick beyond -5% is rejected", (AAPL, SELL, LIMIT, 180_4900, 100), R.PRICE_BAND),
    Case("band: a buy far below the reference is outside the band too", (AAPL, BUY, LIMIT, 180_4900, 100), R.PRICE_BAND),
    Case("band: market orders carry no price and pass the band", (AAPL, BUY, MARKET, 0, 100), None),
    Case("band override 1%: exactly +1.00% accepted", (AAPL, BUY, LIMIT, 191_9000, 100), None, config=_BAND_100),
    Case("band override 1%: one tick beyond rejected", (AAPL, BUY, LIMIT, 191_9100, 100), R.PRICE_BAND,
         config=_BAND_100),
    Case("band: instrument's own 2% (EURUSD 1.08500): +2170 accepted", (EURUSD, BUY, LIMIT, 1_10670, 1_000), None),
    Case("band: EURUSD +2171 rejected", (EURUSD, BUY, LIMIT, 1_10671, 1_000), R.PRICE_BAND),
    Case("band moves with trades: after a trade at 195, +5% = 204.7500 accepted",
         (AAPL, BUY, LIMIT, 204_7500, 100), None, given=_trade_aapl_at(195_0000)),
    Case("band moves with trades: 204.7600 rejected", (AAPL, BUY, LIMIT, 204_7600, 100), R.PRICE_BAND,
         given=_trade_aapl_at(195_0000)),
    Case("band moves with trades: 185.2500 accepted", (AAPL, SELL, LIMIT, 185_2500, 100), None,
         given=_trade_aapl_at(195_0000)),
    Case("band moves with trades: 185.2400 rejected", (AAPL, SELL, LIMIT, 185_2400, 100), R.PRICE_BAND,
         given=_trade_aapl_at(195_0000)),
    # -- max order quantity / notional ---------------------------------------------------------
    Case("quantity: exactly the cap is accepted", (AAPL, BUY, LIMIT, 190_0000, 1_000), None, config=_QTY_1000),
    Case("quantity: one more share is rejected", (AAPL, BUY, LIMIT, 190_0000, 1_001), R.MAX_ORDER_QUANTITY,
         config=_QTY_1000),
    Case("notional: USD 50 M cap, 263,157 x 190 accepted", (AAPL, BUY, LIMIT, 190_0000, 263_157), None),
    Case("notional: 263,158 x 190 rejected", (AAPL, BUY, LIMIT, 190_0000, 263_158), R.MAX_ORDER_NOTIONAL),
    Case("notional override 19,000: 100 x 190 accepted", (AAPL, BUY, LIMIT, 190_0000, 100), None,
         config=_NOTIONAL_19K),
    Case("notional override 19,000: 101 x 190 rejected", (AAPL, BUY, LIMIT, 190_0000, 101), R.MAX_ORDER_NOTIONAL,
         config=_NOTIONAL_19K),
    Case("notional: a market buy is valued at the band edge (100 x 199.50 = 19,950) accepted",
         (AAPL, BUY, MARKET, 0, 100), None, config=_NOTIONAL_19950),
    Case("notional: market buy 101 x 199.50 rejected", (AAPL, BUY, MARKET, 0, 101), R.MAX_ORDER_NOTIONAL,
         config=_NOTIONAL_19950),
    # -- position limit (base 1,000, factor 1.0) -----------------------------------------------
    Case("position: buy exactly the limit from flat", (AAPL, BUY, LIMIT, 190_0000, 1_000), None, config=_LIMIT_1000),
    Case("position: buy one over the limit", (AAPL, BUY, LIMIT, 190_0000, 1_001), R.POSITION_LIMIT,
         config=_LIMIT_1000),
    Case("position: sell exactly the limit from flat", (AAPL, SELL, LIMIT, 190_0000, 1_000), None, config=_LIMIT_1000),
    Case("position: sell one over", (AAPL, SELL, LIMIT, 190_0000, 1_001), R.POSITION_LIMIT, config=_LIMIT_1000),
    Case("position: open buy 600 counts; buy 400 more accepted", (AAPL, BUY, LIMIT, 190_0000, 400), None,
         given=_open(BUY, 600), config=_LIMIT_1000),
    Case("position: open buy 600 counts; buy 401 more rejected", (AAPL, BUY, LIMIT, 190_0000, 401), R.POSITION_LIMIT,
         given=_open(BUY, 600), config=_LIMIT_1000),
    Case("position: open buys do not count against a sell", (AAPL, SELL, LIMIT, 190_0000, 1_000), None,
         given=_open(BUY, 600), config=_LIMIT_1000),
    Case("position: long 300 -> buy 700 accepted", (AAPL, BUY, LIMIT, 190_0000, 700), None, given=_long(300),
         config=_LIMIT_1000),
    Case("position: long 300 -> buy 701 rejected", (AAPL, BUY, LIMIT, 190_0000, 701), R.POSITION_LIMIT,
         given=_long(300), config=_LIMIT_1000),
    Case("position: long 300 -> sell 1,300 accepted (ends short 1,000)", (AAPL, SELL, LIMIT, 190_0000, 1_300), None,
         given=_long(300), config=_LIMIT_1000),
    Case("position: long 300 -> sell 1,301 rejected", (AAPL, SELL, LIMIT, 190_0000, 1_301), R.POSITION_LIMIT,
         given=_long(300), config=_LIMIT_1000),
    Case("position: long 300 + open sell 500 -> sell 801 rejected", (AAPL, SELL, LIMIT, 190_0000, 801),
         R.POSITION_LIMIT, given=_both(_long(300), _open(SELL, 500)), config=_LIMIT_1000),
    Case("position: limit shrank below a long 1,500 -> a reducing sell is accepted", (AAPL, SELL, LIMIT, 190_0000, 100),
         None, given=_long(1_500), config=_LIMIT_1000),
    Case("position: ... but any buy is rejected", (AAPL, BUY, LIMIT, 190_0000, 1), R.POSITION_LIMIT,
         given=_long(1_500), config=_LIMIT_1000),
    # -- margin: collateral USD 3,135.00 = 100 AAPL x 190 x 15 % scan x 1.10 initial -------------
    Case("margin: initial requirement exactly equal to equity accepted", (AAPL, BUY, LIMIT, 190_0000, 100), None,
         config=_THIN),
    Case("margin: one more share rejected", (AAPL, BUY, LIMIT, 190_0000, 101), R.MARGIN, config=_THIN),
    Case("margin: short side is symmetric, 100 accepted", (AAPL, SELL, LIMIT, 190_0000, 100), None, config=_THIN),
    Case("margin: paying one tick above the mark costs USD 1.00 and breaks it",
         (AAPL, BUY, LIMIT, 190_0100, 100), R.MARGIN, config=_THIN),
    Case("margin: closing at the band edge is never refused for margin", (AAPL, SELL, LIMIT, 180_5000, 100), None,
         given=_long(100), config=RiskConfig(participants=(ParticipantRiskConfig(participant_id="p",
                                                                                 collateral=(("USD", 1_00),)),))),
    Case("margin: flipping to short 1 keeps the worst case (long 100) and passes", (AAPL, SELL, LIMIT, 190_0000, 101),
         None, given=_long(100), config=RiskConfig(participants=(ParticipantRiskConfig(participant_id="p",
                                                                                      collateral=(("USD", 1_00),)),))),
    Case("margin: flipping to short 101 raises the worst case and is refused", (AAPL, SELL, LIMIT, 190_0000, 201),
         R.MARGIN,
         given=_long(100), config=RiskConfig(participants=(ParticipantRiskConfig(participant_id="p",
                                                                                 collateral=(("USD", 1_00),)),))),
    Case("margin: selling one tick above the mark is no extra loss", (AAPL, SELL, LIMIT, 190_0100, 100), None,
         config=_THIN),
    # -- kill switch and reduce-only -----------------------------------------------------------
    Case("kill: hub BLOCK rejects everyone", (ES, BUY, LIMIT, 6000_00, 1), R.KILL_SWITCH,
         given=lambda e: e.kill(T0, Scope.HUB)),
    Case("kill: BLOCK beats a band breach (first check wins)", (AAPL, BUY, LIMIT, 250_0000, 1), R.KILL_SWITCH,
         given=lambda e: e.kill(T0, Scope.PARTICIPANT, "p")),
    Case("reduce-only: long 100, sell 100 accepted", (AAPL, SELL, LIMIT, 190_0000, 100), None,
         given=_both(_long(100), lambda e: e.kill(T0, Scope.PARTICIPANT, "p", mode=KillMode.REDUCE_ONLY))),
    Case("reduce-only: long 100, sell 101 would flip short: rejected", (AAPL, SELL, LIMIT, 190_0000, 101),
         R.REDUCE_ONLY, given=_both(_long(100), lambda e: e.kill(T0, Scope.PARTICIPANT, "p", mode=KillMode.REDUCE_ONLY))),
    Case("reduce-only: long 100, any buy rejected", (AAPL, BUY, LIMIT, 190_0000, 1), R.REDUCE_ONLY,
         given=_both(_long(100), lambda e: e.kill(T0, Scope.PARTICIPANT, "p", mode=KillMode.REDUCE_ONLY))),
    Case("reduce-only: class scope applies to its instruments only", (ES, BUY, LIMIT, 6000_00, 1), None,
         given=lambda e: e.kill(T0, Scope.ASSET_CLASS, "EQUITY", mode=KillMode.REDUCE_ONLY)),
    Case("unknown instrument", (999, BUY, LIMIT, 1, 1), R.UNKNOWN_INSTRUMENT),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pretrade_boundary(case: Case) -> None:
    engine = new_engine(case.config)
    case.given(engine)
    before = engine.state_digest()
    iid, side, otype, price, qty = case.order
    assert engine.check_order(T0 + 1, case.participant, "p/s1", iid, side, otype, price, qty) == case.then
    assert engine.state_digest() == before, "check_order must not change state"
    engine.verify()


def test_reject_codes_are_the_5xx_range() -> None:
    assert {int(r) for r in RiskReject} <= set(range(500, 600))
    assert (R.PRICE_BAND, R.ORDER_RATE, R.SESSION_RATE, R.KILL_SWITCH, R.POSITION_LIMIT, R.MARGIN, R.REDUCE_ONLY,
            R.INSTRUMENT_PAUSED) == (501, 502, 503, 504, 505, 506, 507, 508)


def test_replace_is_checked_without_its_own_old_quantity() -> None:
    engine = new_engine(_LIMIT_1000)
    engine.on_order_entered(T0, "p", "s", 1, AAPL, BUY, 190_0000, 800)
    # replacing 800 by 1,000 is within the limit (the old 800 is released) ...
    assert engine.check_replace(T0, "p", "s", 1, 190_0000, 1_000) is None
    assert engine.check_replace(T0, "p", "s", 1, 190_0000, 1_001) == R.POSITION_LIMIT
    assert engine.check_replace(T0, "p", "s", 1, 199_5100, 10) == R.PRICE_BAND
    # ... someone else's order id is not this participant's business
    assert engine.check_replace(T0, "q", "s", 1, 199_5100, 10) is None
    engine.on_replace_entered(T0, "p", "s", 1)
    engine.on_order_replaced(T0, 1, 190_0000, 1_000)
    assert engine.position("p", AAPL) == (0, 1_000, 0)
    assert engine.check_order(T0, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1) == R.POSITION_LIMIT
    engine.on_order_done(T0, 1)
    assert engine.position("p", AAPL) == (0, 0, 0)
    engine.verify()


def test_fills_move_open_quantity_into_the_position() -> None:
    engine = new_engine(_LIMIT_1000)
    engine.on_order_entered(T0, "p", "s", 1, AAPL, BUY, 190_0000, 600)
    engine.on_order_entered(T0, "q", "s2", 2, AAPL, SELL, 190_0000, 250)
    engine.on_trade(T0, AAPL, 190_0000, 250, "p", "q", 1, 2)
    assert engine.position("p", AAPL) == (250, 350, 0)
    assert engine.position("q", AAPL) == (-250, 0, 0)
    engine.on_order_done(T0, 2)  # q's order fully filled
    assert engine.open_order_ids() == [1]
    # worst case is still 600 long: 400 more fit, 401 do not
    assert engine.check_order(T0, "p", "s", AAPL, BUY, LIMIT, 190_0000, 400) is None
    assert engine.check_order(T0, "p", "s", AAPL, BUY, LIMIT, 190_0000, 401) == R.POSITION_LIMIT
    engine.verify()


@settings(max_examples=200, deadline=None)
@given(pos=st.integers(-3_000, 3_000), open_buy=st.integers(0, 1_000), open_sell=st.integers(0, 1_000),
       qty=st.integers(1, 1_000), limit=st.integers(0, 3_000), buy=st.booleans())
def test_position_check_agrees_with_the_documented_rule(pos: int, open_buy: int, open_sell: int, qty: int,
                                                        limit: int, buy: bool) -> None:
    cfg = RiskConfig(participants=(ParticipantRiskConfig(participant_id="p", collateral=(("USD", 10**13),),
                                                         position_limits=((AAPL, limit),)),))
    engine = new_engine(cfg)
    if pos:
        engine.on_trade(T0, AAPL, 190_0000, abs(pos), "p" if pos > 0 else "o", "o" if pos > 0 else "p")
    if open_buy:
        engine.on_order_entered(T0, "p", "s", 1, AAPL, BUY, 190_0000, open_buy)
    if open_sell:
        engine.on_order_entered(T0, "p", "s", 2, AAPL, SELL, 190_0000, open_sell)
    worst = limits.worst_case(buy, pos, open_buy, open_sell, qty)
    expected = None if limits.within_position_limit(buy, worst, limit) else R.POSITION_LIMIT
    assert engine.check_order(T0, "p", "s", AAPL, BUY if buy else SELL, LIMIT, 190_0000, qty) == expected


@settings(max_examples=200, deadline=None)
@given(ticks=st.integers(-1_500, 1_500), band=st.integers(1, 2_000))
def test_band_check_agrees_with_the_documented_rule(ticks: int, band: int) -> None:
    engine = new_engine(RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=AAPL, price_band_bps=band),)))
    price = 190_0000 + ticks * 100
    expected = None if limits.within_band(price, 190_0000, band) else R.PRICE_BAND
    assert engine.check_order(T0, "p", "s", AAPL, BUY, LIMIT, price, 1) == expected
    low, high = limits.band_edges(190_0000, band)
    assert limits.within_band(low, 190_0000, band) and limits.within_band(high, 190_0000, band)
    assert not limits.within_band(low - 1, 190_0000, band) and not limits.within_band(high + 1, 190_0000, band)
