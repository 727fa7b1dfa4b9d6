"""Replay: a hub restarted from its durable ledger rebuilds the risk state exactly: positions,
margin, volatility-scaled limits (moved by a spike), operator position limits, every kind of kill
switch (operator, latency, drawdown), a margin call gone reduce-only, a LULD pause and the rate
buckets; the state digest after recovery equals the one before shutdown, and so does every
participant's risk view. Twice in a row, with trading in between.
"""

from __future__ import annotations

from dataclasses import replace

from compliance.risk import InstrumentRiskConfig, ParticipantRiskConfig, RiskReject, Scope
from hub.core import QuoteSpec
from matching.types import AssetClass
from tests.risk.support import AAPL, MS, MSFT, SEC, TICK, M, P, RiskHub, alternating_trades, kinds
from tests.risk.test_volatility_hub import VOL_CFG

R = RiskReject
CFG = replace(
    VOL_CFG,
    instruments=(InstrumentRiskConfig(instrument_id=AAPL, base_position_limit=10_000),),
    participants=(
        ParticipantRiskConfig(participant_id="scalper-1", collateral=(("USD", 5_000_00),)),
        ParticipantRiskConfig(participant_id="inst-2", collateral=(("USD", 50_000_00), ("EUR", 1_000_00))),
        ParticipantRiskConfig(participant_id="mm-1", position_limits=((MSFT, 2_000),)),
    ),
)
PARTICIPANTS = ("scalper-1", "scalper-2", "inst-1", "inst-2", "mm-1", "operator")


def snapshot(rh: RiskHub, ts: int) -> dict:
    """Everything observable of the risk state at hub time ``ts``."""
    risk = rh.hub.risk
    return {
        "digest": rh.hub.state_digest_bytes(),
        "risk_digest": risk.state_digest(),
        "views": {p: risk.participant_view(ts, p) for p in PARTICIPANTS},
        "margin": {p: risk.margin(p) for p in PARTICIPANTS},
        "positions": {(p, i): risk.position(p, i) for p in PARTICIPANTS for i in rh.hub.instruments},
        "limits": {(p, i): risk.position_limit(p, i) for p in PARTICIPANTS for i in rh.hub.instruments},
        "switches": risk.kill_switches(),
        "paused": {i: risk.is_paused(ts, i) for i in rh.hub.instruments},
        "open": risk.open_order_ids(),
        "resting": rh.resting_ids(),
        "seq": rh.hub.last_sequence,
    }


def _assert_same(before: dict, after: dict) -> None:
    for key in before:
        assert after[key] == before[key], f"{key} differs after recovery"


