"""Kill switches through the hub, on the durable ledger and a fake clock: the operator's (hub, asset
class, participant), the drawdown breaker (2 % daily loss) and the latency-anomaly switch (three
acks slower than 50 ms in one asset class). For each: the order sent after the trigger is refused,
the resting orders in scope are cancelled (engine, registry and risk exposure), the switch is
journaled, it is still on after a restart from the ledger, time and other scopes' lifts do not
clear it, and an operator lift at its own scope does.
"""

from __future__ import annotations

import threading

import pytest

from compliance.risk import KillMode, KillReason, ParticipantRiskConfig, RiskConfig, RiskReject, Scope
from hub.v1 import common_pb2 as cpb
from ledger.records import RecordType, decode, risk_cancel_orders, risk_cancel_remaining
from matching.types import AssetClass, CancelReason
from tests.risk.support import (
    BUY,
    MS,
    SEC,
    SELL,
    TICK,
    FakeClock,
    M,
    P,
    RiskHub,
    Sent,
    kinds,
    ledger_cancels,
    risk_cancel_records,
)

R = RiskReject
ES_PX = 6000_00


def _book(rh: RiskHub) -> dict[str, int]:
    """Resting orders: scalper-1 on AAPL and ESZ6, scalper-2 on AAPL and MSFT, mm-1 on BTC."""
    ids = {
        "s1 AAPL": rh.buy("scalper-1", "AAPL", P - 5 * TICK, 10),
        "s1 ES": rh.sell("scalper-1", "ESZ6", ES_PX + 100, 1),
        "s2 AAPL": rh.sell("scalper-2", "AAPL", P + 5 * TICK, 10),
        "s2 MSFT": rh.buy("scalper-2", "MSFT", M - 5 * TICK, 10),
        "mm BTC": rh.buy("mm-1", "BTC-USD", 94_000_00, 10_000),
    }
    assert all(s.accepted for s in ids.values())
    return {k: s.order_id for k, s in ids.items()}


def _probe(rh: RiskHub) -> dict[str, int]:
    """Reject reason (0 = accepted) of one fresh order per participant and class; cancels what rested."""
    probes = {
        "s1 AAPL": ("scalper-1", "AAPL", P - 20 * TICK, 1),
        "s1 ES": ("scalper-1", "ESZ6", ES_PX - 100, 1),
        "s2 MSFT": ("scalper-2", "MSFT", M - 20 * TICK, 1),
        "mm BTC": ("mm-1", "BTC-USD", 93_000_00, 10_000),
    }
    out = {}
    for name, (who, symbol, px, qty) in probes.items():
        sent = rh.buy(who, symbol, px, qty)
        out[name] = sent.reason
        if sent.accepted:
            assert rh.cancel(who, symbol, sent.order_id).accepted
    return out


SCOPES = [
    pytest.param(Scope.HUB, "", {"s1 AAPL", "s1 ES", "s2 AAPL", "s2 MSFT", "mm BTC"}, id="hub"),
    pytest.param(Scope.ASSET_CLASS, "EQUITY", {"s1 AAPL", "s2 AAPL", "s2 MSFT"}, id="asset-class"),
    pytest.param(Scope.PARTICIPANT, "scalper-1", {"s1 AAPL", "s1 ES"}, id="participant"),
]


