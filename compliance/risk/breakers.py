"""Kill switches, LULD-style pauses, the latency-anomaly monitor and a heartbeat monitor.

Kill switch state machine, per (scope, target) with scope HUB / ASSET_CLASS / PARTICIPANT:

    NONE --kill(REDUCE_ONLY)--> REDUCE_ONLY --kill(BLOCK)--> BLOCK
    NONE --kill(BLOCK)--------------------------------------> BLOCK
    any  --lift(operator)----------------------------------> NONE

Triggers only ever strengthen a switch; only ``lift`` (an operator command) clears it. A switch
is effective from the call that sets it (the next ``check_order`` already sees it) and its
``CancelOrders`` event lists every resting order it covers (a caller that cancels a whole BLOCKed
hub itself may ask for no list: ``RiskEngine.kill(list_hub_orders=False)``). It is part of the digest and, being
set by journaled inputs, survives a restart through replay.

LULD (per instrument):

    NORMAL --top of book at/through a band edge--> LIMIT_STATE(since)
    LIMIT_STATE --quote back inside before since+limit_state--> NORMAL
    LIMIT_STATE --still there at since+limit_state--> PAUSED(until = since+limit_state+pause)
    PAUSED --hub time reaches until--> NORMAL (the stored quote is re-evaluated at once)

Transitions are evaluated at ``on_top_of_book`` and ``tick``; they are timed at the exact
instant they are due (``pause_at``, ``resume_at``), not at the call, and ``check_order`` reads
the pause window directly, so a pause starts and ends on time even between ticks.

The latency monitor and the heartbeat monitor watch inputs that are *not* sequenced (measured
ack latency, heartbeats). Their counters are live-only and outside the digest: what they
decide becomes a sequenced input (the kill or the session loss) that the hub journals.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from compliance.risk.events import (
    InstrumentPaused,
    InstrumentResumed,
    KillMode,
    KillReason,
    LimitStateEntered,
    LimitStateExited,
    RiskEvent,
    Scope,
)
from compliance.risk.limits import BPS, band_edges


@dataclass(slots=True)
class KillRecord:
    mode: KillMode
    reason: KillReason
    since: int
    operator: str
    note: str = ""


class KillBoard:
    """Every active switch, keyed by (scope, target); ``target`` is "" (hub), the AssetClass
    name, or the participant id."""

    __slots__ = ("switches",)

    def __init__(self) -> None:
        self.switches: dict[tuple[int, str], KillRecord] = {}

    def mode(self, scope: Scope, target: str) -> KillMode:
        rec = self.switches.get((int(scope), target))
        return rec.mode if rec else KillMode.NONE

    def set(self, ts: int, scope: Scope, target: str, mode: KillMode, reason: KillReason, operator: str,
            note: str = "") -> bool:
        """Set or strengthen; False when an equal or stronger switch is already active."""
        key = (int(scope), target)
        rec = self.switches.get(key)
        if rec is not None and rec.mode >= mode:
            return False
        self.switches[key] = KillRecord(mode, reason, ts, operator, note)
        return True

    def lift(self, scope: Scope, target: str) -> bool:
        return self.switches.pop((int(scope), target), None) is not None

    def state(self) -> list[tuple[int, str, int, int, int, str, str]]:
        return [(s, t, int(r.mode), int(r.reason), r.since, r.operator, r.note)
                for (s, t), r in sorted(self.switches.items())]


class Phase(IntEnum):
    NORMAL = 0
    LIMIT_STATE = 1
    PAUSED = 2


class Luld:
    """Limit-state / pause machine of one instrument."""

    __slots__ = ("instrument_id", "limit_ns", "pause_ns", "phase", "pause_at", "resume_at", "bid", "ask")

    def __init__(self, instrument_id: int, limit_state_ns: int, pause_ns: int) -> None:
        self.instrument_id = instrument_id
        self.limit_ns = limit_state_ns
        self.pause_ns = pause_ns
        self.phase = Phase.NORMAL
        self.pause_at = 0
        self.resume_at = 0
        self.bid = 0
        self.ask = 0

    def window(self) -> tuple[int, int] | None:
        """[start, end) of the pause that is scheduled or running, None in NORMAL."""
        if self.phase == Phase.NORMAL:
            return None
        return self.pause_at, self.resume_at

    def _breach(self, ref: int, band_bps: int) -> bool:
        bid, ask = self.bid, self.ask
        return bool((bid and (bid - ref) * BPS >= ref * band_bps) or (ask and (ref - ask) * BPS >= ref * band_bps))

    def _enter(self, ts: int, ref: int, band_bps: int, events: list[RiskEvent]) -> None:
        self.phase = Phase.LIMIT_STATE
        self.pause_at = ts + self.limit_ns
        self.resume_at = self.pause_at + self.pause_ns
        lower, upper = band_edges(ref, band_bps)
        events.append(LimitStateEntered(ts=ts, instrument_id=self.instrument_id, bid=self.bid, ask=self.ask,
                                        lower=lower, upper=upper, pause_at=self.pause_at))

    def advance(self, ts: int, ref: int, band_bps: int, events: list[RiskEvent]) -> None:
        """Apply every transition due by ``ts`` (each stamped with the time it was due)."""
        while True:
            if self.phase == Phase.LIMIT_STATE and ts >= self.pause_at:
                self.phase = Phase.PAUSED
                events.append(InstrumentPaused(ts=self.pause_at, instrument_id=self.instrument_id,
                                               resume_at=self.resume_at))
            elif self.phase == Phase.PAUSED and ts >= self.resume_at:
                self.phase = Phase.NORMAL
                resumed = self.resume_at
                events.append(InstrumentResumed(ts=resumed, instrument_id=self.instrument_id))
                if self._breach(ref, band_bps):
                    self._enter(resumed, ref, band_bps, events)
            else:
                return

    def on_quote(self, ts: int, ref: int, band_bps: int, bid: int, ask: int, events: list[RiskEvent]) -> None:
        self.advance(ts, ref, band_bps, events)
        self.bid, self.ask = bid, ask
        if self.phase == Phase.PAUSED:
            return
        breach = self._breach(ref, band_bps)
        if self.phase == Phase.NORMAL:
            if breach:
                self._enter(ts, ref, band_bps, events)
        elif not breach:
            self.phase = Phase.NORMAL
            events.append(LimitStateExited(ts=ts, instrument_id=self.instrument_id))

    def state(self) -> tuple[int, ...]:
        return (int(self.phase), self.pause_at, self.resume_at, self.bid, self.ask)


class LatencyMonitor:
    """Consecutive order-to-ack latencies strictly above the threshold, per asset class.

    Live-only (not in the digest): samples are wall-clock measurements the ledger does not hold.
    ``observe`` returns True on the sample that completes the run (and restarts the count)."""

    __slots__ = ("threshold", "needed", "runs")

    def __init__(self, threshold_ns: int, consecutive: int) -> None:
        self.threshold = threshold_ns
        self.needed = consecutive
        self.runs: dict[int, int] = {}

    def observe(self, asset_class: int, latency_ns: int) -> bool:
        if latency_ns <= self.threshold:
            self.runs[asset_class] = 0
            return False
        run = self.runs.get(asset_class, 0) + 1
        if run >= self.needed:
            self.runs[asset_class] = 0
            return True
        self.runs[asset_class] = run
        return False


class HeartbeatMonitor:
    """Session liveness for cancel-on-disconnect (live-only, outside the digest).

    The gateway calls ``beat(session, now)`` on every message or heartbeat and polls
    ``expired(now)``; for each session returned it journals the loss and calls
    ``RiskEngine.on_session_lost`` in the sequenced path. Sessions are reported once."""

    __slots__ = ("timeout", "last")

    def __init__(self, timeout_ns: int) -> None:
        self.timeout = timeout_ns
        self.last: dict[str, int] = {}

    def beat(self, session: str, now: int) -> None:
        self.last[session] = now

    def forget(self, session: str) -> None:
        self.last.pop(session, None)

    def expired(self, now: int) -> list[str]:
        """Sessions silent for more than the timeout, in session-id order (then forgotten)."""
        gone = sorted(s for s, t in self.last.items() if now - t > self.timeout)
        for s in gone:
            del self.last[s]
        return gone