def _session_one(rh: RiskHub) -> None:
    who = rh.who
    # positions in three classes; a hedged cross-class account (inst-2) with EUR collateral
    rh.trade("AAPL", P, 100, "scalper-1", "mm-1")
    rh.trade("AAPL", P, 1_000, "inst-2", "mm-1")
    rh.trade("ESZ6", 6000_00, 1, "mm-1", "inst-2")
    rh.trade("BTC-USD", 95_000_00, 10_000_000, "scalper-2", "mm-1")
    # resting orders, a replace, a cancel, quotes, and a session's order
    keep = rh.sell("scalper-1", "AAPL", 199_0000, 10)
    moved = rh.buy("inst-1", "MSFT", M - 10 * TICK, 50)
    assert keep.accepted and moved.accepted
    assert rh.replace("inst-1", "MSFT", moved.order_id, M - 12 * TICK, 40).accepted
    gone = rh.buy("scalper-2", "ESZ6", 5990_00, 2)
    assert rh.cancel("scalper-2", "ESZ6", gone.order_id).accepted
    rh.hub.mass_quote(who["mm-1"], [QuoteSpec("ESZ6", 5995_00, 3, 6005_00, 3),
                                    QuoteSpec("EURUSD", 1_08400, 100_000, 1_08600, 100_000)], 0)
    session = rh.hub.open_session(who["scalper-2"], cancel_on_disconnect=False)
    assert rh.sell("scalper-2", "MSFT", M + 10 * TICK, 5, session_id=session.session_id).accepted
    rh.hub.close_session(who["scalper-2"], session)
    # operator: a position limit, a participant kill that is lifted, a class kill that stays
    rh.hub.set_position_limit(who["operator"], "inst-1", MSFT, 700)
    rh.kill(Scope.PARTICIPANT, "scalper-2", note="check")
    rh.lift(Scope.PARTICIPANT, "scalper-2")
    rh.kill(Scope.ASSET_CLASS, "CRYPTO", note="exchange outage")
    # latency anomaly on FX
    for _ in range(3):
        rh.hub.observe_ack_latency(AssetClass.FX, 75 * MS)
    # a spike moves the AAPL limits; then the market walks down: scalper-1's drawdown and margin call
    alternating_trades(rh, "AAPL", 20, P, P + 3 * TICK, pair=("scalper-2", "inst-1"))
    alternating_trades(rh, "AAPL", 12, P, 193_8000, pair=("scalper-2", "inst-1"))
    for price in (186_0000, 181_0000, 172_0000, 164_0000):
        rh.clock.advance(SEC)
        rh.trade("AAPL", price, 1, "scalper-2", "inst-1")
    # the margin call's grace ends: reduce-only
    rh.clock.advance(600 * SEC)
    rh.hub.risk_tick()
    # a bid at the MSFT upper band edge: limit state, then a pause 15 s later
    assert rh.buy("mm-1", "MSFT", 441_0000, 1).accepted
    rh.clock.advance(15 * SEC)
    rh.hub.risk_tick()
    seen = set(kinds(rh.risk_events()))
    assert {"position_limit_changed", "kill_switch_activated", "cancel_orders",
            "daily_loss_breached", "margin_call", "reduce_only_started", "limit_state_entered",
            "instrument_paused"} <= seen, seen


def test_recovery_rebuilds_positions_margin_limits_and_switches_exactly(make_hub) -> None:
    rh: RiskHub = make_hub(CFG, durable=True)
    _session_one(rh)
    ts = rh.clock.now
    before = snapshot(rh, ts)
    # the state is the interesting one
    assert before["views"]["scalper-1"].reduce_only and before["views"]["scalper-1"].margin_call
    assert {(s, t) for s, t, *_ in before["switches"]} == {
        (Scope.ASSET_CLASS, "CRYPTO"), (Scope.ASSET_CLASS, "FX"),  # operator, latency
        (Scope.PARTICIPANT, "scalper-1"), (Scope.PARTICIPANT, "inst-2")}  # drawdowns
    assert before["limits"][("inst-1", MSFT)] == 700 and before["limits"][("mm-1", MSFT)] == 2_000
    assert before["limits"][("scalper-2", AAPL)] < 10_000, "the spike shrank the AAPL limit"
    assert before["paused"][MSFT]

    rh.restart()
    assert rh.hub.recovery.checkpoint_verified
    _assert_same(before, snapshot(rh, ts))
    rh.hub.risk.verify()
    # ... and it decides as before
    assert rh.buy("scalper-2", "BTC-USD", 95_000_00, 10_000).reason == R.KILL_SWITCH
    assert rh.buy("scalper-2", "EURUSD", 1_08500, 1_000).reason == R.KILL_SWITCH
    assert rh.buy("scalper-1", "AAPL", 164_0000, 1).reason == R.REDUCE_ONLY
    assert rh.buy("inst-1", "MSFT", M, 1).reason == R.INSTRUMENT_PAUSED

    # trade on, then restart again
    rh.clock.advance(301 * SEC)  # the MSFT pause is over
    rh.hub.risk_tick()
    # the operator's 700 still holds, counting the resting (replaced) bid of 40
    assert rh.buy("inst-1", "MSFT", M - TICK, 661).reason == R.POSITION_LIMIT
    assert rh.buy("inst-1", "MSFT", M - TICK, 660).accepted
    rh.lift(Scope.ASSET_CLASS, "FX")
    alternating_trades(rh, "AAPL", 30, 164_0000, 164_0100, pair=("scalper-2", "inst-1"))
    rh.trade("EURUSD", 1_08500, 1_000, "scalper-2", "inst-1")
    ts = rh.clock.now
    before = snapshot(rh, ts)
    rh.restart()
    assert rh.hub.recovery.checkpoint_verified
    _assert_same(before, snapshot(rh, ts))
    rh.hub.risk.verify()