@pytest.mark.parametrize("scope, target, in_scope", SCOPES)
def test_operator_kill_refuses_new_orders_cancels_resting_ones_and_survives_restart(
        make_hub, scope: Scope, target: str, in_scope: set[str]) -> None:
    rh: RiskHub = make_hub(durable=True)
    ids = _book(rh)
    rh.clock.advance(MS)
    kill_seq = rh.kill(scope, target, note="runaway algo")

    # the switch is journaled as the operator's input, before any of the cancels it caused
    ((seq, detail),) = [(s, d) for s, d in rh.admin_details() if d.get("action") == "risk_kill"]
    assert seq == kill_seq
    assert (detail["scope"], detail["target"], detail["mode"], detail["operator"], detail["note"]) == (
        int(scope), target, int(KillMode.BLOCK), "operator", "runaway algo")
    doomed = {ids[k] for k in in_scope}
    assert rh.resting_ids() == set(ids.values()) - doomed, "exactly the resting orders in scope are cancelled"
    assert set(rh.hub.risk.open_order_ids()) == set(ids.values()) - doomed, "and their exposure released"
    for name in in_scope:
        owner = {"s1": "scalper-1", "s2": "scalper-2", "mm": "mm-1"}[name.split()[0]]
        reports = [r for r in rh.hub.executions(rh.who[owner], kill_seq, 0) if r.order_id == ids[name]]
        assert [(r.exec_type, r.leaves_quantity) for r in reports] == [(cpb.EXEC_CANCELLED, 0)], "each owner is told"

    expected = {name: (R.KILL_SWITCH if name in in_scope else 0) for name in ("s1 AAPL", "s1 ES", "s2 MSFT", "mm BTC")}
    assert _probe(rh) == expected

    # time does not clear it; nor does a restart from the ledger; nor a lift at another scope
    rh.clock.advance(3_600 * SEC)
    rh.hub.risk_tick()
    rh.restart()
    assert rh.hub.recovery.checkpoint_verified
    assert _probe(rh) == expected
    other = Scope.PARTICIPANT if scope != Scope.PARTICIPANT else Scope.HUB
    rh.lift(other, "scalper-2" if other == Scope.PARTICIPANT else "")
    assert _probe(rh) == expected
    switches = rh.hub.risk.kill_switches()
    assert [(s, t, m, r, op) for s, t, m, r, _, op, _ in switches] == [
        (scope, target, KillMode.BLOCK, KillReason.OPERATOR, "operator")]

    # only the operator's lift at the same scope clears it, durably
    rh.lift(scope, target)
    assert set(_probe(rh).values()) == {0}
    rh.restart()
    assert set(_probe(rh).values()) == {0}
    assert rh.hub.risk.kill_switches() == []


def test_kill_is_effective_for_the_very_next_order_and_cancels_in_the_ledger(make_hub) -> None:
    rh: RiskHub = make_hub(durable=True)
    ids = _book(rh)
    kill_seq = rh.kill(Scope.HUB, "")
    refused = rh.buy("scalper-2", "AAPL", P - TICK, 1)
    # one risk-cancel step per asset class with orders (equity, future, crypto), one settle step, then
    # the refusal
    assert refused.reason == R.KILL_SWITCH and rh.hub.last_sequence == kill_seq + 3 + 1 + 1
    rh.hub.journal.flush()
    reasons: dict[int, int] = {}
    cancels = ledger_cancels(rh.hub.journal, reasons)
    assert set(cancels) == set(ids.values())
    assert set(reasons.values()) == {CancelReason.RISK}
    assert all(kill_seq < seq <= kill_seq + 3 for seq in cancels.values()), \
        "the cancels are sequenced right after the switch, before anything else"
    steps = risk_cancel_records(rh.hub.journal)
    assert [d["asset_class"] for _, d in steps] == [AssetClass.EQUITY, AssetClass.FUTURE, AssetClass.CRYPTO]
    assert risk_cancel_orders(steps[0][1]) == sorted([ids["s1 AAPL"], ids["s2 AAPL"], ids["s2 MSFT"]])
    assert risk_cancel_remaining(steps[0][1]) == [10, 10, 10]
    for name in ids:  # the owners are told the venue's risk controls cancelled them
        owner = {"s1": "scalper-1", "s2": "scalper-2", "mm": "mm-1"}[name.split()[0]]
        (report,) = [r for r in rh.hub.executions(rh.who[owner], kill_seq, 0) if r.order_id == ids[name]]
        assert (report.exec_type, report.cancel_reason) == (cpb.EXEC_CANCELLED, cpb.CANCEL_RISK)


