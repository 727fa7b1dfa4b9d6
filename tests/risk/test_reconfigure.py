"""``RiskEngine.reconfigure`` against a fresh engine: an engine that ran under one configuration and
then took another must account like an engine that ran under the new one from the start: the same
collateral, P&L, equity, requirements and limits, with every cache equal to its recomputation."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.risk import (
    InstrumentRiskConfig,
    ParticipantRiskConfig,
    RiskConfig,
    RiskConfigError,
    RiskEngine,
    span_scenarios,
)
from compliance.risk.config import ClassMarginConfig, MarginConfig
from matching.instruments import DEFAULT_INSTRUMENTS
from matching.types import AssetClass

_SPEC = {1: (190_0000, 100), 3: (6000_00, 25)}  # AAPL, ESZ6: reference price, tick


@st.composite
def configs(draw) -> RiskConfig:
    classes = tuple(ClassMarginConfig(asset_class=ac, scenarios=span_scenarios(draw(st.integers(100, 5_000))),
                                      initial_bps=draw(st.integers(10_000, 20_000)))
                    for ac in (AssetClass.EQUITY, AssetClass.FUTURE, AssetClass.FX, AssetClass.CRYPTO))
    limits = tuple((iid, draw(st.integers(1, 10_000)) * 100) for iid in draw(st.sets(st.sampled_from([1, 3]))))
    return RiskConfig(
        margin=MarginConfig(classes=classes, offsets=draw(st.sampled_from([MarginConfig().offsets, ()]))),
        instruments=tuple(InstrumentRiskConfig(instrument_id=iid, base_position_limit=draw(st.integers(1, 500)) * 100)
                          for iid in draw(st.sets(st.sampled_from([1, 3])))),
        participants=(ParticipantRiskConfig(participant_id="x", position_limits=limits, collateral=(
            ("USD", draw(st.integers(1, 10**9))), ("EUR", draw(st.integers(0, 10**8))))),),
        position_limit_multiple=draw(st.integers(1, 20)))


_ACTIVITY = st.lists(st.tuples(st.sampled_from([1, 3]), st.booleans(), st.integers(1, 5), st.integers(-20, 20),
                               st.booleans()), max_size=8)


def _run(engine: RiskEngine, activity) -> None:
    for n, (iid, buy, lots, off, rests) in enumerate(activity):
        ref, tick = _SPEC[iid]
        qty = lots * (100 if iid == 1 else 1)
        if rests:
            engine.on_order_entered(1, "x", "", 100 + n, iid, 1 if buy else 2, ref + off * tick, qty)
        else:
            engine.on_trade(1, iid, ref + off * tick, qty, "x" if buy else "o", "o" if buy else "x")


@settings(max_examples=150, deadline=None)
@given(old=configs(), new=configs(), activity=_ACTIVITY)
def test_an_engine_reconfigured_accounts_like_one_that_started_with_the_new_configuration(old, new, activity) -> None:
    engine = RiskEngine(old, DEFAULT_INSTRUMENTS)
    _run(engine, activity)
    engine.reconfigure(2, new)
    engine.verify()
    fresh = RiskEngine(new, DEFAULT_INSTRUMENTS)
    _run(fresh, activity)
    got, want = engine.margin("x"), fresh.margin("x")
    assert (got.collateral, got.pnl, got.equity, got.maintenance, got.initial, got.day_start_equity) == (
        want.collateral, want.pnl, want.equity, want.maintenance, want.initial, want.day_start_equity)
    for iid in (1, 3):
        assert engine.position("x", iid) == fresh.position("x", iid)
        assert engine.position_limit("x", iid) == fresh.position_limit("x", iid)
        assert engine.position_limit("o", iid) == fresh.position_limit("o", iid)
    assert engine.config == new and engine.state_digest() != RiskEngine(old, DEFAULT_INSTRUMENTS).state_digest()


def test_an_unchanged_configuration_changes_nothing() -> None:
    engine = RiskEngine(RiskConfig(), DEFAULT_INSTRUMENTS)
    _run(engine, [(1, True, 2, 0, False), (3, False, 1, 3, True)])
    digest = engine.state_digest()
    assert engine.reconfigure(2, RiskConfig()) == []
    assert engine.state_digest() == digest


def test_a_participant_the_new_configuration_names_first_starts_with_what_it_configures() -> None:
    """Before, it was created with the configured amount and then also got the difference to the old
    default: 30 M for 20 M configured, 0 for 5 M (and its first order refused for margin)."""
    new = RiskConfig(participants=(ParticipantRiskConfig(participant_id="y", collateral=(("USD", 20_000_000_00),)),
                                   ParticipantRiskConfig(participant_id="z", collateral=(("EUR", 1_000_000_00),))))
    engine = RiskEngine(RiskConfig(), DEFAULT_INSTRUMENTS)
    _run(engine, [(1, True, 2, 0, False)])
    engine.reconfigure(2, new)
    engine.verify()
    fresh = RiskEngine(new, DEFAULT_INSTRUMENTS)
    for pid in ("y", "z"):
        assert engine.margin(pid).collateral == fresh.margin(pid).collateral > 0
        assert engine.participant_view(3, pid).detail == fresh.participant_view(3, pid).detail


def test_participants_never_seen_are_checked_against_the_new_default_collateral() -> None:
    """The stand-in for participants never seen follows the configuration. Before, it kept the old
    default collateral, and a buy the new one cannot margin was accepted."""
    poor = RiskConfig().with_(margin=MarginConfig(default_collateral=(("USD", 1_000_00),)))
    engine = RiskEngine(RiskConfig(), DEFAULT_INSTRUMENTS)
    engine.reconfigure(1, poor)
    fresh = RiskEngine(poor, DEFAULT_INSTRUMENTS)
    args = (2, "never-seen", "", 1, 1, 1, 190_0000, 1_000 * 100)
    assert engine.check_order(*args) == fresh.check_order(*args) is not None


def test_an_instrument_with_no_volatility_sample_yet_takes_the_new_reference_as_a_new_one_would() -> None:
    """One trade anchors the series but is no sample: the estimate is still the prior, which follows
    the new reference volatility. Before, the old prior stayed and was read against the new
    reference: the limit factor fell to 0.3 with no volatility observed."""
    calm = RiskConfig().with_(volatility=replace(RiskConfig().volatility, reference_vol_bps=(
        (AssetClass.EQUITY, 1_000), (AssetClass.FUTURE, 2_000), (AssetClass.FX, 1_000), (AssetClass.CRYPTO, 8_000))))
    engine = RiskEngine(RiskConfig(), DEFAULT_INSTRUMENTS)
    _run(engine, [(1, True, 1, 0, False)])
    engine.reconfigure(2, calm)
    fresh = RiskEngine(calm, DEFAULT_INSTRUMENTS)
    _run(fresh, [(1, True, 1, 0, False)])
    assert engine.limit_factor_bps(1) == fresh.limit_factor_bps(1) == 10_000
    assert engine.position_limit("x", 1) == fresh.position_limit("x", 1)


def test_a_configuration_that_cannot_apply_is_refused_before_anything_changes() -> None:
    """Collateral held in a currency the new configuration no longer prices: refused by
    ``check_reconfigure`` (the hub calls it before journaling), and ``reconfigure`` changes nothing."""
    chf = RiskConfig(participants=(ParticipantRiskConfig(participant_id="x", collateral=(("CHF", 5_000_00),)),))
    engine = RiskEngine(chf, DEFAULT_INSTRUMENTS)
    engine.deposit(1, "x", "CHF", 1_00)  # a balance of its own beyond the configured amount
    margin = chf.margin
    no_chf = chf.with_(participants=(ParticipantRiskConfig(participant_id="x", collateral=(("USD", 5_000_00),)),),
                       margin=replace(margin, fx_rates=tuple(r for r in margin.fx_rates if r[0] != "CHF")))
    digest = engine.state_digest()
    with pytest.raises(RiskConfigError, match="CHF"):
        engine.check_reconfigure(no_chf)
    with pytest.raises(RiskConfigError, match="CHF"):
        engine.reconfigure(2, no_chf)
    assert engine.state_digest() == digest
    fresh = RiskEngine(chf, DEFAULT_INSTRUMENTS)  # without the extra balance, the CHF goes to zero: dropped
    fresh.reconfigure(2, no_chf)
    assert fresh.margin("x").collateral == 5_000_00
