"""Fee schedule: hand-computed scenario tables (every class pairing, tiers, rounding, month roll-over,
schedule versions), venue-loss validation, TOML loading errors, engine determinism, and properties.

Hand arithmetic used throughout (default schedule, USD, 1 cent = 1 minor unit):
  AAPL 100 shares @ $190.00: notional $19,000;  0.1 bp = $0.19 = 19c;  0.2 bp = 38c.
  ESZ6 2 contracts @ 6000.00 x 50: notional $600,000;  0.1 bp = $6.00 = 600c;  0.2 bp = 1200c.
  EURUSD 1,000,000 @ 1.08500: notional $1,085,000;  0.1 bp = $10.85 = 1085c.
  BTC-USD 0.5 BTC @ 95,000.00: notional $47,500;  0.1 bp = $0.475 = 47.5c.
  Institution per-contract (maker/taker): equity $0.0010/$0.0030 a share (> 10,000: $0.0008/$0.0025,
  > 100,000: $0.0005/$0.0020); futures $0.50/$0.75 (> 10,000: $0.40/$0.60, > 50,000: $0.30/$0.45).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.fees import (
    DEFAULT_FEE_SCHEDULE_TOML,
    DEFAULT_FEE_SCHEDULES,
    FEE_CLASSES,
    MICRO_BP_PER_BP,
    VOLUME_PER_CONTRACT,
    ClassSchedule,
    FeeEngine,
    FeeEngineError,
    FeeRecord,
    FeeSchedule,
    FeeScheduleError,
    FeeScheduleSet,
    FixedFeeCharge,
    Liquidity,
    Month,
    PerContractFees,
    PerContractTier,
    VenueLossError,
    ceil_div,
    contract_volume,
    fee_schedules_from_mapping,
    fee_schedules_from_toml,
    fill_fee,
    fill_fee_exact,
    format_minor,
    load_fee_schedules,
)
from compliance.statements import monthly_statements, venue_revenue_summary
from hub.config import ParticipantClass
from matching.instruments import DEFAULT_INSTRUMENTS, Instrument
from matching.types import MAX_PRICE, AssetClass, Side, Trade

INST = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
INST_BY_ID = {i.instrument_id: i for i in DEFAULT_INSTRUMENTS}
AAPL, ESZ6, EURUSD, BTC = INST["AAPL"], INST["ESZ6"], INST["EURUSD"], INST["BTC-USD"]
SCALPER, INSTITUTION, MARKET_MAKER = "scalper", "institution", "market_maker"

JAN = Month(2026, 1)
FEB = Month(2026, 2)
MAR = Month(2026, 3)
JAN_MID = JAN.start_ns + 14 * 86_400 * 10**9
JAN31_LAST_NS = FEB.start_ns - 1  # 2026-01-31T23:59:59.999999999Z
FEB1_NS = FEB.start_ns  # 2026-02-01T00:00:00Z
FEB_MID = FEB.start_ns + 14 * 86_400 * 10**9


def trade(inst: Instrument, price: int, quantity: int, trade_id: int = 1) -> Trade:
    return Trade(seq=trade_id, instrument_id=inst.instrument_id, trade_id=trade_id, price=price, quantity=quantity,
                 aggressor_side=Side.BUY, maker_order_id=10 * trade_id, maker_account=1, taker_order_id=10 * trade_id + 1,
                 taker_account=2, maker_remaining=0, taker_remaining=0)


def on_trade(engine: FeeEngine, ts: int, inst: Instrument, price: int, qty: int, maker: tuple[str, str],
             taker: tuple[str, str], trade_id: int = 1):
    return engine.on_trade(ts, inst, trade(inst, price, qty, trade_id), maker_id=maker[0], maker_class=maker[1],
                           taker_id=taker[0], taker_class=taker[1])


# -- UNITS AND BASICS -------------------------------------------------------------------------


def test_month_boundaries_are_utc_calendar_months():
    assert Month.of(0) == Month(1970, 1)
    assert FEB1_NS == 1_769_904_000 * 10**9  # 2026-02-01T00:00:00Z
    assert Month.of(JAN31_LAST_NS) == JAN and Month.of(FEB1_NS) == FEB
    assert Month(2025, 12).next() == JAN and JAN.previous() == Month(2025, 12)
    assert Month.of(Month(2028, 3).start_ns - 1) == Month(2028, 2)  # leap February
    assert Month.parse("2026-02") == FEB and FEB.label == "2026-02"


def test_ceil_div_rounds_charges_up_and_rebates_toward_zero():
    assert [ceil_div(n, 10) for n in (-15, -10, -1, 0, 1, 10, 15)] == [-1, -1, 0, 0, 1, 1, 2]


def test_participant_classes_are_the_hub_trading_classes():
    assert set(FEE_CLASSES) == {c.value for c in ParticipantClass} - {"none"}


def test_default_schedule_has_the_documented_numbers():
    v = DEFAULT_FEE_SCHEDULES.schedule_at(0)
    assert v.version == "default-v1" and v.effective_from_ns == 0 and v.billing_currency == "USD"
    s, i, m = (v.classes[c] for c in FEE_CLASSES)
    assert (s.maker_ubp, s.taker_ubp, s.monthly_fee_minor, dict(s.per_contract)) == (-100_000, 100_000, 0, {})
    assert (i.maker_ubp, i.taker_ubp, i.monthly_fee_minor) == (0, 100_000, 1_000_00)
    assert i.per_contract[AssetClass.EQUITY] == PerContractFees(1_000, 3_000, (
        PerContractTier(10_000, 800, 2_500), PerContractTier(100_000, 500, 2_000)))
    assert i.per_contract[AssetClass.FUTURE] == PerContractFees(500_000, 750_000, (
        PerContractTier(10_000, 400_000, 600_000), PerContractTier(50_000, 300_000, 450_000)))
    assert set(i.per_contract) == {AssetClass.EQUITY, AssetClass.FUTURE}  # FX and crypto: bp only
    assert (m.maker_ubp, m.taker_ubp, m.monthly_fee_minor, dict(m.per_contract)) == (-100_000, 200_000, 0, {})
    assert v.venue_loss_violations() == []


# -- SCENARIOS: EVERY CLASS PAIRING -----------------------------------------------------------

PAIRINGS = [
    # given instrument, price, qty | maker class, taker class | then maker fee, taker fee (cents)
    ("AAPL", 190_0000, 100, SCALPER, SCALPER, -19, 19),  # -0.1 bp / +0.1 bp of $19,000
    ("AAPL", 190_0000, 100, SCALPER, INSTITUTION, -19, 49),  # taker 19 + 100 x $0.0030
    ("AAPL", 190_0000, 100, SCALPER, MARKET_MAKER, -19, 38),  # MM taker 0.2 bp
    ("AAPL", 190_0000, 100, INSTITUTION, SCALPER, 10, 19),  # maker 0 bp + 100 x $0.0010
    ("AAPL", 190_0000, 100, INSTITUTION, INSTITUTION, 10, 49),
    ("AAPL", 190_0000, 100, INSTITUTION, MARKET_MAKER, 10, 38),
    ("AAPL", 190_0000, 100, MARKET_MAKER, SCALPER, -19, 19),
    ("AAPL", 190_0000, 100, MARKET_MAKER, INSTITUTION, -19, 49),
    ("AAPL", 190_0000, 100, MARKET_MAKER, MARKET_MAKER, -19, 38),
    ("ESZ6", 6000_00, 2, SCALPER, SCALPER, -600, 600),  # 0.1 bp of $600,000
    ("ESZ6", 6000_00, 2, SCALPER, INSTITUTION, -600, 750),  # 600 + 2 x $0.75
    ("ESZ6", 6000_00, 2, SCALPER, MARKET_MAKER, -600, 1200),
    ("ESZ6", 6000_00, 2, INSTITUTION, SCALPER, 100, 600),  # 2 x $0.50
    ("ESZ6", 6000_00, 2, INSTITUTION, INSTITUTION, 100, 750),
    ("ESZ6", 6000_00, 2, INSTITUTION, MARKET_MAKER, 100, 1200),
    ("ESZ6", 6000_00, 2, MARKET_MAKER, SCALPER, -600, 600),
    ("ESZ6", 6000_00, 2, MARKET_MAKER, INSTITUTION, -600, 750),
    ("ESZ6", 6000_00, 2, MARKET_MAKER, MARKET_MAKER, -600, 1200),
    ("EURUSD", 1_08500, 1_000_000, SCALPER, INSTITUTION, -1085, 1085),  # FX: bp only, no per-contract
    ("EURUSD", 1_08500, 1_000_000, INSTITUTION, MARKET_MAKER, 0, 2170),
    ("BTC-USD", 95_000_00, 50_000_000, SCALPER, SCALPER, -47, 48),  # 47.5c: rebate toward 0, charge up
    ("BTC-USD", 95_000_00, 50_000_000, INSTITUTION, MARKET_MAKER, 0, 95),
]


@pytest.mark.parametrize(("symbol", "price", "qty", "maker_class", "taker_class", "maker_fee", "taker_fee"), PAIRINGS,
                         ids=[f"{p[0]}-{p[3]}-makes-{p[4]}-takes" for p in PAIRINGS])
def test_class_pairing_fees_match_hand_computation(symbol, price, qty, maker_class, taker_class, maker_fee, taker_fee):
    engine = FeeEngine()  # given: the default schedule, no volume last month (base tiers)
    result = on_trade(engine, JAN_MID, INST[symbol], price, qty, ("m", maker_class), ("t", taker_class))  # when
    assert (result.maker_fee, result.taker_fee) == (maker_fee, taker_fee)  # then
    assert result.venue_net == maker_fee + taker_fee >= 0
    assert result.schedule_version == "default-v1" and result.tiers == (0, 0)
    assert result.maker.role is Liquidity.MAKER and result.taker.role is Liquidity.TAKER
    assert result.maker.currency == "USD" and result.maker.notional_raw == price * qty * INST[symbol].contract_multiplier


# -- SCENARIOS: ROUNDING ----------------------------------------------------------------------

ROUNDING = [
    # given instrument, price, qty, class, role | then fee (cents) | exact fee (cents)
    ("AAPL", 190_0000, 100, SCALPER, "taker", 19, Fraction(19)),  # exact: no rounding at all
    ("AAPL", 190_0100, 1, SCALPER, "taker", 1, Fraction(19001, 100000)),  # 0.19001c -> up to 1c
    ("AAPL", 190_0100, 1, SCALPER, "maker", 0, Fraction(-19001, 100000)),  # rebate -0.19001c -> toward 0
    ("AAPL", 150_0000, 10, SCALPER, "maker", -1, Fraction(-3, 2)),  # rebate -1.5c -> -1c
    ("AAPL", 150_0000, 10, SCALPER, "taker", 2, Fraction(3, 2)),  # charge 1.5c -> 2c
    ("AAPL", 190_0000, 1, INSTITUTION, "taker", 1, Fraction(49, 100)),  # 0.19c + 0.30c, rounded once
    ("AAPL", 190_0300, 33, INSTITUTION, "taker", 17, Fraction(1617099, 100000)),  # 6.27099c + 9.9c
    ("EURUSD", 1_08500, 1_000, SCALPER, "taker", 2, Fraction(1085, 1000)),  # tiny FX fill: 1.085c
    ("EURUSD", 1_08500, 1_000, SCALPER, "maker", -1, Fraction(-1085, 1000)),
    ("BTC-USD", 95_000_00, 10_000, SCALPER, "taker", 1, Fraction(95, 10000)),  # 0.0001 BTC: 0.0095c -> 1c
    ("BTC-USD", 95_000_00, 10_000, MARKET_MAKER, "maker", 0, Fraction(-95, 10000)),  # tiny rebate -> 0
    ("ESZ6", 6000_25, 1, SCALPER, "maker", -300, Fraction(-3000125, 10000)),  # -300.0125c -> -300c
]


@pytest.mark.parametrize(("symbol", "price", "qty", "pclass", "role", "fee", "exact"), ROUNDING)
def test_each_fill_is_computed_exactly_then_rounded_once_in_the_venues_favour(symbol, price, qty, pclass, role, fee,
                                                                               exact):
    schedule = DEFAULT_FEE_SCHEDULES.schedule_at(JAN_MID)
    got, base, tier = schedule.fee_for(INST[symbol], pclass, Liquidity(role), price, qty)
    assert (got, base, tier) == (fee, fee, 0)
    cs = schedule.classes[pclass]
    _, pc, _ = cs.per_contract_rates(INST[symbol].asset_class, Liquidity(role), 0)
    assert fill_fee_exact(INST[symbol], price, qty, cs.rate_ubp(Liquidity(role)), pc) == exact
    assert 0 <= got - exact < 1


def test_per_contract_fee_on_fractional_quantities_is_pro_rata_and_exact():
    # a schedule with $0.50 per BTC: 0.5 BTC pays exactly 25c, 0.0001 BTC 0.005c -> 1c
    assert fill_fee(BTC, 95_000_00, 50_000_000, 0, 500_000) == 25
    assert fill_fee_exact(BTC, 95_000_00, 10_000, 0, 500_000) == Fraction(5, 1000)
    assert fill_fee(BTC, 95_000_00, 10_000, 0, 500_000) == 1
    assert contract_volume(BTC, 50_000_000) == VOLUME_PER_CONTRACT // 2
    assert contract_volume(AAPL, 7) == 7 * VOLUME_PER_CONTRACT


# -- SCENARIOS: TIER BOUNDARIES ---------------------------------------------------------------

TIERS = [
    # given the institution's January equity volume | when it trades AAPL 100 @ $190 in February
    # | then tier, maker fee, taker fee (cents), base-tier maker/taker fees
    (9_999, 0, 10, 49),
    (10_000, 0, 10, 49),  # "above 10,000": exactly 10,000 is not discounted
    (10_001, 1, 8, 44),  # 100 x $0.0008; 19 + 100 x $0.0025
    (100_000, 1, 8, 44),
    (100_001, 2, 5, 39),  # 100 x $0.0005; 19 + 100 x $0.0020
]


@pytest.mark.parametrize(("jan_volume", "tier", "maker_fee", "taker_fee"), TIERS)
def test_equity_tier_comes_from_previous_month_volume(jan_volume, tier, maker_fee, taker_fee):
    engine = FeeEngine()
    on_trade(engine, JAN_MID, AAPL, 190_0000, jan_volume, ("s", SCALPER), ("inst", INSTITUTION))
    assert engine.volume("inst", AssetClass.EQUITY) == jan_volume * VOLUME_PER_CONTRACT
    as_maker = on_trade(engine, FEB_MID, AAPL, 190_0000, 100, ("inst", INSTITUTION), ("s", SCALPER), 2)
    as_taker = on_trade(engine, FEB_MID, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 3)
    assert engine.volume("inst", AssetClass.EQUITY, previous=True) == jan_volume * VOLUME_PER_CONTRACT
    assert (as_maker.maker.tier, as_maker.maker_fee, as_taker.taker.tier, as_taker.taker_fee) == (
        tier, maker_fee, tier, taker_fee)
    assert (as_maker.maker.base_fee, as_taker.taker.base_fee) == (10, 49)
    assert (as_maker.maker.discount, as_taker.taker.discount) == (10 - maker_fee, 49 - taker_fee)


@pytest.mark.parametrize(("jan_contracts", "tier", "taker_fee"), [
    (9_999, 0, 750), (10_000, 0, 750), (10_001, 1, 720), (50_001, 2, 690),  # 600 + 2 x $0.75 / $0.60 / $0.45
])
def test_futures_tier_counts_maker_and_taker_contracts_over_several_fills(jan_contracts, tier, taker_fee):
    engine = FeeEngine()
    left, tid, as_maker = jan_contracts, 1, True
    while left:  # ESZ6 orders are at most 5,000 contracts: alternate maker and taker fills
        qty = min(left, 5_000)
        sides = (("inst", INSTITUTION), ("s", SCALPER)) if as_maker else (("s", SCALPER), ("inst", INSTITUTION))
        on_trade(engine, JAN_MID + tid, ESZ6, 6000_00, qty, *sides, trade_id=tid)
        left, tid, as_maker = left - qty, tid + 1, not as_maker
    result = on_trade(engine, FEB_MID, ESZ6, 6000_00, 2, ("s", SCALPER), ("inst", INSTITUTION), tid)
    assert (result.taker.tier, result.taker_fee, result.taker.base_fee) == (tier, taker_fee, 750)


def test_volume_tiers_are_per_asset_class_and_ignore_the_running_month():
    engine = FeeEngine()
    on_trade(engine, JAN_MID, AAPL, 190_0000, 20_000, ("s", SCALPER), ("inst", INSTITUTION))
    # more than 10,000 shares already this month, but January's tier comes from December (nothing)
    assert on_trade(engine, JAN_MID + 1, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 2).taker.tier == 0
    feb_future = on_trade(engine, FEB_MID, ESZ6, 6000_00, 2, ("s", SCALPER), ("inst", INSTITUTION), 3)
    assert (feb_future.taker.tier, feb_future.taker_fee) == (0, 750)  # shares do not count as futures contracts
    assert on_trade(engine, FEB_MID, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 4).taker.tier == 1


# -- SCENARIOS: MONTH ROLL-OVER AND FIXED FEES --------------------------------------------------


def test_last_nanosecond_of_january_counts_for_february_tiers():
    engine = FeeEngine()
    on_trade(engine, JAN31_LAST_NS, AAPL, 190_0000, 10_001, ("s", SCALPER), ("inst", INSTITUTION))
    assert engine.month == JAN
    result = on_trade(engine, FEB1_NS, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 2)
    assert engine.month == FEB and (result.taker.tier, result.taker_fee) == (1, 44)


def test_first_nanosecond_of_february_counts_for_march_tiers():
    engine = FeeEngine()
    on_trade(engine, JAN_MID, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION))
    on_trade(engine, FEB1_NS, AAPL, 190_0000, 10_001, ("s", SCALPER), ("inst", INSTITUTION), 2)
    assert on_trade(engine, FEB_MID, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 3).taker.tier == 0
    assert on_trade(engine, MAR.start_ns, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 4).taker.tier == 1


def test_a_month_without_trades_resets_the_tier():
    engine = FeeEngine()
    on_trade(engine, JAN_MID, AAPL, 190_0000, 10_001, ("s", SCALPER), ("inst", INSTITUTION))
    result = on_trade(engine, MAR.start_ns + 5, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 2)
    assert result.taker.tier == 0  # March's tier comes from February: nothing


def test_fixed_fee_is_charged_once_per_month_including_quiet_months():
    engine = FeeEngine()
    engine.register_participant("inst-2", ParticipantClass.INSTITUTION)  # never trades
    first = on_trade(engine, JAN_MID, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION))
    assert [(c.participant_id, c.month, c.amount, c.currency, c.hub_time_ns) for c in first.fixed_charges] == [
        ("inst", JAN, 1_000_00, "USD", JAN.start_ns), ("inst-2", JAN, 1_000_00, "USD", JAN.start_ns)]
    assert on_trade(engine, JAN31_LAST_NS, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 2).fixed_charges == ()
    assert engine.advance(JAN31_LAST_NS) == ()
    feb = engine.advance(FEB1_NS)  # any sequenced event may bring the month's fees due
    assert [(c.participant_id, c.month) for c in feb] == [("inst", FEB), ("inst-2", FEB)]
    assert on_trade(engine, FEB_MID, AAPL, 190_0000, 100, ("s", SCALPER), ("inst", INSTITUTION), 3).fixed_charges == ()
    april = engine.advance(Month(2026, 4).start_ns + 1)  # nothing happened in March: March is billed too
    assert [(c.participant_id, c.month.label) for c in april] == [
        ("inst", "2026-03"), ("inst", "2026-04"), ("inst-2", "2026-03"), ("inst-2", "2026-04")]


def test_fee_state_cannot_go_back_a_month():
    engine = FeeEngine()
    engine.advance(FEB1_NS + 5)
    engine.advance(FEB1_NS)  # earlier, but the same month: fine
    with pytest.raises(FeeEngineError, match="cannot go back a month"):
        engine.advance(JAN31_LAST_NS)


def test_unknown_class_and_mismatched_instrument_are_refused():
    engine = FeeEngine()
    with pytest.raises(FeeEngineError, match="pays no fees"):
        on_trade(engine, JAN_MID, AAPL, 190_0000, 1, ("op", "none"), ("s", SCALPER))
    with pytest.raises(FeeEngineError, match="not 3"):
        engine.on_trade(JAN_MID, ESZ6, trade(AAPL, 190_0000, 1), maker_id="a", maker_class=SCALPER, taker_id="b",
                        taker_class=SCALPER)


# -- SCENARIOS: VERSIONS AND EFFECTIVE DATES ----------------------------------------------------

TWO_VERSIONS = DEFAULT_FEE_SCHEDULE_TOML + """
[[version]]
id = "2026-03"
effective_from = 2026-03-01T00:00:00Z
[version.scalper]
maker_bp = "-0.15"
taker_bp = "0.15"
[version.institution]
monthly_fee = "1500.00"
maker_bp = "0"
taker_bp = "0.15"
[version.market_maker]
maker_bp = "-0.15"
taker_bp = "0.25"
"""


def test_the_schedule_switches_exactly_at_its_effective_time():
    schedules = fee_schedules_from_toml(TWO_VERSIONS)
    assert [v.version for v in schedules.versions] == ["default-v1", "2026-03"]
    assert schedules.schedule_at(MAR.start_ns - 1).version == "default-v1"
    assert schedules.schedule_at(MAR.start_ns).version == "2026-03"
    engine = FeeEngine(schedules)
    before = on_trade(engine, MAR.start_ns - 1, AAPL, 190_0000, 100, ("s", SCALPER), ("t", SCALPER))
    after = on_trade(engine, MAR.start_ns, AAPL, 190_0000, 100, ("s", SCALPER), ("t", SCALPER), 2)
    assert (before.schedule_version, before.maker_fee, before.taker_fee) == ("default-v1", -19, 19)
    assert (after.schedule_version, after.maker_fee, after.taker_fee) == ("2026-03", -28, 29)  # 28.5c either way


def test_monthly_fixed_fee_is_priced_by_the_version_in_force_on_the_first_of_the_month():
    engine = FeeEngine(fee_schedules_from_toml(TWO_VERSIONS))
    engine.register_participant("inst", INSTITUTION)
    assert [(c.month, c.amount, c.schedule_version) for c in engine.advance(FEB_MID)] == [(FEB, 1_000_00, "default-v1")]
    assert [(c.month, c.amount, c.schedule_version) for c in engine.advance(MAR.start_ns + 10**12)] == [
        (MAR, 1_500_00, "2026-03")]


def test_trading_before_the_first_version_is_an_error():
    late = fee_schedules_from_toml("[[version]]" + TWO_VERSIONS.split("[[version]]")[2])
    assert [v.version for v in late.versions] == ["2026-03"]
    with pytest.raises(FeeEngineError, match="no fee schedule in force"):
        on_trade(FeeEngine(late), FEB_MID, AAPL, 190_0000, 1, ("a", SCALPER), ("b", SCALPER))


# -- VENUE-NET VALIDATION -----------------------------------------------------------------------

LOSSY_BP = DEFAULT_FEE_SCHEDULE_TOML.replace('maker_bp = "-0.1"                # 0.1 bp', 'maker_bp = "-0.3"  # 0.1 bp')
LOSSY_PER_CONTRACT = DEFAULT_FEE_SCHEDULE_TOML.replace(
    '{ above = 100000, maker = "0.0005", taker = "0.0020" }', '{ above = 100000, maker = "-0.0040", taker = "0.0020" }')


def test_a_schedule_that_lets_the_venue_lose_on_bp_is_refused():
    assert LOSSY_BP != DEFAULT_FEE_SCHEDULE_TOML and LOSSY_PER_CONTRACT != DEFAULT_FEE_SCHEDULE_TOML
    with pytest.raises(VenueLossError, match=r"maker scalper -0\.3 bp \+ taker scalper 0\.1 bp = -0\.2 bp.*"
                                             r"allow_venue_loss = true"):
        fee_schedules_from_toml(LOSSY_BP)


def test_a_schedule_that_lets_the_venue_lose_per_contract_is_refused():
    with pytest.raises(VenueLossError, match=r"equity per contract: maker institution best tier -0\.004 \+ "
                                             r"taker institution best tier 0\.002 = -0\.002"):
        fee_schedules_from_toml(LOSSY_PER_CONTRACT)


def test_allow_venue_loss_accepts_it_and_the_loss_is_real():
    """The rule is necessary: each refused schedule really loses money on some trade."""
    allow = 'allow_venue_loss = true '
    bp = fee_schedules_from_toml(LOSSY_BP.replace("allow_venue_loss = false", allow))
    result = on_trade(FeeEngine(bp), JAN_MID, AAPL, 1_000_0000, 1_000, ("a", SCALPER), ("b", SCALPER))
    assert (result.maker_fee, result.taker_fee, result.venue_net) == (-3000, 1000, -2000)  # $1M: -0.3 bp + 0.1 bp
    pc = fee_schedules_from_toml(LOSSY_PER_CONTRACT.replace("allow_venue_loss = false", allow))
    engine = FeeEngine(pc)
    for who in ("a", "b"):  # both institutions in their best tier
        on_trade(engine, JAN_MID, AAPL, 1_0000, 100_001, ("x", SCALPER), (who, INSTITUTION))
    result = on_trade(engine, FEB_MID, AAPL, 100, 1_000, ("a", INSTITUTION), ("b", INSTITUTION), 2)  # $0.01 a share
    assert (result.maker_fee, result.taker_fee, result.venue_net) == (-400, 201, -199)  # low price: per-contract rules


# -- TOML AND MAPPING LOADING -------------------------------------------------------------------


def test_default_toml_loads_from_a_file(tmp_path: Path):
    path = tmp_path / "fees.toml"
    path.write_text(DEFAULT_FEE_SCHEDULE_TOML)
    assert load_fee_schedules(path).digest() == DEFAULT_FEE_SCHEDULES.digest()
    with pytest.raises(FeeScheduleError, match="cannot read fee schedules"):
        load_fee_schedules(tmp_path / "missing.toml")


def _mapping() -> dict:
    return {"version": [{
        "id": "v1", "effective_from": "2026-01-01",
        "scalper": {"maker_bp": "-0.1", "taker_bp": "0.1"},
        "institution": {"monthly_fee": "1000.00", "maker_bp": "0", "taker_bp": "0.1",
                        "per_contract": {"equity": {"maker": "0.001", "taker": "0.003",
                                                    "tiers": [{"above": 10000, "maker": "0.0008", "taker": "0.0025"}]}}},
        "market_maker": {"maker_bp": "-0.1", "taker_bp": "0.2"},
    }]}


def test_a_mapping_loads_with_iso_strings_and_decimal_amounts():
    s = fee_schedules_from_mapping(_mapping()).versions[0]
    assert s.effective_from_ns == JAN.start_ns
    assert s.classes[INSTITUTION].monthly_fee_minor == 100_000
    assert s.classes[INSTITUTION].per_contract[AssetClass.EQUITY].tiers[0] == PerContractTier(10_000, 800, 2_500)


def _set(path: str, value) -> dict:
    doc = _mapping()
    node = doc["version"][0]
    *parents, last = path.split(".")
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


BAD = [
    ("scalper.taker_bp", 0.1, r"scalper\.taker_bp: floats are not exact; write it as a decimal string"),
    ("scalper.taker_bp", 1, r"scalper\.taker_bp: must be a decimal string in bp"),
    ("scalper.taker_bp", "0.1234567", r"more than 6 decimals \(bp\)"),
    ("scalper.taker_bp", "1e-5", r"'1e-5' is not a decimal number"),
    ("scalper.taker_bp", "20000", r"within \+-10000 bp"),
    ("institution.monthly_fee", "1000.001", r"monthly_fee: '1000.001' has more than 2 decimals \(USD\)"),
    ("institution.monthly_fee", "-5", r"monthly_fee must be in 0\.\."),
    ("scalper.maker_fee", "0", r"unknown keys \['maker_fee'\]"),
    ("scalper.maker_bp", KeyError, r"scalper: missing keys \['maker_bp'\]"),
    ("market_maker", KeyError, r"missing keys \['market_maker'\]"),
    ("effective_from", "2026-01-01T00:00:00", r"has no UTC offset"),
    ("effective_from", "1969-12-31", r"at or after 1970"),
    ("effective_from", True, r"effective_from must be a date"),
    ("effective_from", "soon", r"not an ISO date"),
    ("billing_currency", "XYZ", r"billing_currency 'XYZ' is not one of"),
    ("allow_venue_loss", "yes", r"allow_venue_loss must be true or false"),
    ("id", "", r"id must be 1-64 printable"),
    ("institution.per_contract.options", {"maker": "0", "taker": "0"}, r"per_contract: unknown keys \['options'\]"),
    ("institution.per_contract.equity.tiers", [{"above": 5, "maker": "0.0008", "taker": "0.0025"},
                                               {"above": 5, "maker": "0.0007", "taker": "0.002"}],
     r"per_contract\.equity\.tiers: 'above' must be non-negative and strictly increasing"),
    ("institution.per_contract.equity.tiers", [{"above": 5, "maker": "0.002", "taker": "0.0025"}],
     r"tier above 5 charges more than the tier below it"),
    ("institution.per_contract.equity.tiers", [{"above": 5.0, "maker": "0", "taker": "0"}],
     r"tiers\[0\]\.above must be an integer"),
    ("institution.per_contract.equity.tiers", [{"above": 5, "maker": "0"}], r"tiers\[0\]: missing keys \['taker'\]"),
    ("institution.per_contract.equity.maker", "2000000", r"within \+-1000000"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_bad_schedules_are_refused_with_a_message_naming_the_field(path, value, message):
    with pytest.raises(FeeScheduleError, match=message) as exc:
        fee_schedules_from_mapping(_set(path, value))
    assert ("'v1'" if path != "id" else "''") in str(exc.value)


def test_versions_must_be_unique_and_in_chronological_order():
    doc = _mapping()
    doc["version"].append(copy.deepcopy(doc["version"][0]))
    with pytest.raises(FeeScheduleError, match="duplicate version id"):
        fee_schedules_from_mapping(doc)
    doc["version"][1]["id"] = "v0"
    with pytest.raises(FeeScheduleError, match="effective_from must be later than that of 'v1'"):
        fee_schedules_from_mapping(doc)
    with pytest.raises(FeeScheduleError, match=r"expected one or more \[\[version\]\] tables"):
        fee_schedules_from_mapping({"version": []})
    with pytest.raises(FeeScheduleError, match="fee schedule TOML"):
        fee_schedules_from_toml("[[version]\n")


# -- ENGINE: DETERMINISM, DIGEST, SNAPSHOT, RECORDS ---------------------------------------------


def _random_session(seed: int, engine: FeeEngine, n: int = 400) -> list:
    rng = random.Random(seed)
    people = [("s1", SCALPER), ("s2", SCALPER), ("i1", INSTITUTION), ("i2", INSTITUTION), ("m1", MARKET_MAKER)]
    ts, out = JAN.start_ns, []
    for tid in range(1, n + 1):
        ts += rng.randrange(10**13)  # ~400 fills over ~1.5 months
        inst = rng.choice(DEFAULT_INSTRUMENTS)
        qty = rng.randrange(inst.min_quantity, inst.max_quantity // 10 + 1, inst.lot_size)
        price = inst.reference_price + rng.randrange(-20, 21) * inst.tick_size
        maker, taker = rng.sample(people, 2)
        out.append(on_trade(engine, ts, inst, price, qty, maker, taker, tid))
    return out


def test_same_calls_give_same_fees_and_same_digest():
    a, b = FeeEngine(), FeeEngine()
    assert _random_session(7, a) == _random_session(7, b)
    assert a.state_digest() == b.state_digest() and len(a.state_digest()) == 32
    other = FeeEngine()
    _random_session(8, other)
    assert other.state_digest() != a.state_digest()


def test_snapshot_restores_an_engine_that_continues_identically():
    a = FeeEngine()
    _random_session(3, a, 200)
    snap = json.loads(json.dumps(a.snapshot()))
    b = FeeEngine.restore(DEFAULT_FEE_SCHEDULES, snap)
    assert b.state_digest() == a.state_digest()
    assert a.advance(MAR.start_ns + 1) == b.advance(MAR.start_ns + 1)
    assert a.state_digest() == b.state_digest()
    with pytest.raises(FeeEngineError, match="different fee schedule set"):
        FeeEngine.restore(fee_schedules_from_toml(TWO_VERSIONS), snap)


def test_digest_covers_the_schedule_set():
    assert FeeEngine().state_digest() != FeeEngine(fee_schedules_from_toml(TWO_VERSIONS)).state_digest()


def test_fee_records_round_trip_through_canonical_json():
    result = on_trade(FeeEngine(), JAN_MID, ESZ6, 6000_00, 2, ("s", SCALPER), ("inst", INSTITUTION))
    for rec in (result.maker, result.taker):
        wire = json.dumps(rec.to_dict(), sort_keys=True)
        assert FeeRecord.from_dict(json.loads(wire)) == rec
    (charge,) = result.fixed_charges
    assert FixedFeeCharge.from_dict(json.loads(json.dumps(charge.to_dict()))) == charge
    with pytest.raises(ValueError, match="fee record fields"):
        FeeRecord.from_dict({**result.maker.to_dict(), "extra": 1})


def test_engine_and_pure_schedule_agree():
    engine = FeeEngine()
    on_trade(engine, JAN_MID, AAPL, 190_0000, 10_001, ("s", SCALPER), ("inst", INSTITUTION))
    result = on_trade(engine, FEB_MID, AAPL, 190_1200, 300, ("inst", INSTITUTION), ("m", MARKET_MAKER), 2)
    schedule = DEFAULT_FEE_SCHEDULES.schedule_at(FEB_MID)
    prev = engine.volume("inst", AssetClass.EQUITY, previous=True)
    assert schedule.fee_for(AAPL, INSTITUTION, Liquidity.MAKER, 190_1200, 300, prev) == (
        result.maker_fee, result.maker.base_fee, result.maker.tier)
    assert format_minor(result.maker_fee, "USD") == "0.24"  # 300 x $0.0008


# -- PROPERTIES -------------------------------------------------------------------------------

prices = st.integers(min_value=1, max_value=MAX_PRICE)
volumes = st.integers(min_value=0, max_value=200_000).map(lambda c: c * VOLUME_PER_CONTRACT)
classes = st.sampled_from(FEE_CLASSES)


@st.composite
def fills(draw):
    inst = draw(st.sampled_from(DEFAULT_INSTRUMENTS))
    qty = draw(st.integers(min_value=1, max_value=inst.max_quantity // inst.lot_size)) * inst.lot_size
    return inst, draw(prices), qty


@settings(max_examples=1500, deadline=None)
@given(fill=fills(), maker=classes, taker=classes, maker_prev=volumes, taker_prev=volumes)
def test_venue_net_is_never_negative_under_the_default_schedule(fill, maker, taker, maker_prev, taker_prev):
    inst, price, qty = fill
    schedule = DEFAULT_FEE_SCHEDULES.schedule_at(0)
    maker_fee, _, _ = schedule.fee_for(inst, maker, Liquidity.MAKER, price, qty, maker_prev)
    taker_fee, _, _ = schedule.fee_for(inst, taker, Liquidity.TAKER, price, qty, taker_prev)
    assert maker_fee + taker_fee >= 0


@settings(max_examples=300, deadline=None)
@given(fill=fills(), maker=classes, taker=classes, jan_qty=st.integers(min_value=0, max_value=1_000_000))
def test_venue_net_is_never_negative_through_the_engine(fill, maker, taker, jan_qty):
    inst, price, qty = fill
    engine = FeeEngine()
    if jan_qty:  # put both sides in some tier from January volume
        on_trade(engine, JAN_MID, AAPL, 190_0000, jan_qty, ("a", maker), ("b", taker), 1)
        on_trade(engine, JAN_MID, ESZ6, 6000_00, min(jan_qty, 5_000), ("b", taker), ("a", maker), 2)
    result = on_trade(engine, FEB_MID, inst, price, qty, ("a", maker), ("b", taker), 3)
    assert result.venue_net >= 0


ubp = st.integers(min_value=-2 * MICRO_BP_PER_BP, max_value=2 * MICRO_BP_PER_BP)
micro = st.integers(min_value=-5_000, max_value=5_000)


@st.composite
def random_schedules(draw):
    classes_ = {}
    for name in FEE_CLASSES:
        per_contract = {}
        if draw(st.booleans()):
            base_m, base_t = draw(micro), draw(micro)
            cut_m, cut_t = draw(st.integers(0, 3_000)), draw(st.integers(0, 3_000))
            per_contract[AssetClass.EQUITY] = PerContractFees(base_m, base_t, (
                PerContractTier(10_000, base_m - cut_m, base_t - cut_t),))
        classes_[name] = ClassSchedule(0, draw(ubp), draw(ubp), per_contract)
    return FeeSchedule("random", 0, classes_, allow_venue_loss=True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=random_schedules(), fill=fills(), maker=classes, taker=classes, maker_prev=volumes, taker_prev=volumes)
def test_validation_is_sufficient_any_accepted_schedule_never_loses(schedule, fill, maker, taker, maker_prev,
                                                                     taker_prev):
    inst, price, qty = fill
    maker_fee, _, _ = schedule.fee_for(inst, maker, Liquidity.MAKER, price, qty, maker_prev)
    taker_fee, _, _ = schedule.fee_for(inst, taker, Liquidity.TAKER, price, qty, taker_prev)
    if not schedule.venue_loss_violations():
        assert maker_fee + taker_fee >= 0
        strict = dataclasses.replace(schedule, allow_venue_loss=False)
        assert FeeScheduleSet((strict,)).versions[0] is strict


@settings(max_examples=500, deadline=None)
@given(fill=fills(), rate=st.integers(-10**7, 10**7), pc=st.integers(-10**7, 10**7))
def test_every_fee_is_the_ceiling_of_the_exact_fee(fill, rate, pc):
    inst, price, qty = fill
    exact = fill_fee_exact(inst, price, qty, rate, pc)
    fee = fill_fee(inst, price, qty, rate, pc)
    assert 0 <= fee - exact < 1


def test_a_million_fees_sum_exactly_to_the_statement_total_no_drift():
    """1,000,000 fills, each fee computed individually (exact, rounded once): the statement total is
    exactly their integer sum, and it exceeds the exact (unrounded) total by less than one minor unit
    per fill, in the venue's favour. The exact total is summed independently, per instrument, as
    integer numerators over the instrument's common denominator."""
    rng = random.Random(20260201)
    n = 1_000_000
    schedule = DEFAULT_FEE_SCHEDULES.schedule_at(0)
    choices = []
    for inst in (AAPL, ESZ6, EURUSD, BTC):
        for cls in FEE_CLASSES:
            for role in Liquidity:
                pc = schedule.classes[cls].per_contract_rates(inst.asset_class, role, 0)[1]
                choices.append((inst, cls, role, schedule.classes[cls].rate_ubp(role), pc,
                                inst.price_scale + inst.quantity_scale, 10 ** (inst.price_scale + 4)))
    exact_numerators = dict.fromkeys((c[0].instrument_id for c in choices), 0)
    records, total, draw, k = [], 0, rng.getrandbits, len(choices)
    for i in range(n):
        bits = draw(40)
        inst, cls, role, rate, pc, scale, pc_factor = choices[bits % k]
        price = inst.reference_price + ((bits >> 8) % 1001 - 500) * inst.tick_size
        qty = ((bits >> 20) % 1999 + 1) * inst.lot_size
        fee = fill_fee(inst, price, qty, rate, pc)  # the function under test, one fill at a time
        total += fee
        notional = price * qty * inst.contract_multiplier
        exact_numerators[inst.instrument_id] += notional * rate + qty * pc * pc_factor
        records.append(FeeRecord(i, JAN_MID, "p", cls, role, inst.instrument_id, inst.symbol, inst.asset_class, "USD",
                                 qty, inst.quantity_scale, notional, scale, fee, fee, "default-v1", 0))
    statement = monthly_statements(JAN, records)["p"]
    totals = statement.total("USD")
    assert totals.fill_fees + totals.rebates == total == sum(r.fee for r in records)
    assert totals.fills == n and statement.fills == n
    assert venue_revenue_summary(records, month=JAN).total("USD").net == total
    exact_total = sum(Fraction(num, 10 ** (INST_BY_ID[iid].price_scale + INST_BY_ID[iid].quantity_scale - 2 + 10))
                      for iid, num in exact_numerators.items())
    assert 0 <= total - exact_total < n


