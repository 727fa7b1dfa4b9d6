"""Circuit breakers and kill switches as state machines: operator kills at hub / asset-class /
participant scope, the 2 % daily-loss breaker, the 50 ms x 3 latency anomaly, LULD-style pauses
with automatic resume, and cancel-on-disconnect."""

from __future__ import annotations

import pytest

from compliance.risk import (
    CancelCause,
    CancelOrders,
    HeartbeatMonitor,
    InstrumentPaused,
    KillMode,
    KillReason,
    KillSwitchActivated,
    LimitStateEntered,
    ParticipantRiskConfig,
    RiskConfig,
    RiskEngine,
    RiskReject,
    Scope,
)
from matching.types import AssetClass, TimeInForce
from tests.compliance.risk.conftest import (
    AAPL,
    BUY,
    ES,
    LIMIT,
    MS,
    MSFT,
    SEC,
    SELL,
    T0,
    kinds,
    new_engine,
    trade,
)

K = RiskReject.KILL_SWITCH


def _book(engine: RiskEngine) -> None:
    """Resting orders: p has 1 (AAPL) and 2 (ES); q has 3 (AAPL) and 4 (MSFT)."""
    engine.on_order_entered(T0, "p", "p/1", 1, AAPL, BUY, 189_0000, 10)
    engine.on_order_entered(T0, "p", "p/1", 2, ES, SELL, 6001_00, 1)
    engine.on_order_entered(T0, "q", "q/1", 3, AAPL, SELL, 191_0000, 10)
    engine.on_order_entered(T0, "q", "q/1", 4, MSFT, BUY, 419_0000, 10)


def _checks(engine: RiskEngine, ts: int) -> dict[str, RiskReject | None]:
    return {
        "p AAPL": engine.check_order(ts, "p", "p/1", AAPL, BUY, LIMIT, 190_0000, 1),
        "p ES": engine.check_order(ts, "p", "p/1", ES, BUY, LIMIT, 6000_00, 1),
        "q AAPL": engine.check_order(ts, "q", "q/1", AAPL, BUY, LIMIT, 190_0000, 1),
        "q MSFT": engine.check_order(ts, "q", "q/1", MSFT, BUY, LIMIT, 420_0000, 1),
    }


@pytest.mark.parametrize("scope, target, blocked, cancelled", [
    (Scope.HUB, None, {"p AAPL", "p ES", "q AAPL", "q MSFT"}, (1, 2, 3, 4)),
    (Scope.ASSET_CLASS, AssetClass.EQUITY, {"p AAPL", "q AAPL", "q MSFT"}, (1, 3, 4)),
    (Scope.PARTICIPANT, "p", {"p AAPL", "p ES"}, (1, 2)),
], ids=["hub", "asset class", "participant"])
def test_operator_kill_switch_state_machine(scope: Scope, target, blocked: set[str], cancelled: tuple) -> None:
    engine = new_engine()
    _book(engine)
    # given trading is open, when the operator kills the scope, then new orders stop at once ...
    events = engine.kill(T0 + 1, scope, target, operator="ops", note="runaway algo")
    assert kinds(events) == ["kill_switch_activated", "cancel_orders"]
    assert isinstance(events[0], KillSwitchActivated) and events[0].mode == KillMode.BLOCK
    assert (events[0].reason, events[0].operator, events[0].note) == (KillReason.OPERATOR, "ops", "runaway algo")
    # ... every resting order in scope is to be cancelled ...
    assert isinstance(events[1], CancelOrders) and events[1].order_ids == cancelled
    assert events[1].cause == CancelCause.KILL_SWITCH
    outcome = _checks(engine, T0 + 1)
    assert {k for k, v in outcome.items() if v == K} == blocked
    assert all(v is None for k, v in outcome.items() if k not in blocked)
    # ... repeating it is a no-op, time does not lift it, nor does a lift at another scope ...
    assert engine.kill(T0 + 2, scope, target) == []
    assert engine.tick(T0 + 10**15) == []
    other = Scope.HUB if scope != Scope.HUB else Scope.PARTICIPANT
    assert engine.lift(T0 + 3, other, "p" if other == Scope.PARTICIPANT else None) == []
    assert {k for k, v in _checks(engine, T0 + 3).items() if v == K} == blocked
    # ... only the operator's lift at the same scope ends it
    (lifted,) = engine.lift(T0 + 4, scope, target, operator="ops")
    assert lifted.kind == "kill_switch_lifted"
    assert all(v is None for v in _checks(engine, T0 + 4).values())
    engine.verify()


