"""``RiskEngine.reconfigure`` against a fresh engine: an engine that ran under one configuration and
then took another must account like an engine that ran under the new one from the start: the same
collateral, P&L, equity, requirements and limits, with every cache equal to its recomputation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.risk import (
    InstrumentRiskConfig,
    ParticipantRiskConfig,
    RiskConfig,
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
