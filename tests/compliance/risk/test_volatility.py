"""Volatility-scaled position limits: integer log returns and EWMA weights, a simulated spike
that shrinks the limit, and the recovery after it; limit changes are events."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.risk import (
    InstrumentRiskConfig,
    ParticipantRiskConfig,
    PositionLimitChanged,
    RiskConfig,
    RiskReject,
    VolatilityConfig,
)
from compliance.risk.fixedpoint import LAMBDA_SCALE, LOG_SCALE, ewma_lambda, ln_ratio
from compliance.risk.volatility import VolatilityEstimator
from matching.types import AssetClass
from tests.compliance.risk.conftest import AAPL, BUY, LIMIT, SEC, T0, new_engine, trade


@settings(max_examples=300, deadline=None)
@given(a=st.integers(min_value=1, max_value=10**15), b=st.integers(min_value=1, max_value=10**15))
def test_ln_ratio_matches_math_log_and_is_antisymmetric(a: int, b: int) -> None:
    got = ln_ratio(a, b)
    assert abs(got - math.log(a / b) * LOG_SCALE) <= 1 + abs(math.log(a / b)) * LOG_SCALE * 1e-15
    assert ln_ratio(b, a) == -got


def test_ln_ratio_known_values() -> None:
    assert ln_ratio(2, 1) == 693_147_180_559  # ln 2 = 0.693147180559945...
    assert ln_ratio(1, 1) == 0
    assert ln_ratio(199_5000, 190_0000) == 48_790_164_169  # ln 1.05


@given(h=st.integers(min_value=1, max_value=400))
@settings(max_examples=40, deadline=None)
def test_ewma_lambda_is_the_floor_of_the_half_life_root(h: int) -> None:
    lam = ewma_lambda(h)
    assert lam**h * 2 <= LAMBDA_SCALE**h < (lam + 1) ** h * 2


def test_new_estimator_sits_at_the_reference() -> None:
    est = VolatilityEstimator(VolatilityConfig(), 3_000, ewma_lambda(50))
    assert est.factor_bps == 10_000
    assert abs(est.vol_bps() - 3_000) <= 1
    assert not est.observe(T0, 190_0000)  # the first trade only anchors
    assert not est.observe(T0 + SEC - 1, 191_0000)  # inside the sampling interval
    assert est.observe(T0 + SEC, 191_0000)
    assert est.samples == 1


VOL_CFG = RiskConfig(
    volatility=VolatilityConfig(half_life_samples=10, prior_weight_ns=60 * SEC,
                                reference_vol_bps=((AssetClass.EQUITY, 3_000), (AssetClass.FUTURE, 2_000),
                                                   (AssetClass.FX, 1_000), (AssetClass.CRYPTO, 8_000))),
    instruments=(InstrumentRiskConfig(instrument_id=AAPL, base_position_limit=10_000),),
    participants=(ParticipantRiskConfig(participant_id="big", position_limits=((AAPL, 20_000),)),),
)


def _run(engine, start: int, seconds: int, low: int, high: int) -> tuple[int, list[PositionLimitChanged]]:
    """One trade a second alternating between two prices; returns (end time, limit events)."""
    events = []
    ts = start
    for i in range(seconds):
        ts = start + i * SEC
        events += [e for e in trade(engine, ts, AAPL, high if i % 2 else low, 1)
                   if isinstance(e, PositionLimitChanged)]
    return ts, events


def test_limit_shrinks_in_a_spike_and_recovers_after_it() -> None:
    engine = new_engine(VOL_CFG)
    # calm: +-1 tick a second at 190 is ~29.5 % annualised, just under the 30 % reference
    ts, calm = _run(engine, T0, 120, 190_0000, 190_0100)
    assert calm == []  # no limit change, no flapping
    assert engine.position_limit("p", AAPL) == 10_000
    assert 2_800 <= engine.volatility_bps(AAPL) <= 3_000
    assert engine.check_order(ts, "p", "s", AAPL, BUY, LIMIT, 190_0000, 5_000) is None

    # rougher: +-3 ticks a second (~89 % annualised): the limit steps down as the EWMA catches up
    ts, rough = _run(engine, ts + SEC, 60, 190_0000, 190_0300)
    # then a spike: +-2 % a second (~11,000 % annualised): straight to the floor (0.25 x base)
    ts, crash = _run(engine, ts + SEC, 30, 190_0000, 193_8000)
    spike = rough + crash
    public = [e for e in spike if e.participant_id == ""]
    assert len(public) >= 5, "the limit must step down"
    assert [e.limit for e in public] == sorted((e.limit for e in public), reverse=True)
    assert [e.vol_bps for e in public] == sorted(e.vol_bps for e in public)
    assert 3_000 <= [e for e in rough if e.participant_id == ""][-1].factor_bps < 4_000  # ~ 30 % / 89 %
    assert public[-1].factor_bps == 2_500 and public[-1].limit == 2_500
    assert engine.position_limit("p", AAPL) == 2_500
    assert engine.volatility_bps(AAPL) > 50_000
    assert engine.check_order(ts, "p", "s", AAPL, BUY, LIMIT, 190_0000, 2_500) is None
    assert engine.check_order(ts, "p", "s", AAPL, BUY, LIMIT, 190_0000, 2_501) == RiskReject.POSITION_LIMIT
    # the participant with its own base gets its own, visible, event
    own = [e for e in spike if e.participant_id == "big"]
    assert own and own[-1].limit == 5_000 and engine.position_limit("big", AAPL) == 5_000

    # recovery: calm again; the spike decays with a 10-sample half-life
    ts, recovery = _run(engine, ts + SEC, 400, 190_0000, 190_0100)
    public = [e for e in recovery if e.participant_id == ""]
    assert [e.limit for e in public] == sorted(e.limit for e in public)
    assert public[-1].limit == 10_000
    assert engine.position_limit("p", AAPL) == 10_000
    assert engine.check_order(ts, "p", "s", AAPL, BUY, LIMIT, 190_0000, 5_000) is None
    engine.verify()


class _Forced(VolatilityEstimator):
    """An estimator whose raw factor the test sets directly."""

    raw = 10_000

    def raw_factor_bps(self) -> int:
        return self.raw


def test_factor_moves_in_quantised_steps_with_hysteresis() -> None:
    """Steps of 500 bps, hysteresis 100 bps: down only once the raw factor is 100 below the
    current step, up only once it is 100 above the next one (the cap is taken as soon as reached)."""
    est = _Forced(VolatilityConfig(), 3_000, ewma_lambda(50))
    est.factor_bps = 9_500
    table = [(9_450, 9_500), (9_400, 9_000), (9_550, 9_000), (9_600, 9_500), (9_999, 9_500), (10_000, 10_000),
             (9_901, 10_000), (9_900, 9_500), (1_000, 2_500)]
    for raw, expect in table:
        est.raw = raw
        est.update_factor()
        assert est.factor_bps == expect, raw


def test_position_limit_override_is_an_event() -> None:
    engine = new_engine()
    (event,) = engine.set_position_limit(T0, "p", AAPL, 1_234)
    assert isinstance(event, PositionLimitChanged)
    assert (event.participant_id, event.base_limit, event.limit) == ("p", 1_234, 1_234)
    assert engine.check_order(T0, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1_235) == RiskReject.POSITION_LIMIT
    assert event.record()["type"] == "position_limit_changed"