def test_kill_switch_only_strengthens() -> None:
    engine = new_engine()
    assert kinds(engine.kill(T0, Scope.PARTICIPANT, "p", mode=KillMode.REDUCE_ONLY)) == ["kill_switch_activated"]
    assert engine.check_order(T0, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1) == RiskReject.REDUCE_ONLY
    assert kinds(engine.kill(T0, Scope.PARTICIPANT, "p", mode=KillMode.BLOCK)) == ["kill_switch_activated"]
    assert engine.kill(T0, Scope.PARTICIPANT, "p", mode=KillMode.REDUCE_ONLY) == []  # never weakened
    assert engine.kill_mode(Scope.PARTICIPANT, "p") == KillMode.BLOCK
    assert engine.check_order(T0, "p", "s", AAPL, SELL, LIMIT, 190_0000, 1) == K


def test_kill_switch_survives_restart_by_replay() -> None:
    def feed(engine: RiskEngine) -> None:
        _book(engine)
        engine.kill(T0 + 1, Scope.ASSET_CLASS, "FUTURE", operator="ops")
        trade(engine, T0 + 2, AAPL, 190_0000, 5)

    live, restarted = new_engine(), new_engine()
    feed(live)
    feed(restarted)
    assert restarted.state_digest() == live.state_digest()
    assert restarted.check_order(T0 + 3, "p", "p/1", ES, BUY, LIMIT, 6000_00, 1) == K
    assert restarted.kill_switches() == [(Scope.ASSET_CLASS, "FUTURE", KillMode.BLOCK, KillReason.OPERATOR,
                                          T0 + 1, "ops", "")]


def risk(events: list) -> list:
    """Events other than volatility limit changes (a 1 % move in a second is a spike too)."""
    return [e for e in events if e.kind != "position_limit_changed"]


DD = RiskConfig(participants=(ParticipantRiskConfig(participant_id="d", collateral=(("USD", 10_000_00),)),))


def test_daily_loss_breaker_fires_at_exactly_two_percent() -> None:
    engine = new_engine(DD)
    engine.on_trade(T0, AAPL, 190_0000, 100, "d", "street")
    engine.on_order_entered(T0, "d", "d/1", 9, AAPL, BUY, 185_0000, 5)
    # loss USD 199.00 (1.99 %): nothing
    assert risk(trade(engine, T0 + SEC, AAPL, 188_0100, 1)) == []
    # loss USD 200.00 = 2 % of 10,000: breach, reduce-only, cancel its orders
    events = risk(trade(engine, T0 + 2 * SEC, AAPL, 188_0000, 1))
    assert kinds(events) == ["daily_loss_breached", "kill_switch_activated", "cancel_orders"]
    assert (events[0].day_start_equity, events[0].equity, events[0].loss) == (10_000_00, 9_800_00, 200_00)
    assert (events[1].scope, events[1].target, events[1].mode, events[1].reason) == (
        Scope.PARTICIPANT, "d", KillMode.REDUCE_ONLY, KillReason.DAILY_LOSS)
    assert events[2].order_ids == (9,) and events[2].cause == CancelCause.DAILY_LOSS
    t = T0 + 3 * SEC
    assert engine.check_order(t, "d", "d/1", AAPL, BUY, LIMIT, 188_0000, 1) == RiskReject.REDUCE_ONLY
    assert engine.check_order(t, "d", "d/1", AAPL, SELL, LIMIT, 188_0000, 100) is None
    assert risk(trade(engine, t, AAPL, 187_0000, 1)) == []  # no repeat while the switch is on
    # only the operator lifts it; the anchor is re-based at the current equity (9,700)
    assert kinds(engine.lift(t, Scope.PARTICIPANT, "d", operator="risk-desk")) == ["kill_switch_lifted"]
    assert engine.margin("d").day_start_equity == 9_700_00
    assert engine.check_order(t, "d", "d/1", AAPL, BUY, LIMIT, 187_0000, 1) is None
    assert risk(trade(engine, t + SEC, AAPL, 185_0700, 1)) == []  # loss 193.00 < 2 % of 9,700 = 194.00
    events = risk(trade(engine, t + 2 * SEC, AAPL, 185_0600, 1))  # 194.00: fires again
    assert kinds(events)[:2] == ["daily_loss_breached", "kill_switch_activated"]


