"""Pre-trade risk: checks, volatility-scaled position limits, cross-margining, circuit breakers
and kill switches, replayable from the ledger.

One facade, ``RiskEngine(config, instruments)``, owned by the hub's sequencer (single writer,
no locks inside). Nothing in it reads a clock or a random source: every call carries hub time
``ts`` (int ns) and sequenced inputs, so feeding the same calls in the same order gives the same
state, events and ``state_digest()`` bit for bit.

How the hub calls it, in sequence order (all inside the sequencer lock)
------------------------------------------------------------------------
New order (after the gateway's own checks, before the engine)::

    reject = risk.check_order(ts, participant_id, session_id, instrument_id, side, order_type,
                              price, quantity)                      # pure, ~2-4 us
    if reject:   journal a risk reject (int(reject) is the 5xx reason) and answer; stop.
    risk.on_order_entered(ts, participant_id, session_id, order_id, instrument_id, side, price,
                          quantity, time_in_force)                  # tokens + open exposure
    run the engine, then feed its events in order:
        Trade            -> risk.on_engine_trade(ts, ev, maker_pid, taker_pid)   (or on_trade)
        Done / Cancelled / Expired / Rejected(new order) -> risk.on_order_done(ts, order_id)
        Replaced         -> risk.on_order_replaced(ts, order_id, ev.price, ev.remaining)
        TopOfBook        -> risk.on_top_of_book(ts, instrument_id, ev.bid_price, ev.ask_price)

Risk cancels (CancelOrders from a kill, reduce-only, a lost session): the hub runs them as steps of
many orders (engine ``cancel_orders_columns``, or ``cancel_all_columns`` for a hub-wide BLOCK switch,
whose CancelOrders it asks to list no ids; one ``risk_cancel`` ledger record per engine) and releases
them at once with ``risk.on_orders_done(ts, order_ids)``: the same state as ``on_order_done`` one by one.

A batch (mass quote, ``throttled=False``): open ``hold = risk.hold(participant)``,
``hold.release(ids)`` of the quotes the message replaces, then per side in turn ``check_order``
and, if accepted, ``hold.add(instrument_id, side, quantity)`` (so each check sees the quotes
before it and not the ones being replaced); ``hold.restore()`` (always, try/finally: the engine
is then exactly as before). Then, at sequencing, ``on_quotes_entered`` (or ``on_order_entered``
per NewOrder) and run the batch and feed all its events (the Cancelled events release the
replaced quotes). Unary calls without a streaming session pass ``session_id=""`` (they share a
per-participant bucket).

Replace: ``check_replace(ts, pid, session, order_id, price, qty)`` then, if sequenced,
``on_replace_entered(ts, pid, session, order_id)`` and the engine events as above. Cancels are
never risk-checked. Operator: ``kill(ts, scope, target, mode=..., operator=..., note=...)``,
``lift(ts, scope, target, operator=...)``, ``set_position_limit(ts, pid, iid, base)`` (None
restores the default; the wire's 0 means None), ``deposit``. Sessions:
``on_session_lost(ts, session)`` (heartbeat lost; see ``HeartbeatMonitor``),
``on_session_closed``. Measured latency: ``on_ack_latency(ts, asset_class, latency_ns)``.
Timer: ``tick(ts)`` every few ms (LULD pause/resume, margin grace expiry, day roll).
Checkpoints: ``hub digest = sha256(engine digests ... + risk.state_digest())``.
Queries (pure): ``participant_view(ts, pid)`` (Account.GetRisk), ``margin(pid)``,
``position_limit``, ``position``, ``kill_switches()``, ``is_paused``, ``verify()`` (recomputes
every cache; use it after a replay).

Events and what the hub does with them (every call that can return events returns a list):
``CancelOrders`` -> cancel those order ids now (they are Cancel commands of their own);
``KillSwitchActivated/Lifted``, ``InstrumentPaused/Resumed``, ``LimitStateEntered/Exited`` ->
journal and publish the status; ``PositionLimitChanged`` -> journal, tell the participant(s);
``MarginCall``, ``MarginCallResolved``, ``ReduceOnlyStarted/Ended``, ``DailyLossBreached``,
``TradingDayStarted``, ``CollateralChanged`` -> journal and tell the participant.

Replay (restart): feed the same calls from the ledger in sequence order: ``on_order_entered``
for every NewOrder command, ``on_replace_entered`` for every Replace, the engine events as
above, the journaled operator commands, deposits and session losses, ``tick(ts)`` for every
journaled tick (journal a tick only when it returned events: ticks with no events change
nothing), and ``kill_from_record(record)`` for a journaled latency kill (the latency run
counter is live-only). Do not re-act on replayed events (their cancels are already
in the ledger). Risk rejects need no replay: ``check_order`` is pure.

Modules: ``config`` (typed frozen config and defaults), ``events`` (rejects, scopes, events),
``limits`` (band, worst case, reduce-only), ``ratelimit`` (token buckets), ``volatility``
(EWMA estimator, limit factor), ``margin`` (scan risk, offsets, FX), ``breakers`` (kill board,
LULD, latency and heartbeat monitors), ``state`` (state records, digest), ``fixedpoint``
(integer ln and EWMA weights), ``engine`` (the facade), ``bench`` (check-cost benchmark).
"""

from compliance.risk.breakers import HeartbeatMonitor
from compliance.risk.config import (
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
    fx_rates_from_instruments,
    risk_config_from_json,
    risk_config_from_mapping,
    span_scenarios,
)
from compliance.risk.engine import InstrumentLimitView, MarginSnapshot, ParticipantRiskView, RiskEngine
from compliance.risk.events import (
    EVENT_TYPES,
    CancelCause,
    CancelOrders,
    CollateralChanged,
    DailyLossBreached,
    InstrumentPaused,
    InstrumentResumed,
    KillMode,
    KillReason,
    KillSwitchActivated,
    KillSwitchLifted,
    LimitStateEntered,
    LimitStateExited,
    MarginCall,
    MarginCallResolved,
    PositionLimitChanged,
    ReduceOnlyEnded,
    ReduceOnlyStarted,
    RiskEvent,
    RiskReject,
    Scope,
    TradingDayStarted,
)

__all__ = [
    "EVENT_TYPES", "BreakerConfig", "CancelCause", "CancelOrders", "ClassMarginConfig", "CollateralChanged",
    "DailyLossBreached", "HeartbeatMonitor", "InstrumentLimitView", "InstrumentPaused", "InstrumentResumed",
    "InstrumentRiskConfig",
    "KillMode", "KillReason", "KillSwitchActivated", "KillSwitchLifted", "LimitStateEntered", "LimitStateExited",
    "MarginCall", "MarginCallResolved", "MarginConfig", "MarginSnapshot", "OffsetConfig", "ParticipantRiskConfig",
    "ParticipantRiskView",
    "PositionLimitChanged", "RateLimitConfig", "ReduceOnlyEnded", "ReduceOnlyStarted", "RiskConfig",
    "RiskConfigError", "RiskEngine", "RiskEvent", "RiskReject", "Scenario", "Scope", "TradingDayStarted",
    "VolatilityConfig", "fx_rates_from_instruments", "risk_config_from_json", "risk_config_from_mapping", "span_scenarios",
]
