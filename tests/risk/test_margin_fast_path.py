"""The pre-trade margin fast paths against their general forms: ``MarginModel.initial`` computes the
credit of a single offset pair inline (the default configuration) and must equal ``initial_general``
(``credits`` and its lists) for every scan/delta vector, whatever the signs, and the hot path's
inlined scan and delta must decide like the methods (checked through ``check_order`` against the
account with the order entered, which uses the methods)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.risk import RiskConfig, RiskEngine, RiskReject
from compliance.risk.config import MarginConfig, OffsetConfig
from compliance.risk.margin import N_CLASSES, MarginModel
from matching.instruments import DEFAULT_INSTRUMENTS
from matching.types import AssetClass

_VEC = st.lists(st.integers(-10**15, 10**15), min_size=N_CLASSES, max_size=N_CLASSES)
_CLASS = st.sampled_from(list(AssetClass))


@settings(max_examples=500, deadline=None)
@given(scan=st.lists(st.integers(0, 10**15), min_size=N_CLASSES, max_size=N_CLASSES), delta=_VEC,
       a=_CLASS, b=_CLASS, rate=st.integers(1, 10_000))
def test_single_pair_inline_credit_equals_the_general_one(scan, delta, a, b, rate) -> None:
    model = MarginModel(MarginConfig(offsets=(OffsetConfig(class_a=a, class_b=b, credit_bps=rate),)))
    assert model.initial(scan, delta) == model.initial_general(scan, delta)


def test_the_default_configuration_takes_the_inline_path() -> None:
    model = MarginModel(MarginConfig())
    assert model._single == (int(AssetClass.EQUITY), int(AssetClass.FUTURE), 5_000)
    scan, delta = [0, 1_000_00, 500_00, 0, 0], [0, 300_000_00, -200_000_00, 0, 0]
    assert model.initial(scan, delta) == model.initial_general(scan, delta) < model.initial(scan, [0] * N_CLASSES)


_SPEC = {1: (190_0000, 100, 100), 3: (6000_00, 25, 1)}  # AAPL, ESZ6: reference, tick, lot


@settings(max_examples=300, deadline=None)
@given(aapl=st.integers(-40, 40), es=st.integers(-3, 3), iid=st.sampled_from([1, 3]), buy=st.booleans(),
       lots=st.integers(1, 4), off=st.integers(-10, 10), collateral=st.integers(1, 80).map(lambda k: k * 1_000_00))
def test_exact_cross_margin_decision_equals_the_account_with_the_order_entered(aapl, es, iid, buy, lots, off,
                                                                               collateral) -> None:
    """Hedged equity/future accounts near their collateral: the exact (offset) path decides."""
    from compliance.risk import ParticipantRiskConfig

    cfg = RiskConfig(participants=(ParticipantRiskConfig(participant_id="x", collateral=(("USD", collateral),)),))

    def state() -> RiskEngine:
        engine = RiskEngine(cfg, DEFAULT_INSTRUMENTS)
        for i, n in ((1, aapl * 100), (3, es)):
            if n:
                engine.on_trade(1, i, _SPEC[i][0], abs(n), "x" if n > 0 else "o", "o" if n > 0 else "x")
        return engine

    engine = state()
    ref, tick, lot = _SPEC[iid]
    qty, price = lots * lot, ref + off * tick
    side = 1 if buy else 2
    reject = engine.check_order(1, "x", "", iid, side, 1, price, qty)
    if reject not in (None, RiskReject.MARGIN):
        return
    before = engine.margin("x")
    pos = engine.position("x", iid)[0]
    increases = (pos + qty > 0) if buy else (pos - qty < 0)
    inst = next(i for i in DEFAULT_INSTRUMENTS if i.instrument_id == iid)
    raw_loss = max(0, (price - ref) if buy else (ref - price)) * qty * inst.contract_multiplier
    exec_loss = -((-raw_loss) // 10 ** (inst.price_scale + inst.quantity_scale - 2))  # USD cents, rounded up
    after = state()
    after.on_order_entered(1, "x", "", 1, iid, side, price, qty)
    required = after.margin("x").initial + exec_loss
    expected = RiskReject.MARGIN if increases and required > before.equity and required > before.initial else None
    assert reject == expected