def test_new_trading_day_resets_the_anchor() -> None:
    engine = new_engine(DD)
    engine.on_trade(T0, AAPL, 190_0000, 100, "d", "street")
    trade(engine, T0 + SEC, AAPL, 188_5000, 1)  # -150 today
    events = risk(trade(engine, T0 + 86_400 * SEC, AAPL, 188_5000, 1))
    assert kinds(events) == ["trading_day_started"]
    assert engine.margin("d").day_start_equity == 9_850_00


@pytest.mark.parametrize("samples, fires_at", [
    ([50 * MS, 50 * MS, 50 * MS], None),  # exactly the threshold is not an anomaly
    ([50 * MS + 1] * 3, 2),
    ([50 * MS + 1, 50 * MS + 1, 50 * MS, 50 * MS + 1, 50 * MS + 1], None),  # a normal sample resets the run
    ([50 * MS + 1, 50 * MS + 1, 10 * MS, 60 * MS, 70 * MS, 80 * MS], 5),
], ids=["at threshold", "three above", "interrupted", "fires on the third of a new run"])
def test_latency_anomaly_halts_the_asset_class(samples: list[int], fires_at: int | None) -> None:
    engine = new_engine()
    _book(engine)
    fired = None
    for i, latency in enumerate(samples):
        events = engine.on_ack_latency(T0 + i, AssetClass.EQUITY, latency)
        if events:
            assert fired is None
            fired = i
            assert kinds(events) == ["kill_switch_activated", "cancel_orders"]
            assert (events[0].scope, events[0].target, events[0].reason) == (
                Scope.ASSET_CLASS, "EQUITY", KillReason.LATENCY)
            assert events[1].order_ids == (1, 3, 4) and events[1].cause == CancelCause.LATENCY
    assert fired == fires_at
    if fires_at is not None:
        assert engine.check_order(T0 + 10, "p", "p/1", AAPL, BUY, LIMIT, 190_0000, 1) == K
        assert engine.check_order(T0 + 10, "p", "p/1", ES, BUY, LIMIT, 6000_00, 1) is None
        assert engine.tick(T0 + 10**15) == []
        assert engine.lift(T0 + 20, Scope.ASSET_CLASS, AssetClass.EQUITY, operator="ops")
        assert engine.check_order(T0 + 20, "p", "p/1", AAPL, BUY, LIMIT, 190_0000, 1) is None


def test_latency_kill_replays_from_its_record() -> None:
    live, replayed = new_engine(), new_engine()
    for engine in (live, replayed):
        _book(engine)
    events = []
    for i in range(3):
        events += live.on_ack_latency(T0 + i, AssetClass.FX, 51 * MS)
    # the run counter is live-only: on restart the journaled kill itself is replayed
    assert replayed.kill_from_record(events[0].record()) == events
    assert replayed.state_digest() == live.state_digest()


def test_latency_runs_are_counted_per_asset_class() -> None:
    engine = new_engine()
    slow = 51 * MS
    seq = [(AssetClass.EQUITY, slow), (AssetClass.FX, slow), (AssetClass.EQUITY, slow), (AssetClass.FX, 1),
           (AssetClass.EQUITY, slow)]
    fired = [bool(engine.on_ack_latency(T0, ac, lat)) for ac, lat in seq]
    assert fired == [False, False, False, False, True]
    assert engine.kill_mode(Scope.ASSET_CLASS, AssetClass.FX) == KillMode.NONE


def test_luld_limit_state_pause_and_automatic_resume() -> None:
    engine = new_engine()
    limit_ns, pause_ns = 15 * SEC, 300 * SEC
    assert engine.on_top_of_book(T0, AAPL, 199_4900, 199_6000) == []  # bid inside the band
    events = engine.on_top_of_book(T0 + 1, AAPL, 199_5000, 199_6000)  # bid at the +5 % edge
    assert kinds(events) == ["limit_state_entered"]
    assert isinstance(events[0], LimitStateEntered)
    assert (events[0].lower, events[0].upper, events[0].pause_at) == (180_5000, 199_5000, T0 + 1 + limit_ns)
    start = T0 + 1 + limit_ns
    assert engine.check_order(start - 1, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1) is None
    # the pause starts exactly on time, even before any tick
    assert engine.check_order(start, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1) == RiskReject.INSTRUMENT_PAUSED
    assert engine.check_order(start, "p", "s", MSFT, BUY, LIMIT, 420_0000, 1) is None
    assert engine.tick(start - 1) == []
    events = engine.tick(start + 5 * MS)
    assert kinds(events) == ["instrument_paused"]
    assert isinstance(events[0], InstrumentPaused) and events[0].ts == start and events[0].resume_at == start + pause_ns
    assert engine.check_order(start + pause_ns - 1, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1) == \
        RiskReject.INSTRUMENT_PAUSED
    assert engine.check_order(start + pause_ns, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1) is None
    # automatic resume; the quote is still at the band, so a new limit state begins at once
    events = engine.tick(start + pause_ns)
    assert kinds(events) == ["instrument_resumed", "limit_state_entered"]
    assert events[1].pause_at == start + pause_ns + limit_ns
    # the quote comes back inside: the limit state ends, no second pause
    assert kinds(engine.on_top_of_book(start + pause_ns + SEC, AAPL, 199_0000, 199_6000)) == ["limit_state_exited"]
    assert engine.tick(start + pause_ns + 2 * limit_ns) == []
    assert engine.check_order(start + pause_ns + 2 * limit_ns, "p", "s", AAPL, BUY, LIMIT, 190_0000, 1) is None
    engine.verify()