@pytest.mark.parametrize("label", ["0000-01", "1969-12", "2262-01", "9999-12", "2026-00", "2026-13", "26-01"])
def test_a_month_outside_hub_time_or_malformed_is_refused_as_a_value_error(label: str) -> None:
    """Hub time is int64 ns since 1970: a statement for year 0 or 9999 is a bad argument (the
    service answers INVALID_ARGUMENT), not a crash building its date range (INTERNAL)."""
    with pytest.raises(ValueError):
        Month.parse(label)


def test_the_first_and_last_months_of_hub_time_parse() -> None:
    assert Month.parse("1970-01").label == "1970-01" and Month.parse("2261-12").start_ns > 0


def test_a_participant_configured_again_is_billed_from_then_not_for_the_months_it_was_away() -> None:
    engine = FeeEngine(DEFAULT_FEE_SCHEDULES)
    engine.set_participants({"x": "institution"}, Month(2026, 1).start_ns)
    january = engine.advance(Month(2026, 1).start_ns + 1)
    assert [(c.participant_id, c.month.label) for c in january] == [("x", "2026-01")]
    engine.set_participants({}, Month(2026, 2).start_ns + 5)  # removed at a restart in February
    assert engine.advance(Month(2026, 3).start_ns) == ()
    engine.set_participants({"x": "institution"}, Month(2026, 6).start_ns + 5)  # back in June
    june = engine.advance(Month(2026, 6).start_ns + 10)
    assert [(c.participant_id, c.month.label) for c in june] == [("x", "2026-06")]
    engine.set_participants({}, Month(2026, 6).start_ns + 20)
    engine.set_participants({"x": "institution"}, Month(2026, 6).start_ns + 30)  # and again, same month
    assert engine.advance(Month(2026, 6).start_ns + 40) == ()  # not billed twice for June