def test_drawdown_of_exactly_2_percent_switches_the_participant_to_reduce_only(make_hub) -> None:
    # scalper-1: USD 100,000 of collateral; long 1,000 AAPL at 190: every 0.01 down is USD 10
    rh: RiskHub = make_hub(RiskConfig(participants=(
        ParticipantRiskConfig(participant_id="scalper-1", collateral=(("USD", 100_000_00),)),)), durable=True)
    rh.trade("AAPL", P, 1_000, "scalper-1", "mm-1")
    bid = rh.buy("scalper-1", "AAPL", 185_0000, 5)
    ask = rh.sell("scalper-1", "AAPL", 199_0000, 5)
    es = rh.sell("scalper-1", "ESZ6", ES_PX + 100, 1)
    rh.clock.advance(SEC)
    rh.trade("AAPL", 188_0100, 1, "scalper-2", "inst-1")  # loss USD 1,990: 1.99 %
    assert "daily_loss_breached" not in kinds(rh.risk_events())
    extra = rh.buy("scalper-1", "AAPL", 187_0000, 1)
    assert extra.accepted and rh.cancel("scalper-1", "AAPL", extra.order_id).accepted

    rh.clock.advance(SEC)
    rh.trade("AAPL", 188_0000, 1, "scalper-2", "inst-1")  # loss USD 2,000: exactly 2 %
    breach = [e for e in rh.risk_events() if "scalper-1" in (e.get("participant_id"), e.get("target"))]
    assert kinds(breach) == ["daily_loss_breached", "kill_switch_activated", "cancel_orders"]
    assert (breach[0]["day_start_equity"], breach[0]["loss"]) == (100_000_00, 2_000_00)
    assert (breach[1]["mode"], breach[1]["reason"]) == (int(KillMode.REDUCE_ONLY), int(KillReason.DAILY_LOSS))
    assert breach[2]["order_ids"] == sorted([bid.order_id, ask.order_id, es.order_id])
    assert not rh.resting_ids("scalper-1"), "every resting order of the participant is cancelled"

    def probe() -> tuple[int, ...]:
        """buy 1 AAPL, sell 1,001 AAPL (flips short), sell 1,000 AAPL (closes), buy 1 ESZ6."""
        out = []
        for side, symbol, price, qty in ((BUY, "AAPL", 187_0000, 1), (SELL, "AAPL", 189_0000, 1_001),
                                         (SELL, "AAPL", 189_0000, 1_000), (BUY, "ESZ6", ES_PX, 1)):
            sent = rh.order("scalper-1", symbol, side, price, qty)
            out.append(sent.reason)
            if sent.accepted:
                assert rh.cancel("scalper-1", symbol, sent.order_id).accepted
        return tuple(out)

    # adding risk is refused (anywhere), closing the long 1,000 is not
    assert probe() == (R.REDUCE_ONLY, R.REDUCE_ONLY, 0, R.REDUCE_ONLY)
    view = rh.view("scalper-1")
    assert view.reduce_only and not view.kill_switch
    rh.restart()
    assert probe() == (R.REDUCE_ONLY, R.REDUCE_ONLY, 0, R.REDUCE_ONLY)
    # a new trading day re-anchors the loss but does not lift the switch
    rh.clock.now = (rh.clock.now // (86_400 * SEC) + 1) * 86_400 * SEC
    rh.hub.risk_tick()
    assert kinds(rh.risk_events())[-1] == "trading_day_started"
    assert probe() == (R.REDUCE_ONLY, R.REDUCE_ONLY, 0, R.REDUCE_ONLY)
    rh.lift(Scope.PARTICIPANT, "scalper-1")
    assert probe() == (0, 0, 0, 0)
    rh.restart()
    assert probe() == (0, 0, 0, 0)


def test_three_acks_slower_than_50ms_halt_the_asset_class_and_survive_restart(make_hub) -> None:
    rh: RiskHub = make_hub(durable=True)
    ids = _book(rh)
    assert _probe(rh)["s1 AAPL"] == 0
    # 50 ms exactly is no anomaly; a fast ack restarts the run; another class's samples do not count
    for latency in (50 * MS, 50 * MS, 50 * MS, 60 * MS, 60 * MS, 1 * MS, 60 * MS, 60 * MS):
        rh.hub.observe_ack_latency(AssetClass.EQUITY, latency)
        assert rh.hub.risk.kill_switches() == []
    rh.hub.observe_ack_latency(AssetClass.FUTURE, 60 * MS)
    assert rh.hub.risk.kill_switches() == []
    rh.hub.observe_ack_latency(AssetClass.EQUITY, 60 * MS)  # the third in a row
    ((seq, record),) = [(s, d) for s, d in rh.admin_details() if d.get("action") == "risk_kill_record"]
    assert (record["record"]["scope"], record["record"]["target"], record["record"]["reason"]) == (
        int(Scope.ASSET_CLASS), "EQUITY", int(KillReason.LATENCY))
    # the halt is journaled, then the equity orders' cancels follow it in the ledger
    cancels = {oid: at for oid, at in ledger_cancels(rh.hub.journal).items() if at > seq}
    assert set(cancels) == {ids["s1 AAPL"], ids["s2 AAPL"], ids["s2 MSFT"]}
    assert rh.resting_ids() == {ids["s1 ES"], ids["mm BTC"]}
    expected = {"s1 AAPL": R.KILL_SWITCH, "s1 ES": 0, "s2 MSFT": R.KILL_SWITCH, "mm BTC": 0}
    assert _probe(rh) == expected
    rh.restart()
    assert rh.hub.risk.kill_switches()[0][:4] == (Scope.ASSET_CLASS, "EQUITY", KillMode.BLOCK, KillReason.LATENCY)
    assert _probe(rh) == expected
    rh.lift(Scope.ASSET_CLASS, "EQUITY")
    assert set(_probe(rh).values()) == {0}


def test_slow_acks_measured_by_the_hub_itself_trip_the_latency_switch(make_hub) -> None:
    """No test hook: the hub times each order from arrival to ack on its own clock; make every clock
    read cost 51 ms and the third slow order halts the class, so the fourth is refused."""
    clock = FakeClock()
    rh: RiskHub = make_hub(durable=False, clock=clock)
    clock.step = 51 * MS
    sent = [rh.buy("scalper-1", "MSFT", M - i * TICK, 1) for i in range(1, 4)]
    assert all(s.accepted for s in sent)
    assert rh.buy("scalper-1", "MSFT", M - 10 * TICK, 1).reason == R.KILL_SWITCH
    assert rh.buy("scalper-2", "AAPL", P - 10 * TICK, 1).reason == R.KILL_SWITCH
    clock.step = 0
    assert rh.buy("scalper-1", "ESZ6", ES_PX, 1).accepted
    assert rh.resting_ids("scalper-1") == {rh.hub.last_sequence}, "the three slow MSFT orders were cancelled"


def test_a_latency_anomaly_the_hub_cannot_journal_halts_nothing_and_the_hub_still_restarts(make_hub) -> None:
    """Regression: slow acks still arrive while the hub stops (in-flight orders finish after it stopped
    accepting). The halt used to be applied to the risk state before its journal record, which then
    failed: the unjournaled halt refused orders, raised out of the order's ack, and was signed into
    the final checkpoint, so the next start failed to recover (digest mismatch)."""
    rh: RiskHub = make_hub(durable=True)
    assert rh.buy("scalper-1", "AAPL", P - TICK, 1).accepted
    rh.hub.accepting = False
    for _ in range(3):
        rh.hub.observe_ack_latency(AssetClass.EQUITY, 60 * MS)  # must not raise
    assert rh.hub.risk.kill_switches() == [], "a halt that was not journaled must not be in force"
    rh.hub.accepting = True
    rh.restart()
    assert rh.hub.recovery.checkpoint_verified
    assert rh.buy("scalper-1", "AAPL", P - 2 * TICK, 1).accepted
    # once the hub can journal again, the next anomaly halts the class as usual
    for _ in range(3):
        rh.hub.observe_ack_latency(AssetClass.EQUITY, 60 * MS)
    assert rh.buy("scalper-1", "AAPL", P - 3 * TICK, 1).reason == R.KILL_SWITCH
    rh.restart()
    assert rh.buy("scalper-1", "AAPL", P - 3 * TICK, 1).reason == R.KILL_SWITCH


def test_a_block_switch_refuses_a_new_order_at_arrival_without_the_sequencer(make_hub) -> None:
    """While a kill's cancel steps hold the sequencer, an order a BLOCK switch covers is decided at
    once (KILL_SWITCH, the answer the sequenced check would give); only its journaled reject waits
    for the sequencer. Orders outside the switch's scope, and orders the engine refuses on their
    own fields, take the usual path."""
    rh: RiskHub = make_hub(durable=True)
    rh.kill(Scope.PARTICIPANT, "scalper-1")
    hub = rh.hub
    decided: list[tuple[object, bool]] = []
    check = hub._kill_switch_refuses

    def noting(*args):
        refused = check(*args)
        decided.append((refused, held.is_set()))
        return refused

    hub._kill_switch_refuses = noting
    held, release = threading.Event(), threading.Event()

    def hold_sequencer() -> None:
        with hub._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_sequencer)
    holder.start()
    held.wait(5)
    answers: list[Sent] = []
    sender = threading.Thread(target=lambda: answers.append(rh.buy("scalper-1", "AAPL", P - TICK, 1)))
    sender.start()
    sender.join(0.5)
    assert decided == [(R.KILL_SWITCH, True)], "decided while the sequencer was still held"
    assert sender.is_alive() and not answers, "the reject's record waits for the sequencer"
    held.clear()
    release.set()
    holder.join(5)
    sender.join(5)
    assert answers[0].reason == R.KILL_SWITCH and answers[0].outcome is None
    hub.journal.flush()
    rejects = [decode(p).detail_json() for _, _, p, _, _ in hub.journal.iter_records()
               if decode(p).record_type == RecordType.GATEWAY_REJECT]
    assert rejects[-1]["reason"] == R.KILL_SWITCH and rejects[-1]["request"] == "new_order"
    # other participants and malformed orders: the normal path (accepted; the engine's own reject)
    assert rh.buy("scalper-2", "AAPL", P - TICK, 1).accepted
    bad_tick = rh.buy("scalper-1", "AAPL", P - TICK + 1, 1)
    assert bad_tick.reason not in (0, R.KILL_SWITCH), "the engine's field reject stays the answer"
    assert decided[-1] == (None, False) and decided[-2] == (None, False)