def test_luld_offer_at_lower_band_and_early_exit() -> None:
    engine = new_engine()
    assert kinds(engine.on_top_of_book(T0, AAPL, 180_0000, 180_5000)) == ["limit_state_entered"]
    assert kinds(engine.on_top_of_book(T0 + 14 * SEC, AAPL, 180_0000, 180_5100)) == ["limit_state_exited"]
    assert engine.tick(T0 + 60 * SEC) == []
    # a quote event after the due time still pauses at the due time
    engine.on_top_of_book(T0 + 100 * SEC, AAPL, 0, 180_5000)
    events = engine.on_top_of_book(T0 + 200 * SEC, AAPL, 0, 180_4000)
    assert kinds(events) == ["instrument_paused"] and events[0].ts == T0 + 115 * SEC


def test_cancel_on_disconnect_cancels_the_sessions_day_orders() -> None:
    engine = new_engine()
    engine.on_order_entered(T0, "p", "p/1", 1, AAPL, BUY, 189_0000, 10, TimeInForce.DAY)
    engine.on_order_entered(T0, "p", "p/1", 2, AAPL, BUY, 189_0000, 10, TimeInForce.GTC)
    engine.on_order_entered(T0, "p", "p/2", 3, AAPL, BUY, 189_0000, 10, TimeInForce.DAY)
    (event,) = engine.on_session_lost(T0 + SEC, "p/1")
    assert (event.cause, event.scope, event.target, event.order_ids) == (CancelCause.SESSION_LOST, Scope.SESSION,
                                                                         "p/1", (1,))
    assert engine.on_session_lost(T0 + SEC, "p/9") == []

    monitor = HeartbeatMonitor(30 * SEC)
    monitor.beat("p/1", T0)
    monitor.beat("p/2", T0 + 10 * SEC)
    assert monitor.expired(T0 + 30 * SEC) == []
    assert monitor.expired(T0 + 30 * SEC + 1) == ["p/1"]
    assert monitor.expired(T0 + 30 * SEC + 2) == []  # reported once
    assert monitor.expired(T0 + 41 * SEC) == ["p/2"]


def test_participant_view_for_the_account_service() -> None:
    import json

    engine = new_engine(DD)
    engine.on_trade(T0, AAPL, 190_0000, 100, "d", "street")
    view = engine.participant_view(T0, "d")
    assert (view.equity, view.maintenance_requirement, view.reduce_only, view.kill_switch) == (10_000_00, 2_850_00,
                                                                                               False, False)
    aapl = next(v for v in view.limits if v.instrument_id == AAPL)
    assert (aapl.net_position, aapl.position_limit, aapl.limit_factor_bps) == (100, 10_000_000, 10_000)
    risk(trade(engine, T0 + SEC, AAPL, 188_0000, 1))  # the 2 % breaker
    view = engine.participant_view(T0 + SEC, "d")
    assert (view.reduce_only, view.kill_switch) == (True, False)
    assert view.detail["daily_loss"] == 200_00 and view.detail["daily_loss_limit"] == 200_00
    engine.kill(T0 + 2 * SEC, Scope.HUB, operator="ops")
    view = engine.participant_view(T0 + 2 * SEC, "d")
    assert view.kill_switch and [s["scope"] for s in view.detail["kill_switches"]] == ["HUB", "PARTICIPANT"]
    json.dumps(view.detail)
    assert engine.participant_view(T0, "never-seen").equity == 10_000_000_00  # default collateral
