"""Risk configuration: the issue's defaults, validation errors that name the entry, TOML mapping."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest

from compliance.risk import (
    BreakerConfig,
    ClassMarginConfig,
    InstrumentRiskConfig,
    MarginConfig,
    OffsetConfig,
    ParticipantRiskConfig,
    RateLimitConfig,
    RiskConfig,
    RiskConfigError,
    Scenario,
    VolatilityConfig,
    risk_config_from_mapping,
    span_scenarios,
)
from matching.instruments import DEFAULT_INSTRUMENTS
from matching.types import AssetClass


def test_defaults_follow_the_issue() -> None:
    cfg = RiskConfig().validated(DEFAULT_INSTRUMENTS)
    assert (cfg.rates.orders_per_second, cfg.rates.order_burst) == (50, 50)
    assert (cfg.breakers.latency_threshold_ns, cfg.breakers.latency_consecutive) == (50_000_000, 3)
    assert cfg.breakers.max_daily_loss_bps == 200
    assert (cfg.breakers.luld_limit_state_ns, cfg.breakers.luld_pause_ns) == (15 * 10**9, 300 * 10**9)
    assert {i.price_band_bps for i in DEFAULT_INSTRUMENTS if i.asset_class in (AssetClass.EQUITY, AssetClass.FUTURE)} \
        == {500}


def test_span_scenarios_and_worst_moves() -> None:
    rows = span_scenarios(1_500)
    assert [r.move_bps for r in rows] == [0, 500, -500, 1_000, -1_000, 1_500, -1_500, 3_000, -3_000]
    assert ClassMarginConfig(asset_class=AssetClass.EQUITY, scenarios=rows).worst_moves() == (
        1_500 * 10_000, 1_500 * 10_000)  # the 2x extreme at 35 % covers only 1,050
    skew = ClassMarginConfig(asset_class=AssetClass.EQUITY, scenarios=(Scenario(move_bps=-2_000),
                                                                       Scenario(move_bps=500)))
    assert skew.worst_moves() == (2_000 * 10_000, 500 * 10_000)


BAD = [
    ("rates", RiskConfig(rates=RateLimitConfig(orders_per_second=0)), "orders_per_second"),
    ("volatility floor > cap", RiskConfig(volatility=VolatilityConfig(floor_bps=9_000, cap_bps=8_000)), "floor_bps"),
    ("hysteresis >= step", RiskConfig(volatility=VolatilityConfig(hysteresis_bps=500)), "hysteresis_bps"),
    ("missing reference vol", RiskConfig(volatility=VolatilityConfig(reference_vol_bps=((AssetClass.EQUITY, 1),))),
     "reference volatility"),
    ("base currency rate", RiskConfig(margin=MarginConfig(fx_rates=(("USD", 2),))), "base currency"),
    ("unknown fx currency", RiskConfig(margin=MarginConfig(fx_rates=(("USD", 10**8), ("XAU", 1)))), "XAU"),
    ("instrument currency without rate", RiskConfig(margin=MarginConfig(fx_rates=(("EUR", 10**8),),
                                                                        base_currency="EUR")), "no FX rate"),
    ("class without scenarios", RiskConfig(margin=MarginConfig(classes=MarginConfig().classes[:3])), "CRYPTO"),
    ("offset rate", RiskConfig(margin=MarginConfig(offsets=(OffsetConfig(class_a=AssetClass.EQUITY,
                                                                        class_b=AssetClass.FUTURE,
                                                                        credit_bps=10_001),))), "credit_bps"),
    ("offset same class", RiskConfig(margin=MarginConfig(offsets=(OffsetConfig(class_a=AssetClass.FX,
                                                                              class_b=AssetClass.FX,
                                                                              credit_bps=1),))), "different"),
    ("initial below maintenance", RiskConfig(margin=replace(MarginConfig(), classes=(
        replace(MarginConfig().classes[0], initial_bps=9_999), *MarginConfig().classes[1:]))), "initial_bps"),
    ("daily loss", RiskConfig(breakers=BreakerConfig(max_daily_loss_bps=0)), "max_daily_loss_bps"),
    ("unknown instrument override", RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=99),)), "[99]"),
    ("band override", RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=1, price_band_bps=0),)),
     "price_band_bps"),
    ("qty override off lot", RiskConfig(instruments=(InstrumentRiskConfig(instrument_id=5, max_order_quantity=1_500),)),
     "lot"),
    ("duplicate participant", RiskConfig(participants=(ParticipantRiskConfig(participant_id="a"),
                                                       ParticipantRiskConfig(participant_id="a"))), "'a'"),
    ("collateral currency", RiskConfig(participants=(ParticipantRiskConfig(participant_id="a",
                                                                           collateral=(("XYZ", 1),)),)), "XYZ"),
    ("position limit instrument", RiskConfig(participants=(ParticipantRiskConfig(participant_id="a",
                                                                                 position_limits=((42, 1),)),)),
     "42"),
]


@pytest.mark.parametrize("cfg, fragment", [(c, f) for _, c, f in BAD], ids=[n for n, _, _ in BAD])
def test_bad_configs_are_rejected_with_the_entry_named(cfg: RiskConfig, fragment: str) -> None:
    with pytest.raises(RiskConfigError, match=None) as info:
        cfg.validated(DEFAULT_INSTRUMENTS)
    assert fragment in str(info.value)


TOML = """
position_limit_multiple = 5
[rates]
orders_per_second = 20
order_burst = 40
[volatility]
half_life_samples = 30
reference_vol_bps = { EQUITY = 2500, FUTURE = 1800, FX = 900, CRYPTO = 7000 }
[margin]
fx_rates = { USD = 100000000, EUR = 110000000, GBP = 127000000, USDT = 100000000, CHF = 113000000, JPY = 670000 }
default_collateral = { USD = 100000000 }
margin_call_grace_ns = 60000000000
[[margin.classes]]
asset_class = "equity"
scan_bps = 1200
[[margin.classes]]
asset_class = "future"
scenarios = [[-700, 10000], [700, 10000]]
initial_bps = 12000
[[margin.classes]]
asset_class = "fx"
scan_bps = 300
[[margin.classes]]
asset_class = "crypto"
scan_bps = 2500
[[margin.offsets]]
class_a = "equity"
class_b = "future"
credit_bps = 6000
[breakers]
max_daily_loss_bps = 300
[[instruments]]
instrument_id = 1
price_band_bps = 700
[[participants]]
participant_id = "inst-1"
collateral = { USD = 500000000, EUR = 100000 }
position_limits = [[1, 5000]]
"""


def test_from_toml_mapping() -> None:
    cfg = risk_config_from_mapping(tomllib.loads(TOML)).validated(DEFAULT_INSTRUMENTS)
    assert (cfg.rates.orders_per_second, cfg.rates.order_burst, cfg.position_limit_multiple) == (20, 40, 5)
    assert dict(cfg.volatility.reference_vol_bps)[AssetClass.FX] == 900
    assert cfg.margin.classes[1].scenarios == (Scenario(move_bps=-700), Scenario(move_bps=700))
    assert cfg.margin.classes[1].initial_bps == 12_000
    assert cfg.margin.offsets == (OffsetConfig(class_a=AssetClass.EQUITY, class_b=AssetClass.FUTURE, credit_bps=6_000),)
    assert cfg.instruments[0].price_band_bps == 700
    assert cfg.participants[0].collateral == (("EUR", 100_000), ("USD", 500_000_000))
    assert cfg.participants[0].position_limits == ((1, 5_000),)
    assert cfg.fingerprint() != RiskConfig().fingerprint()


@pytest.mark.parametrize("raw, fragment", [
    ({"nope": 1}, "unknown keys"),
    ({"rates": {"orders_per_second": 1.5}}, "no floats"),
    ({"rates": {"typo": 1}}, "unknown keys"),
    ({"volatility": {"reference_vol_bps": {"BONDS": 1}}}, "reference_vol_bps"),
    ({"margin": {"fx_rates": {"USD": 1.0}}}, "fx_rates"),
])
def test_from_mapping_errors(raw: dict, fragment: str) -> None:
    with pytest.raises(RiskConfigError) as info:
        risk_config_from_mapping(raw)
    assert fragment in str(info.value)
