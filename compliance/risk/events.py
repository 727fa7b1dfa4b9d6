"""Risk vocabulary: reject codes, kill-switch scopes and modes, and the events risk emits.

Every event is a frozen dataclass carrying the hub time (``ts``, ns) at which it took effect.
``record()`` gives a JSON-ready dict (ints and strings only, plus ``"type"``) for the ledger;
``order_ids`` become a list. Events are *derived*: replaying the sequenced inputs regenerates
them, so the hub journals them for audit and acts on them live (cancel orders, publish the
limit change) but must not re-act on them during replay (the cancels it sent are in the ledger
as engine commands of their own).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import ClassVar


class RiskReject(IntEnum):
    """Pre-trade risk rejects: the 5xx range of the shared reject numbering.

    The engine uses 1xx-3xx and the gateway 4xx (an operator halt of one instrument stays the
    gateway's INSTRUMENT_HALTED = 403)."""

    PRICE_BAND = 501  # limit price more than the band away from the reference price
    ORDER_RATE = 502  # participant x instrument token bucket empty
    SESSION_RATE = 503  # session message bucket empty
    KILL_SWITCH = 504  # a blocking kill switch covers the hub, the asset class or the participant
    POSITION_LIMIT = 505  # worst-case fill would exceed the (volatility-scaled) position limit
    MARGIN = 506  # post-trade initial requirement above equity (and the order adds risk)
    REDUCE_ONLY = 507  # participant is reduce-only and the order would increase its exposure
    INSTRUMENT_PAUSED = 508  # LULD-style pause after a persistent band breach of the top of book
    MAX_ORDER_QUANTITY = 509  # above the per-order quantity cap
    MAX_ORDER_NOTIONAL = 510  # above the per-order notional cap (market orders at the band edge)
    UNKNOWN_INSTRUMENT = 511  # the risk engine has no reference data for this instrument


class Scope(IntEnum):
    HUB = 1
    ASSET_CLASS = 2
    PARTICIPANT = 3
    SESSION = 4  # only in CancelOrders (cancel-on-disconnect); sessions are not kill targets


class KillMode(IntEnum):
    """Strength of a switch; a stronger one replaces a weaker one, never the other way."""

    NONE = 0
    REDUCE_ONLY = 1  # only orders that cannot increase the worst-case position pass
    BLOCK = 2  # no new orders or replaces at all


class KillReason(IntEnum):
    OPERATOR = 1
    DAILY_LOSS = 2
    LATENCY = 3


class CancelCause(IntEnum):
    """Why the hub is asked to cancel orders (in ``CancelOrders.cause``)."""

    KILL_SWITCH = 1  # operator kill at any scope
    DAILY_LOSS = 2  # participant's daily loss reached the limit
    LATENCY = 3  # latency anomaly halted an asset class
    MARGIN_REDUCE_ONLY = 4  # margin-call grace expired
    SESSION_LOST = 5  # cancel-on-disconnect (DAY orders of the session)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskEvent:
    ts: int
    kind: ClassVar[str] = "risk_event"

    def record(self) -> dict:
        out: dict = {"type": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else int(value) if isinstance(value, IntEnum) else value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionLimitChanged(RiskEvent):
    """A position limit moved. ``participant_id == ""``: the instrument's volatility factor changed
    and applies to everyone on the default base limit (``limit``); participants with their own
    base get their own event. Public information: publish it to every participant."""

    kind: ClassVar[str] = "position_limit_changed"
    instrument_id: int
    participant_id: str
    factor_bps: int  # clamp(reference vol / current vol, floor, cap), quantised
    base_limit: int  # quantity units
    limit: int  # base_limit x factor, floored to the lot size
    vol_bps: int  # current annualised volatility estimate, basis points


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginCall(RiskEvent):
    kind: ClassVar[str] = "margin_call"
    participant_id: str
    equity: int  # base-currency minor units
    maintenance: int
    reduce_only_at: int  # ts at which reduce-only starts unless equity is restored


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginCallResolved(RiskEvent):
    kind: ClassVar[str] = "margin_call_resolved"
    participant_id: str
    equity: int
    maintenance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReduceOnlyStarted(RiskEvent):
    """Margin-call grace expired: the participant is reduce-only until equity covers maintenance."""

    kind: ClassVar[str] = "reduce_only_started"
    participant_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReduceOnlyEnded(RiskEvent):
    kind: ClassVar[str] = "reduce_only_ended"
    participant_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyLossBreached(RiskEvent):
    kind: ClassVar[str] = "daily_loss_breached"
    participant_id: str
    day_start_equity: int
    equity: int
    loss: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitchActivated(RiskEvent):
    """A switch was set or strengthened. ``target``: "" for the hub, the AssetClass name, or the
    participant id. Replay: operator and latency kills are inputs, re-issue them with ``kill``;
    daily-loss kills are regenerated by ``on_trade``."""

    kind: ClassVar[str] = "kill_switch_activated"
    scope: Scope
    target: str
    mode: KillMode
    reason: KillReason
    operator: str
    note: str = ""  # free text from the operator (or the trigger)


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitchLifted(RiskEvent):
    kind: ClassVar[str] = "kill_switch_lifted"
    scope: Scope
    target: str
    operator: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrders(RiskEvent):
    """The hub must cancel these resting orders now (a kill lists them in entry order, others
    sorted; the record always sorted). A hub-wide BLOCK kill asked for with ``list_hub_orders=False``
    lists none: every resting order is to go."""

    kind: ClassVar[str] = "cancel_orders"
    cause: CancelCause
    scope: Scope
    target: str
    order_ids: tuple[int, ...]

    def record(self) -> dict:
        out = RiskEvent.record(self)
        out["order_ids"].sort()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitStateEntered(RiskEvent):
    """The best bid is at or above the upper band, or the best offer at or below the lower band."""

    kind: ClassVar[str] = "limit_state_entered"
    instrument_id: int
    bid: int
    ask: int
    lower: int
    upper: int
    pause_at: int  # the instrument pauses at this ts unless the quote comes back inside


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitStateExited(RiskEvent):
    kind: ClassVar[str] = "limit_state_exited"
    instrument_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentPaused(RiskEvent):
    kind: ClassVar[str] = "instrument_paused"
    instrument_id: int
    resume_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentResumed(RiskEvent):
    kind: ClassVar[str] = "instrument_resumed"
    instrument_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingDayStarted(RiskEvent):
    """Daily-loss anchors were reset to each participant's equity."""

    kind: ClassVar[str] = "trading_day_started"
    day: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CollateralChanged(RiskEvent):
    kind: ClassVar[str] = "collateral_changed"
    participant_id: str
    currency: str
    amount: int  # minor units of the currency, negative for a withdrawal
    balance: int  # new balance in that currency


EVENT_TYPES: dict[str, type[RiskEvent]] = {
    cls.kind: cls
    for cls in (PositionLimitChanged, MarginCall, MarginCallResolved, ReduceOnlyStarted, ReduceOnlyEnded,
                DailyLossBreached, KillSwitchActivated, KillSwitchLifted, CancelOrders, LimitStateEntered,
                LimitStateExited, InstrumentPaused, InstrumentResumed, TradingDayStarted, CollateralChanged)
}
