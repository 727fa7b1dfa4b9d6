"""The hub's sequenced path: validate, stamp, sequence, match, journal, then tell everyone.

One lock is the sequencer. Inside it a command gets its global sequence number and hub time,
goes through its asset class's engine, is appended to the journal, and its events are routed:
execution reports to the orders' owners only, public updates to market data. Why one lock and
no engine thread: under the GIL a thread per engine buys no parallelism, and handing each
command to another thread and back costs two wake-ups on the latency path (see hub.bench).
Order ids are the sequence number of the command that entered the order: unique, increasing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from array import array
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from compliance.fees import FEE_CLASSES, FeeEngine, FeeRecord, FixedFeeCharge, Month
from compliance.risk import RiskConfig, RiskEngine, ratelimit, risk_config_from_json
from compliance.risk.breakers import LatencyMonitor
from compliance.risk.events import (
    CancelCause,
    CancelOrders,
    InstrumentPaused,
    InstrumentResumed,
    KillMode,
    KillReason,
    KillSwitchActivated,
    RiskEvent,
    RiskReject,
    Scope,
)
from compliance.statements import (
    ParticipantStatement,
    VenueRevenueSummary,
    participant_statement,
    venue_revenue_summary,
)
from hub.auth import Identity
from hub.config import HubConfig, ParticipantClass, Role
from hub.fairness import FairnessReject, FairnessRules, ReleaseScheduler, RestingMode, is_liquidity_taking
from hub.gc_policy import GcPolicy
from hub.helper_thread import shared_helper
from hub.journal import EntryKind, InMemoryJournal, Journal, JournalEntry, JournalUnavailableError
from hub.loop_bridge import LoopWakeable
from hub.marketdata import MarketDataHub, Subscriber
from hub.risk_cancels import CancelStepEvents, UnsettledCancels, risk_cancel_detail, split_cancel_events
from hub.v1 import common_pb2 as cpb
from hub.v1 import market_data_pb2 as mdpb
from ledger.records import canonical_json, risk_cancel_orders
from matching import validation
from matching.engine import create_engine
from matching.instruments import Instrument, by_asset_class
from matching.interface import MatchingEngine
from matching.types import (
    ALL_INSTRUMENTS,
    Accepted,
    AssetClass,
    BookDelta,
    Cancel,
    Cancelled,
    Command,
    CommandKind,
    Done,
    EndOfSession,
    Event,
    Expired,
    MassCancel,
    MassCancelReport,
    NewOrder,
    OrderType,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    Side,
    StpMode,
    TimeInForce,
    TopOfBook,
    Trade,
    decode_commands,
    decode_events,
    encode_commands,
)
from matching.validation import order_fields_refused


class GatewayReject(IntEnum):
    """Rejects decided before an engine sees the command (the 4xx range of the proto enum)."""

    ACCOUNT_NOT_PERMITTED = 401
    DUPLICATE_CLIENT_ORDER_ID = 402
    INSTRUMENT_HALTED = 403
    MISSING_FIELD = 404
    FIELD_OUT_OF_RANGE = 405
    TOO_MANY_QUOTES = 406


class HubUnavailableError(RuntimeError):
    """The hub cannot take commands now (starting, stopping, or its journal is down)."""


_INT64_MAX = 2**63 - 1
_PROTO_STP = {  # wire value -> engine value; unspecified is resolved to the participant default
    cpb.STP_CANCEL_RESTING: StpMode.CANCEL_RESTING,
    cpb.STP_CANCEL_INCOMING: StpMode.CANCEL_INCOMING,
    cpb.STP_CANCEL_BOTH: StpMode.CANCEL_BOTH,
    cpb.STP_ALLOW: StpMode.NONE,
}
_INVALID_STP = 99  # any other wire value: the engine answers INVALID_STP_MODE


@dataclass(slots=True)
class OrderMeta:
    """What the gateway knows of a live order beyond the book: whose it is and where from."""

    participant_id: str
    client_order_id: str
    session_id: str
    instrument_id: int
    symbol: str
    side: int
    account: int
    price: int
    time_in_force: int
    display_quantity: int = 0
    is_quote: bool = False
    entry_ns: int = 0  # hub time it entered the book (for the minimum resting time)
    min_rest_ns: int = 0  # minimum resting time that applies to it (fairness rules, at entry)


class OrderSpec(NamedTuple):
    """A new order as decoded from the wire, before any check. Immutable; a NamedTuple rather than
    a frozen dataclass because every order builds one (0.3 vs 1.2 us: a frozen dataclass sets each
    field through object.__setattr__)."""

    symbol: str
    side: int
    order_type: int
    time_in_force: int
    price: int
    quantity: int
    display_quantity: int = 0
    post_only: bool = False
    stp_mode: int = cpb.STP_MODE_UNSPECIFIED
    account: int = 0
    client_order_id: str = ""


class QuoteSpec(NamedTuple):
    """One quote of a mass quote (a side with quantity 0 is not quoted); a NamedTuple like OrderSpec."""

    symbol: str
    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int


class ReportQueue(LoopWakeable):
    """Execution reports for one stream (a session's unsolicited reports or a drop copy).

    Bounded: a reader that falls this far behind is cut off (``overflowed``) and must recover
    through Account.GetExecutions; reports are never silently skipped."""

    def __init__(self, capacity: int) -> None:
        self._items: deque = deque()
        self._capacity = capacity
        self._cv = threading.Condition(threading.Lock())
        self.overflowed = False
        self.closed = False

    def put(self, item, ticket: int = 0, wake: bool = True) -> None:
        """Queue an item that may be sent once journal ticket ``ticket`` is committed (0: now).
        ``wake=False``: the caller sends it itself right after (a session's reader queuing its own
        reply behind whatever is queued), so nobody waiting needs to be woken for it."""
        with self._cv:
            if self.overflowed or self.closed:
                return
            if len(self._items) >= self._capacity:
                self.overflowed = True
                self._items.clear()
            else:
                self._items.append((item, ticket))
            if wake:
                self._wake_loop()

    async def take_async(self, timeout: float | None) -> tuple[list, int]:
        """Everything queued and the journal ticket that must be committed before sending it, once
        there is news or ``timeout`` s have passed; waits on the gateway's loop without blocking it."""
        await self._ready(self._has_news, timeout)
        return self.take_now()

    def take_now(self) -> tuple[list, int]:
        """``take_async`` without waiting: what is queued now (maybe nothing)."""
        with self._cv:
            return self._drain()

    async def news(self) -> None:
        """Wait on the gateway's loop until something is queued, the queue overflowed or it closed."""
        await self._ready(self._has_news, None)

    def _has_news(self) -> bool:
        return bool(self._items) or self.overflowed or self.closed

    def _drain(self) -> tuple[list, int]:
        items = [item for item, _ in self._items]
        ticket = max((t for _, t in self._items), default=0)
        self._items.clear()
        return items, ticket

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._wake_loop()


@dataclass(slots=True)
class SessionState:
    session_id: str
    participant_id: str
    cancel_on_disconnect: bool
    outbox: ReportQueue


@dataclass(slots=True)
class Position:
    bought: int = 0
    sold: int = 0
    net_cost_raw: int = 0  # price x quantity x multiplier, buys minus sells


@dataclass(slots=True)
class Outcome:
    """What one sequenced call did, for building the caller's reply."""

    seq_first: int
    ts: int
    events: list[Event]
    reports: list[cpb.ExecutionReport] = field(default_factory=list)  # the caller's own
    ticket: int = 0  # journal ticket: the reply may leave only once it is committed


EntryResult = tuple[Outcome | None, int, str]  # (outcome, reject reason or 0, text); outcome None: refused


class Refused(tuple):
    """A refused order-entry call's ``EntryResult`` (None, reason, text) that also carries the
    journal ticket of its reject record: the caller waits for that commit outside the sequencer
    (and off the gateway's event loop), as for an accepted command's ``outcome.ticket``."""

    ticket: int


def _refused(reason: int, text: str, ticket: int) -> EntryResult:
    result = Refused((None, int(reason), text))
    result.ticket = ticket
    return result


def _reason_name(reason: int) -> str:
    """The name of a reject reason, whichever of the closed enums it belongs to."""
    for enum in (RejectReason, GatewayReject, RiskReject, FairnessReject):
        try:
            return enum(reason).name
        except ValueError:
            continue
    return str(reason)


def ticket_of(result: EntryResult) -> int:
    """The journal ticket an order-entry result must see committed before it is answered (0: none)."""
    outcome = result[0]
    return outcome.ticket if outcome is not None else getattr(result, "ticket", 0)


@dataclass(slots=True)
class HeldCall:
    """An order-entry call (or mass quote) a fairness rule holds (a latency floor, a batch window, a
    minimum resting time): ``future`` resolves, once the scheduler releases and sequences it, to its result (or to
    another such future: a held cancel that then joins a batch); ``finish`` completes it. The
    gateway's event loop awaits the future instead of blocking on it."""

    future: Future
    finish: Callable  # its result -> the call's answer (an EntryResult; a mass quote's MassQuoteResult)

    def wait(self):
        """Block until released (for callers on their own thread)."""
        result = self.future.result()
        while isinstance(result, Future):
            result = result.result()
        return self.finish(result)


def _unheld(result: EntryResult | HeldCall) -> EntryResult:
    return result.wait() if isinstance(result, HeldCall) else result


def _highest(futures: list[Future], ticket: int) -> Future:
    """A future of the highest of ``ticket`` and the journal tickets ``futures`` resolve to, once
    all are done (the first failure fails it): a mass quote held in several parts."""
    if len(futures) == 1 and not ticket:
        return futures[0]
    combined: Future = Future()
    left = [len(futures)]
    lock = threading.Lock()

    def done(_: Future) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        try:
            highest = max([ticket, *(f.result() for f in futures)])
        except BaseException as exc:  # noqa: BLE001 - the waiting caller re-raises it
            with contextlib.suppress(InvalidStateError):  # cancelled: its caller went away
                combined.set_exception(exc)
        else:
            with contextlib.suppress(InvalidStateError):
                combined.set_result(highest)

    for f in futures:
        f.add_done_callback(done)
    return combined


#: A mass quote's answer: (reports, per quote (symbol, bid id, bid reject, ask id, ask reject),
#: reject reason or 0, text, journal ticket the answer waits for).
MassQuoteResult = tuple[list[cpb.ExecutionReport], list[tuple[str, int, int, int, int]], int, str, int]


@dataclass(slots=True)
class _QuoteMessage:
    """One mass quote being sequenced, perhaps in parts (asset classes released at different times)."""

    who: Identity
    session_id: str
    account: int
    results: dict[int, list]  # quote index -> [symbol, bid id, bid reject, ask id, ask reject]
    reports: list[cpb.ExecutionReport]  # the caller's, in sequence order


# One risk_cancel step before it is journaled: asset class, seq, hub time, its events, its record's detail.
_CancelledIn = tuple[AssetClass, int, int, CancelStepEvents, bytes]


def _halves(jobs: list[tuple[AssetClass, MatchingEngine, int]]) -> tuple[list, list]:
    """Split engines into two groups with about as many resting orders each (largest first, each
    to the lighter group)."""
    groups: tuple[list, list] = ([], [])
    load = [0, 0]
    for job in sorted(jobs, key=lambda job: -job[1].resting_count):
        lighter = 0 if load[0] <= load[1] else 1
        groups[lighter].append(job)
        load[lighter] += job[1].resting_count
    return groups


def _post_trade_json(fees: list[str], fixed: list[str]) -> bytes:
    """``canonical_json({"fees": [...], "fixed": [...]})`` from each element's canonical JSON."""
    return ('{"fees":[' + ",".join(fees) + '],"fixed":[' + ",".join(fixed) + "]}").encode()


_EXECUTION_REPORT = cpb.ExecutionReport
_SIDES = (int(Side.BUY), int(Side.SELL))
_IMMEDIATE = (int(TimeInForce.IOC), int(TimeInForce.FOK))


def _report(meta: OrderMeta, order_id: int, seq: int, ts: int, exec_type: int, price: int = 0,
            leaves_quantity: int = 0, **fields) -> cpb.ExecutionReport:
    # Field by field: a quarter cheaper than the keyword constructor (0.89 vs 1.20 us), and every
    # routed event builds one (a mass quote hundreds). Same message: no field has presence.
    r = _EXECUTION_REPORT()
    r.sequence = seq
    r.hub_time_ns = ts
    r.symbol = meta.symbol
    r.order_id = order_id
    if meta.client_order_id:
        r.client_order_id = meta.client_order_id
    r.account = meta.account
    r.exec_type = exec_type
    r.side = meta.side
    r.price = price
    r.leaves_quantity = leaves_quantity
    for name, value in fields.items():
        setattr(r, name, value)
    return r


def _sequence_of(report) -> int:
    return report.sequence


class _RiskCancelReport(tuple):
    """The execution report of a risk cancel, kept unbuilt in the execution history and built when
    read (``Hub.executions``): a kill writes thousands at once, and building each message costs
    about a microsecond. ``sequence`` is read like the message's field."""

    __slots__ = ()  # built as _RiskCancelReport((seq, meta, order_id, ts)): tuple's own constructor, no Python call

    @property
    def sequence(self) -> int:
        return self[0]

    def build(self) -> cpb.ExecutionReport:
        seq, meta, order_id, ts = self
        return _report(meta, order_id, seq, ts, cpb.EXEC_CANCELLED, price=meta.price, leaves_quantity=0,
                       cancel_reason=cpb.CANCEL_RISK)


class _Unburn:
    """Gives a client order id back when its order was refused before anything was recorded (the
    hub could not journal: HubUnavailableError). Burned at arrival so a duplicate arriving while
    the order is held is refused; but an id no record names must not stay burned live, or live
    and a restart's replay would disagree about it. A commit that fails later keeps it burned."""

    __slots__ = ("hub", "participant_id", "client_order_id")

    def __init__(self, hub: Hub, participant_id: str, client_order_id: str) -> None:
        self.hub, self.participant_id, self.client_order_id = hub, participant_id, client_order_id

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is not None and issubclass(kind, HubUnavailableError):
            self.release()
        return False

    def release(self) -> None:
        if self.client_order_id:
            with self.hub._lock:
                self.hub._client_ids[self.participant_id].discard(self.client_order_id)

    def watch(self, future: Future) -> Future:
        """Release when ``future`` fails unrecorded (a batch whose own record the ledger refused)."""
        def done(f: Future) -> None:
            if not f.cancelled() and isinstance(f.exception(), HubUnavailableError):
                self.release()
        future.add_done_callback(done)
        return future


class Hub:
    """Engines, sequencer, order registry and fan-out: everything behind the gRPC services."""

    def __init__(self, config: HubConfig, journal: Journal | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.journal = journal if journal is not None else InMemoryJournal()
        self._clock = clock
        self._lock = threading.RLock()  # the sequencer
        self._seq = 0
        self._last_ts = 0  # the newest hub time sequenced (or replayed): hub time never goes back
        self.instruments: dict[int, Instrument] = {i.instrument_id: i for i in config.instruments}
        self._class_of_instrument = {i.instrument_id: i.asset_class for i in config.instruments}
        self.by_symbol: dict[str, Instrument] = {i.symbol: i for i in config.instruments}
        self.engines: dict[AssetClass, MatchingEngine] = {
            ac: create_engine(ac, insts, config.engine_implementation or None)
            for ac, insts in sorted(by_asset_class(config.instruments).items())
        }
        self.market_data = MarketDataHub({i.instrument_id: i.symbol for i in config.instruments})
        self._account_owner = {a: p.id for p in config.participants for a in p.accounts}
        self._orders: dict[int, OrderMeta] = {}
        self._orders_of: dict[str, set[int]] = defaultdict(set)
        self._client_ids: dict[str, set[str]] = defaultdict(set)
        self._quotes: dict[tuple[str, int, int], list[int]] = {}  # (participant, account, iid) -> live quote ids
        self._positions: dict[tuple[int, int], Position] = defaultdict(Position)
        self._history: dict[str, deque[cpb.ExecutionReport | _RiskCancelReport]] = defaultdict(
            lambda: deque(maxlen=config.limits.execution_history))
        self._drop_copies: dict[str, list[ReportQueue]] = defaultdict(list)
        self._sessions: dict[str, SessionState] = {}  # live streams
        self._open_sessions: dict[str, tuple[str, bool]] = {}  # journaled: id -> (participant, cancel on disc.)
        self._closing: set[str] = set()  # sessions their own close_session is closing now
        self._closes_refused = False  # a session close the ledger refused waits for close_sessions_left_open
        self._quote_buckets: dict[str, list[int]] = {}  # participant -> mass-quote message bucket (live only)
        self._halted_symbols: set[int] = set()
        self._halted_classes: set[AssetClass] = set()
        self._hub_halted = False
        self.accepting = True
        self.fees = FeeEngine(config.fee_schedules)
        self._class_of = {p.id: p.participant_class.value for p in config.participants}
        #: Participants that trade (the targets of kill switches and position limits).
        self.traders = frozenset(p.id for p in config.participants if p.role == Role.PARTICIPANT)
        self._register_fee_payers({p.id: p.participant_class.value for p in config.participants})
        self._fee_records: list[FeeRecord] = []
        self._fixed_charges: list[FixedFeeCharge] = []
        # seq -> canonical JSON of each fee and fixed charge of the command being routed
        self._post_trade: dict[int, tuple[list[str], list[str]]] = {}
        self._pending_deliveries: list[tuple[ReportQueue, cpb.ExecutionReport]] = []
        self.last_ticket = 0  # the newest journal ticket: streams send nothing newer before its commit
        self.risk = RiskEngine(config.risk, config.instruments)
        self._check_risk = self.risk.check_order_positional  # bound once: the pre-trade hot path
        breakers = config.risk.breakers
        self._latency = LatencyMonitor(breakers.latency_threshold_ns, breakers.latency_consecutive)  # live-only
        self._risk_events: list[RiskEvent] = []  # raised while routing the current command
        self._replaying = False  # recovery feeds the risk engine but never acts on its events
        self._risk_cancels: deque[int] = deque()  # order ids risk wants cancelled, not yet sequenced
        # Replay only: the orders the ledger's risk decisions named for cancelling and no risk_cancel
        # record took yet. Those still resting at the end are cancels a stop interrupted.
        self._replayed_cancels: dict[int, None] = {}
        # The ledger's rules version in force (``RULES_VERSION`` live; on replay, each CONFIG record's).
        self._rules = self.RULES_VERSION
        self._cancel_everything = False  # a hub-wide BLOCK switch: every resting order, not yet sequenced
        self._unsettled = UnsettledCancels()  # cancelled in the engines, hub state not yet settled
        self._risk_drainers = 0  # threads inside drain_risk_cancels carrying out those cancels
        # A kill empties the engines two at a time when they can run without the GIL and there is a
        # second core to run on.
        self._parallel_cancels = (len(self.engines) > 1 and (os.cpu_count() or 1) > 1
                                  and all(e.releases_gil for e in self.engines.values()))
        self.fairness = FairnessRules(config.fairness)
        self.fairness_seed = config.fairness.batch_seed or int.from_bytes(os.urandom(16), "little")
        self.scheduler = ReleaseScheduler(self._lock, self._clock, self.fairness_seed, self._journal_batch)
        self.recovery = None  # hub.recovery.RecoveryReport after a replay
        self.gc_policy: GcPolicy | None = None  # the serving process's (hub.server.run_server)
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpointer = threading.Event()

    # -- SEQUENCING ----------------------------------------------------------------------------

    @property
    def last_sequence(self) -> int:
        return self._seq

    def _next(self, count: int, refusable: bool = True) -> tuple[int, int]:
        """Sequence numbers and hub time for ``count`` records. Refuses (changing nothing) while the
        hub cannot journal; ``refusable=False`` for a record of a change already made (the journal
        queues it whatever its storage does, and the hub refuses the next command instead)."""
        if refusable:
            if not self.accepting:
                raise HubUnavailableError("hub is not accepting commands")
            if not self.journal.available:
                why = getattr(self.journal, "error", None) or "the ledger is closed"  # no error: it is stopping
                raise HubUnavailableError(f"ledger unavailable, refusing new commands: {why}")
        first = self._seq + 1
        self._seq += count
        return first, self._hub_time()

    def _hub_time(self) -> int:
        """The clock, never behind a hub time already given out (sequencer held): a wall clock
        stepped back (NTP) would otherwise take the fee engine back a month mid-command, and hand
        out times that replay must see in order."""
        now = self._clock()
        if now < self._last_ts:
            return self._last_ts
        self._last_ts = now
        return now

    def _hub_time_now(self) -> int:
        """``_hub_time`` for a time written into a record's detail (taken before its sequencing)."""
        with self._lock:
            return self._hub_time()

    def clock(self) -> int:
        return self._clock()

    def start_checkpointer(self, period_s: float = 0.05) -> None:
        """Close ledger blocks on time even when no command arrives to trigger it."""
        def run() -> None:
            while not self._stop_checkpointer.wait(period_s):
                try:
                    self.risk_tick()
                    self.maybe_checkpoint()
                    self.close_sessions_left_open()
                except Exception:  # noqa: BLE001 - a failing ledger is reported by its own status
                    pass
        self._stop_checkpointer.clear()
        self._checkpointer = threading.Thread(target=run, name="checkpointer", daemon=True)
        self._checkpointer.start()

    def stop_checkpointer(self) -> None:
        self._stop_checkpointer.set()
        if self._checkpointer is not None:
            self._checkpointer.join(5)

    def state_digest_bytes(self) -> bytes:
        """SHA-256 over every engine's digest (asset-class order) and the fee state: what
        checkpoints commit to, and what recovery must rebuild exactly."""
        h = hashlib.sha256()
        for engine in self.engines.values():
            h.update(engine.digest())
        h.update(self.fees.state_digest())
        h.update(self.risk.state_digest())
        return h.digest()

    def maybe_checkpoint(self) -> None:
        """Close a ledger block when one is due (called with the sequencer held, or takes it).

        Not while risk cancels are pending: the state digest reads every resting order (about 7 ms
        with 10,000 of them), and whichever command came along would hold the sequencer for it in
        the middle of a kill. The settle step that finishes the kill takes the checkpoint instead."""
        with self._lock:
            if self._risk_cancels or self._unsettled or self._cancel_everything:
                return
            if self.journal.checkpoint_due():
                self.journal.checkpoint(self.state_digest_bytes(), self._clock())

    def checkpoint_now(self, ts: int | None = None) -> None:
        """Close a ledger block now (after recovery, at a clean stop). Under the sequencer: a command
        still running in another thread would otherwise change the state while it is digested (a
        dict changing size mid-iteration), or append records after the block it closes."""
        with self._lock:
            self.journal.checkpoint(self.state_digest_bytes(), self._clock() if ts is None else ts)

    def _annotations(self, commands: list[Command]) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        metas = [self._orders.get(c.order_id) if type(c) is NewOrder else None for c in commands]
        return (tuple(m.client_order_id if m else "" for m in metas),
                tuple(bool(m and m.is_quote) for m in metas))

    def _run_engine(self, asset_class: AssetClass, source: str, session_id: str, caller: str,
                    count: int, build: Callable[[int, int], list[Command]],
                    before: Callable[[list[Command]], None] | None = None, arrival_ns: int = 0,
                    wait: bool = True) -> Outcome:
        """Sequence ``count`` commands for one engine, journal them and route their events.

        ``build(seq_first, ts)`` creates the commands with consecutive sequence numbers;
        ``before`` registers order metadata the routing needs; ``arrival_ns`` is when the
        gateway received the request (the sequencing time is the release time). ``wait=False``
        returns before the journal commit (``outcome.ticket``): for callers that hold the
        sequencer, which must then wait with ``_settle`` after releasing it."""
        arrival = arrival_ns or self._clock()
        with self._lock:
            first, ts = self._next(count)
            commands = build(first, ts)
            if before is not None:
                before(commands)
            client_ids, quote_flags = self._annotations(commands)
            packed = encode_commands(commands)
            evbuf = self.engines[asset_class].process_packed(packed)
            events = decode_events(evbuf)
            outcome = Outcome(first, ts, events)
            self._post_trade = {}
            self._route(events, ts, session_id, caller, outcome)  # fees are priced here
            ticket = self.journal.append(JournalEntry(
                first, first + len(commands) - 1, ts, EntryKind.ENGINE, source, int(asset_class),
                packed, evbuf, session=session_id, arrival_ns=arrival, client_order_ids=client_ids,
                quote_flags=quote_flags, post_trade=self._post_trade_records(commands)))
            self.last_ticket = ticket
            self._flush_deliveries(ticket)
            self.market_data.publish(first, ts, events, ticket)
            self.maybe_checkpoint()
            if self._risk_events:
                raised, self._risk_events = self._risk_events, []
                self._act_on_risk(raised)
        outcome.ticket = ticket
        if wait:
            self.journal.wait_committed(ticket)
        return outcome

    def _settle(self, result: tuple[Outcome | None, int, str], settle: bool = True) -> tuple[Outcome | None, int, str]:
        """Wait, without the sequencer, until the command of a ``wait=False`` run is committed.
        ``settle=False`` leaves the wait to the caller (a pipelined session waits once per batch
        of replies, with ``ticket_of(result)``). A refusal's reject record is waited for the same way."""
        ticket = ticket_of(result) if settle else 0
        if ticket:
            self.journal.wait_committed(ticket)
        return result

    # -- RISK ------------------------------------------------------------------------------------

    def _risk_raised(self, events: list[RiskEvent]) -> None:
        if events and not self._replaying:
            self._risk_events.extend(events)

    def _enter_risk(self, cmd: Command, meta: OrderMeta | None, session_id: str = "") -> None:
        """Tell the risk engine a command was sequenced (live in ``before``, and on replay).
        Commands the engine refuses on their own fields change no risk state (no rate tokens):
        malformed input leaves the state digest as it was. ``session_id``: the session the command
        came in on (a replace's rate tokens are that session's)."""
        inst = self.instruments.get(cmd.instrument_id)
        if inst is None:
            return
        if type(cmd) is NewOrder and meta is not None:
            if validation.check_new_order(cmd, inst, cmd.order_id - 1) is not None:
                return
            self.risk.on_order_entered(cmd.ts, meta.participant_id, meta.session_id, cmd.order_id, cmd.instrument_id,
                                       cmd.side, cmd.price, cmd.quantity, cmd.time_in_force,
                                       throttled=not meta.is_quote)
        elif type(cmd) is Replace:
            owner = self._orders.get(cmd.order_id)
            if owner is not None and validation.check_replace(cmd, inst) is None:
                # Charged to the session it was checked against, the caller's. Ledger rules 1 (before
                # CONFIG records said otherwise) charged the order's own session: replayed as written.
                charged = session_id if self._rules >= 2 else owner.session_id
                self.risk.on_replace_entered(cmd.ts, owner.participant_id, charged, cmd.order_id)

    def _act_on_risk(self, events: list[RiskEvent], journal: bool = True) -> None:
        """Journal what risk decided (audit; replay regenerates it) and carry it out now:
        cancel the orders it names, publish pauses and resumes of instruments."""
        if journal:  # the decision is made: recorded whatever the storage does now, and carried out
            self._record_uncommitted(EntryKind.ADMIN, "risk", {"action": "risk_events",
                                                               "events": [e.record() for e in events]},
                                     refusable=False)
        for ev in events:
            if isinstance(ev, CancelOrders):
                if ev.scope == Scope.HUB and self.risk.kill_mode(Scope.HUB) >= KillMode.BLOCK:
                    # Every resting order is in scope and none can enter: the engines drop them all
                    # natively, and the risk engine lists none (RiskEngine.kill(list_hub_orders=False)):
                    # listing and converting 10,000 ids in Python took about 0.6 ms, before anyone
                    # arriving meanwhile could be refused. The records still list every one.
                    self._cancel_everything = True
                else:
                    self._risk_cancels.extend(ev.order_ids)  # carried out by drain_risk_cancels, in chunks
            elif isinstance(ev, InstrumentPaused | InstrumentResumed):
                self.market_data.publish_status(ev.instrument_id, self._seq, ev.ts, isinstance(ev, InstrumentPaused),
                                                self.last_ticket)  # after the record that decided it

    def drain_risk_cancels(self, chunk: int | None = None, wait: bool = True) -> int:
        """Carry out the cancels risk asked for, letting go of the sequencer between sequenced steps:
        other commands wait behind one step (a few milliseconds), never behind a whole
        10,000-order kill. Orders in a switch's scope are already refused (the switch is set by its
        own record, before any cancel).

        Two phases (see ``hub.risk_cancels``): ``risk_cancel`` steps of ``RISK_CANCEL_STEP`` orders
        take them out of the engines and journal that, the last one leading the ledger commit, so
        every cancel is on record before the slower ``risk_settle`` steps of ``chunk`` orders (risk
        exposure, registry, execution reports).

        ``wait=False`` (a bystander: an order's own call after its ack is built) returns at once
        when another thread is already draining, so an order arriving during a kill is answered
        after one step, not after the whole kill; the draining thread sees everything queued
        until it finds both queues empty. ``wait=True`` (the operator's kill, shutdown, recovery)
        returns only when nothing is left, helping whoever drains, and every record it wrote is
        committed."""
        chunk = chunk or self.RISK_CANCEL_CHUNK
        if not self._risk_cancels and not self._unsettled and not self._cancel_everything:
            return 0  # every order's own call: nothing asked for (a lock-free read, then checked under the lock)
        done = 0
        draining = False
        try:
            while True:
                # A real pause, first of all: an order the trigger found waiting takes the sequencer
                # before a step does. sleep(0) only offers the GIL, and this thread usually takes the
                # sequencer back before a woken waiter runs.
                time.sleep(self.RISK_CANCEL_PAUSE_S)
                with self._lock:
                    if not self._risk_cancels and not self._unsettled and not self._cancel_everything:
                        last = self.last_ticket
                        break
                    if not draining:
                        if self._risk_drainers and not wait:
                            return done
                        self._risk_drainers += 1
                        draining = True
                    try:
                        done += self._risk_cancel_step(chunk)
                    except HubUnavailableError:
                        if wait:
                            raise
                        return done  # still queued: the next command's drain carries them out
        finally:
            if draining:
                with self._lock:
                    self._risk_drainers -= 1
        if wait:  # the operator's kill, shutdown, recovery: answered once all of it is on record
            self.journal.wait_committed(last)
        return done

    def _risk_cancel_step(self, chunk: int) -> int:
        """One step of ``drain_risk_cancels`` (sequencer held). A hub that cannot journal refuses it
        with what it would take still queued: dropped, those cancels would never happen (the
        killed participant's orders resting and trading on)."""
        self._next(0)
        if self._cancel_everything:
            self._cancel_everything = False
            try:
                return self._cancel_for_risk(None)
            except HubUnavailableError:
                self._cancel_everything = True  # the engines skip what a first part cancelled
                raise
        if self._risk_cancels:
            pending = self._risk_cancels
            if len(pending) <= self.RISK_CANCEL_STEP:  # the usual kill: one step takes all
                step = list(pending)
                pending.clear()
            else:
                step = [pending.popleft() for _ in range(self.RISK_CANCEL_STEP)]
            try:
                return self._cancel_for_risk(step)
            except HubUnavailableError:
                pending.extendleft(reversed(step))  # the engines skip ids a first part cancelled
                raise
        self._settle_risk_cancels(chunk)
        return 0

    #: The ledger's rules version (CONFIG records carry it; replay follows each record's):
    #: 2 charges a replace's session rate token to the session it came in on (1: the order's own).
    RULES_VERSION = 2

    #: Orders per ``risk_cancel`` step: native engine work, one record per asset class and one
    #: commit, about 0.3-0.4 us an order here. A 10,000-order kill is one step of about 4 ms: it is on
    #: record sooner than in five steps of 2,048 (each with its own pause and commit), and the orders
    #: it delays meanwhile are only those outside its scope (the switch refuses the others at arrival).
    RISK_CANCEL_STEP = 16384
    #: Orders per ``risk_settle`` step. Larger steps mean fewer records but a longer hold of the
    #: sequencer: 1,024 hold it about 1.5 ms here (python -m hub.risk_bench).
    RISK_CANCEL_CHUNK = 1024
    #: Pause before each step (see drain_risk_cancels): 100 us lets a waiting thread in.
    RISK_CANCEL_PAUSE_S = 0.0001

    def _cancel_for_risk(self, order_ids: list[int] | None) -> int:
        """A ``risk_cancel`` step (``_cancel_in_engines``) with the journal's background work held
        back: the kill's cancels are on record first, the ledger's database inserts after."""
        with self.journal.urgent():
            return self._cancel_in_engines(order_ids)

    def _cancel_in_engines(self, order_ids: list[int] | None) -> int:
        """Cancel live orders the risk engine named (every resting order: ``None``) with the
        sequencer held: per asset class with any, one sequence number, one engine call
        (``cancel_orders_columns``, ``cancel_all_columns``) and one compact ADMIN record
        ``risk_cancel`` that lists the cancelled orders and their remaining quantities (packed
        int64, ``orders_le64`` / ``remaining_le64``) and the SHA-256 of the step's events in
        columns (``CancelStepEvents.digest``; replay redoes the step and must reproduce it). The
        orders join the unsettled queue for ``risk_settle`` steps (``settle: "deferred"``).

        The step commits its records in this thread before decoding and publishing the book changes,
        so the cancels are on record as early as possible (the market data waits for that commit
        anyway) and the ledger's writer thread never sweeps them up in the middle of the next step,
        where the two threads would trade the GIL (up to its 5 ms switch interval) on every
        commit."""
        packed = b"" if order_ids is None else array("q", order_ids).tobytes()  # engines skip ids not resting there
        self._next(0)  # refuses (changing nothing) when the hub cannot journal
        with contextlib.suppress(JournalUnavailableError):
            # Commit what others queued (the kill's own record, an order refused at arrival) before
            # the engine calls: left queued, it would age past the writer thread's sweep in the middle
            # of the step, and the two threads would trade the GIL. Waiting for a write in flight
            # (another thread's) is cheaper than letting it finish in the middle of the step too.
            self.journal.wait_committed(self.last_ticket)
        cancelled_in = (self._cancel_all_in_parallel() if order_ids is None and self._parallel_cancels
                        else self._cancel_one_engine_after_another(packed if order_ids is not None else None))
        # Journaled only now, all at once and committed at once by this thread: records queued
        # during the engine calls would be old enough for the ledger's writer thread to sweep, and
        # it would fight this thread for the GIL in the middle of the step.
        steps: list[tuple[int, int, CancelStepEvents, int]] = []
        for _ac, seq, ts, cols, detail in cancelled_in:
            ticket = self.journal.append(JournalEntry(seq, seq, ts, EntryKind.ADMIN, "risk", 0, detail=detail))
            self.last_ticket = ticket
            self._unsettled.add(seq, ts, array("q", cols.order_ids).tolist())
            steps.append((seq, ts, cols, ticket))
        if steps:
            with contextlib.suppress(JournalUnavailableError):  # stays queued: storage recovery writes it
                self.journal.wait_committed(steps[-1][3])
        if order_ids is None:  # what the engines kept back from the kill, freed now it is on record
            self._free_cancelled([self.engines[ac] for ac, *_ in cancelled_in])
        done = 0
        for seq, ts, cols, ticket in steps:
            others = decode_events(cols.others)
            self._feed_tops(ts, others)
            self.market_data.publish(seq, ts, others, ticket)
            done += cols.cancelled
        # No ledger checkpoint here even when one is due: its state digest (every resting order,
        # milliseconds with thousands of them) would hold back the rest of the cancels. The
        # settle steps that follow take it.
        if self._risk_events:  # a LULD transition on the emptied books
            raised, self._risk_events = self._risk_events, []
            self._act_on_risk(raised)
        return done

    def _settle_risk_cancels(self, limit: int) -> int:
        """A ``risk_settle`` step (sequencer held): settle the ``limit`` oldest unsettled risk cancels.
        Its record names how many and the last order, so a replay settles the same ones at the same
        point among the other commands."""
        if not self._unsettled:
            return 0
        seq, ts = self._next(1)  # refuses before anything is taken
        steps = self._unsettled.take(limit)
        count = sum(len(ids) for _, _, ids in steps)
        detail = {"action": "risk_settle", "orders": count, "last_order": steps[-1][2][-1]}
        ticket = self.journal.append(JournalEntry(seq, seq, ts, EntryKind.ADMIN, "risk", 0,
                                                  detail=canonical_json(detail)))
        self.last_ticket = ticket
        for _cancel_seq, cancel_ts, ids in steps:
            self._settle_cancelled(seq, cancel_ts, ids)
        self._flush_deliveries(ticket)
        self.maybe_checkpoint()
        return count

    def _feed_tops(self, ts: int, others: list[Event]) -> None:
        """The new tops of the books a risk cancel changed, to the LULD monitor."""
        for ev in others:
            if type(ev) is TopOfBook:
                self._risk_raised(self.risk.on_top_of_book(ts, ev.instrument_id, ev.bid_price, ev.ask_price))

    def _cancel_one_engine_after_another(self, packed: bytes | None) -> list[_CancelledIn]:
        """The ``risk_cancel`` steps of ``_cancel_in_engines``: each engine with any of the orders
        (every resting order: ``packed`` None) in asset-class order, one sequence number each."""
        cancelled_in: list[_CancelledIn] = []
        for ac, engine in sorted(self.engines.items()):
            seq = self._seq + 1
            cols = CancelStepEvents(*(engine.cancel_all_columns(seq) if packed is None
                                      else engine.cancel_orders_columns(seq, packed)))
            if cols.events:
                self._seq = seq  # the engine has changed: no refusal from here on
                cancelled_in.append((ac, seq, self._hub_time(), cols, risk_cancel_detail(int(ac), cols)))
        return cancelled_in

    def _cancel_all_in_parallel(self) -> list[_CancelledIn]:
        """``_cancel_one_engine_after_another(None)`` on two cores: the engines with resting orders
        get their sequence numbers in asset-class order first, then this thread and the helper
        thread each empty about half of the orders (engines that let go of the GIL) and write
        their records' details; the times are read afterwards, in sequence order, so the records
        are exactly what the one-after-another path writes on the same clock."""
        busy = [(ac, engine) for ac, engine in sorted(self.engines.items()) if engine.resting_count]
        if not busy:
            return []
        first = self._seq + 1
        jobs = [(ac, engine, first + i) for i, (ac, engine) in enumerate(busy)]
        self._seq = first + len(jobs) - 1  # the engines change from here on: no refusal
        mine, theirs = _halves(jobs)

        def empty(part: list[tuple[AssetClass, MatchingEngine, int]]) -> list[tuple[AssetClass, int, CancelStepEvents, bytes]]:
            out = []
            for ac, engine, seq in part:
                cols = CancelStepEvents(*engine.cancel_all_columns(seq))
                out.append((ac, seq, cols, risk_cancel_detail(int(ac), cols)))
            return out

        # One busy engine: nothing to hand over (a wake-up of the helper would only cost time).
        here, there = (shared_helper().beside(lambda: empty(mine), lambda: empty(theirs)) if theirs
                       else (empty(mine), []))
        return [(ac, seq, self._hub_time(), cols, detail)
                for ac, seq, cols, detail in sorted(here + there, key=lambda step: step[1])]

    def _free_cancelled(self, engines: list[MatchingEngine]) -> None:
        """``free_cancelled`` of the engines: on the helper thread (without the GIL, beside this one)
        when the engines run there, here otherwise."""
        if self._parallel_cancels:
            for engine in engines:
                shared_helper().submit(engine.free_cancelled)
        else:
            for engine in engines:
                engine.free_cancelled()

    def _settle_cancelled(self, seq: int, ts: int, cancelled: list[int]) -> None:
        """Settle orders a ``cancel_orders`` step (at hub time ``ts``) cancelled, live and on replay,
        in bulk: release their risk exposure at once, drop them from the registry, a CANCELLED
        report (reason RISK) to each owner. History keeps the reports unbuilt until read; only live
        streams (sessions, drop copies) get built messages.

        ``seq`` is the step that settles them (the ``risk_settle`` record, or the cancel step that
        settled at once), and the reports carry it: they join each participant's history and
        streams now, after what other commands reported meanwhile, so a client paging its reports
        by sequence (``GetExecutions(after_sequence)``) never steps over them."""
        self.risk.on_orders_done(ts, cancelled)
        orders, orders_of, history = self._orders, self._orders_of, self._history
        drops, sessions, pending = self._drop_copies, self._sessions, self._pending_deliveries
        lazy = _RiskCancelReport
        for oid in cancelled:
            meta = orders.pop(oid)
            pid = meta.participant_id
            orders_of[pid].discard(oid)
            entry = lazy((seq, meta, oid, ts))
            history[pid].append(entry)
            streams = drops.get(pid)
            session = sessions.get(meta.session_id) if meta.session_id else None
            if streams or session is not None:
                report = entry.build()
                for q in streams or ():
                    pending.append((q, report))
                if session is not None:
                    pending.append((session.outbox, report))

    @contextlib.contextmanager
    def _replay_scope(self) -> Iterator[None]:
        """Recovery re-runs a record (sequencer held): the risk engine is fed but its events are not
        acted on, and nothing is delivered to live streams."""
        self._replaying = True
        try:
            yield
        finally:
            self._replaying = False
            self._risk_events = []
            self._pending_deliveries = []

    def replay_risk_cancel(self, seq: int, ts: int, detail: dict) -> tuple[bytes, CancelStepEvents]:
        """Recovery: redo a journaled ``risk_cancel`` step at its sequence number and hub time; returns
        the engine events it produced now in columns, and whole for a record of the earlier format
        (b"" otherwise; recovery compares them with the record).
        A deferred step leaves its orders unsettled, as live; a step of the earlier format (no
        ``settle``) settled them at once."""
        with self._lock:
            self._seq = max(self._seq, seq)
            self._last_ts = max(self._last_ts, ts)
            with self._replay_scope():
                engine = self.engines[AssetClass(detail["asset_class"])]
                packed = array("q", risk_cancel_orders(detail)).tobytes()
                if "events_sha256" in detail:  # the earlier format hashed the whole buffer
                    evbuf = engine.cancel_orders(seq, packed)
                    cols = split_cancel_events(evbuf)
                else:
                    evbuf = b""
                    cols = CancelStepEvents(*engine.cancel_orders_columns(seq, packed))
                cancelled = array("q", cols.order_ids).tolist()
                for order_id in cancelled:
                    self._replayed_cancels.pop(order_id, None)
                if detail.get("settle") == "deferred":
                    self._unsettled.add(seq, ts, cancelled)
                else:
                    self._settle_cancelled(seq, ts, cancelled)
                self._feed_tops(ts, decode_events(cols.others))
        return evbuf, cols

    def replay_risk_settle(self, seq: int, detail: dict, ts: int = 0) -> list[int]:
        """Recovery: redo a journaled ``risk_settle`` step; returns the orders it settled now
        (recovery checks their count and last one against the record)."""
        with self._lock:
            self._seq = max(self._seq, seq)
            self._last_ts = max(self._last_ts, ts)
            steps = self._unsettled.take(detail["orders"])
            with self._replay_scope():
                for _cancel_seq, cancel_ts, ids in steps:
                    self._settle_cancelled(seq, cancel_ts, ids)
        return [oid for _, _, ids in steps for oid in ids]

    @property
    def unsettled_risk_cancels(self) -> int:
        """Orders cancelled in an engine by risk whose hub state is not yet settled."""
        return len(self._unsettled)

    def resume_interrupted_kills(self) -> int:
        """Recovery, once the ledger is replayed: cancel the orders a BLOCK switch's kill had not
        yet cancelled when the hub stopped (its record committed, its risk_cancel steps not). A
        journaled ``risk_resume_kill`` record asks for them, as the switch's own record did."""
        with self._lock:
            pending = len(self.risk.orders_under_block())
        if not pending:
            return 0
        self._record(EntryKind.ADMIN, "risk", {"action": "risk_resume_kill", "at": self._hub_time_now(), "orders": pending})
        self.drain_risk_cancels()
        return pending

    def risk_tick(self) -> None:
        """Time-driven risk transitions (LULD pause/resume, margin grace, day roll)."""
        ticket = 0
        with self._lock:
            if not self.accepting:
                return
            self._next(0)  # a hub that cannot journal refuses before the tick changes anything
            at = self._hub_time()
            raised = self.risk.tick(at)
            if raised:  # a tick that changed nothing is not journaled (and changes nothing on replay)
                # It changed the state: recorded whatever the storage does now (a refusal here would
                # leave a state the ledger cannot rebuild), then carried out.
                _, _, ticket = self._record_uncommitted(EntryKind.ADMIN, "risk",
                                                        {"action": "risk_tick", "at": at, "replayed": True},
                                                        refusable=False)
                self._act_on_risk(raised)
        if ticket:
            self.journal.wait_committed(ticket)
        self.drain_risk_cancels(wait=False)

    def observe_ack_latency(self, asset_class: AssetClass, latency_ns: int) -> None:
        """Order-to-ack latency of one order; three in a row above the threshold halt the class.

        The (live-only) monitor decides; the halt takes effect only as a journaled input, applied
        from its record like an operator kill. A hub that cannot journal (stopping, ledger down)
        therefore never holds a halt its ledger lacks: that state would no longer match what the
        checkpoints sign, and the next start would refuse to recover."""
        with self._lock:
            if not self._latency.observe(int(asset_class), latency_ns):
                return
            target = AssetClass(asset_class).name
            if self.risk.kill_mode(Scope.ASSET_CLASS, target) >= KillMode.BLOCK:
                return  # already halted: nothing new to journal
            kill = KillSwitchActivated(ts=self._hub_time_now(), scope=Scope.ASSET_CLASS, target=target, mode=KillMode.BLOCK,
                                       reason=KillReason.LATENCY, operator="latency-monitor")
            try:  # applied from its record, at append; its commit comes with the cancel steps after it
                self._record_uncommitted(EntryKind.ADMIN, "risk", {"action": "risk_kill_record", "record": kill.record(),
                                                                   "replayed": True})
            except HubUnavailableError:
                return  # not journaled, so not applied; the order's own ack is not the place to fail
        self.drain_risk_cancels(wait=False)

    def kill(self, who: Identity, scope: int, target: str, mode: int = KillMode.BLOCK, note: str = "") -> int:
        """Operator kill switch: journaled, effective for the very next order, cancels in scope.

        The cancels start without waiting for the switch's own record to commit: the first cancel
        step commits it with whatever else is queued before it touches an engine (the ledger
        commits in order), and the kill returns once all of it is committed. The switch refuses
        orders from the moment its record is sequenced. A ledger checkpoint due then waits for the
        settle steps: its state digest reads every resting order (about 7 ms with 10,000 of them)
        and would hold back the cancels."""
        seq, _, ticket = self._record_uncommitted(EntryKind.ADMIN, who.participant_id, {
            "action": "risk_kill", "at": self._hub_time_now(), "scope": int(scope), "target": target, "mode": int(mode),
            "operator": who.participant_id, "note": note}, checkpoint=False)
        self.drain_risk_cancels()
        self.journal.wait_committed(ticket)
        return seq

    def lift(self, who: Identity, scope: int, target: str) -> int:
        seq, _ = self._record(EntryKind.ADMIN, who.participant_id, {
            "action": "risk_lift", "at": self._hub_time_now(), "scope": int(scope), "target": target,
            "operator": who.participant_id})
        return seq

    def set_position_limit(self, who: Identity, participant: str, instrument_id: int, base: int | None) -> int:
        seq, _ = self._record(EntryKind.ADMIN, who.participant_id, {
            "action": "risk_limit", "at": self._hub_time_now(), "participant": participant, "instrument_id": instrument_id,
            "base": base})
        return seq

    def resting_count(self) -> int:
        with self._lock:
            return len(self._orders)

    def risk_view(self, who: Identity):
        with self._lock:
            return self.risk.participant_view(self._clock(), who.participant_id)

    def _risk_check_new(self, who: Identity, session_id: str, inst: Instrument, spec: OrderSpec) -> RiskReject | None:
        """Pre-trade risk of a new order as the gateway decoded it, at sequencing time. Orders the
        engine will refuse on their own fields skip it (the engine's reject is the answer)."""
        if order_fields_refused(inst, spec.side, spec.order_type, spec.time_in_force, spec.price, spec.quantity,
                                spec.display_quantity, int(spec.post_only)):
            return None
        return self._check_risk(self._hub_time_now(), who.participant_id, session_id, inst.instrument_id, spec.side,
                                spec.order_type, spec.price, spec.quantity)

    def _kill_switch_refuses(self, who: Identity, inst: Instrument, spec: OrderSpec) -> RiskReject | None:
        """KILL_SWITCH for a new order a BLOCK switch covers, decided at arrival without the
        sequencer: the same answer ``_risk_check_new`` gives at sequencing time (it is its first
        check, and it changes no state), only sooner. Orders the engine refuses on their own fields
        keep the engine's reject, as there."""
        if not self.risk.blocks(who.participant_id, inst.instrument_id):
            return None
        if order_fields_refused(inst, spec.side, spec.order_type, spec.time_in_force, spec.price, spec.quantity,
                                spec.display_quantity, int(spec.post_only)):
            return None
        return RiskReject.KILL_SWITCH

    def _refuse_for_risk(self, who: Identity, what: str, refused: RiskReject, fields: dict,
                         arrival: int) -> EntryResult:
        """Journal a risk reject like any gateway reject and answer it (the caller waits for it)."""
        return self._refuse(who, what, refused, f"risk: {refused.name}", fields, arrival, answer=refused.name)

    def _post_trade_records(self, commands: list[Command]) -> tuple[bytes, ...]:
        """Per command, the canonical JSON of the fees its trades were charged ("" when none):
        ``{"fees": [...], "fixed": [...]}``, assembled from each record's own canonical JSON, which
        is what canonical_json writes for the whole."""
        post = self._post_trade
        if not post:
            return ()
        return tuple(_post_trade_json(*post[c.seq]) if c.seq in post else b"" for c in commands)

    def replay_engine_commands(self, asset_class: AssetClass, packed: bytes, metas: list[OrderMeta | None],
                               session_id: str = "") -> tuple[bytes, tuple[bytes, ...]]:
        """Recovery: re-run journaled commands (no journaling, no fan-out); returns their events and,
        per command, the fee record the live path journaled (b"" where none).

        ``metas`` gives, per command, the registry entry a new order had when it was live."""
        commands = decode_commands(packed)
        with self._lock:
            with self._replay_scope():
                for cmd, meta in zip(commands, metas, strict=True):
                    if meta is not None:
                        self._register(cmd.order_id, meta)
                        if meta.client_order_id:
                            self._client_ids[meta.participant_id].add(meta.client_order_id)
                    self._enter_risk(cmd, meta, session_id)
                evbuf = self.engines[asset_class].process_packed(packed)
                events = decode_events(evbuf)
                scratch = Outcome(commands[0].seq, commands[0].ts, events)
                self._post_trade = {}
                self._route(events, commands[0].ts, "", "", scratch)
                fees = self._post_trade_records(commands) or (b"",) * len(commands)
            for cmd, meta in zip(commands, metas, strict=True):
                if meta is not None and meta.is_quote and cmd.order_id in self._orders:
                    key = (meta.participant_id, meta.account, meta.instrument_id)
                    self._quotes[key] = [q for q in self._quotes.get(key, []) if q in self._orders] + [cmd.order_id]
            self._seq = max(self._seq, commands[-1].seq)
            self._last_ts = max(self._last_ts, commands[-1].ts)
        return evbuf, fees

    def replay_record(self, seq: int, kind: EntryKind, detail: dict, ts: int = 0, source: str = "") -> None:
        """Recovery: apply a non-engine record (its sequence number is consumed either way)."""
        with self._lock:
            self._seq = max(self._seq, seq)
            self._last_ts = max(self._last_ts, ts)
            if kind == EntryKind.GATEWAY_REJECT and detail.get("burns_client_order_id") and detail["client_order_id"]:
                self._client_ids[source].add(detail["client_order_id"])  # refused, but the id was used
            if kind == EntryKind.CONFIG:
                self._asked_to_cancel(self._apply_config(detail, seq, ts))  # acted on live, journaled then
            if kind == EntryKind.ADMIN:
                self._replaying = True
                try:
                    self._asked_to_cancel(self._apply_admin(detail | {"seq": seq}))
                finally:
                    self._replaying = False
                if detail.get("action") == "risk_events":  # what routing raised live, as it was acted on
                    for event in detail.get("events", ()):
                        if event.get("type") == CancelOrders.kind:
                            self._replayed_cancels.update(dict.fromkeys(event["order_ids"]))

    def _asked_to_cancel(self, events: list[RiskEvent]) -> None:
        for event in events:
            if isinstance(event, CancelOrders):
                self._replayed_cancels.update(dict.fromkeys(event.order_ids))

    def resume_interrupted_risk_cancels(self) -> int:
        """Recovery, once the ledger is replayed: carry out the cancels risk decided (a kill switch,
        REDUCE_ONLY ones included, a daily-loss breach, a margin call's reduce-only) that a stop
        interrupted: orders a decision on record named, with no cancel on record, still resting.
        (BLOCK switches are resumed before, by ``resume_interrupted_kills``; a REDUCE_ONLY switch
        admits reducing orders afterwards, which no decision named and which stay.) A journaled
        ``risk_resume_cancels`` record says how many; the cancels are ordinary risk_cancel steps."""
        with self._lock:
            pending = [order_id for order_id in sorted(self._replayed_cancels) if order_id in self._orders]
            self._replayed_cancels = {}
        if not pending:
            return 0
        self._record(EntryKind.ADMIN, "risk", {"action": "risk_resume_cancels", "at": self._hub_time_now(),
                                               "orders": len(pending)})
        with self._lock:
            self._risk_cancels.extend(pending)
        self.drain_risk_cancels()
        return len(pending)

    def _record(self, kind: EntryKind, source: str, detail: dict, session_id: str = "",
                arrival_ns: int = 0) -> tuple[int, int]:
        """Sequence and journal something that is not an engine command; returns once committed."""
        seq, ts, ticket = self._record_uncommitted(kind, source, detail, session_id, arrival_ns)
        self.journal.wait_committed(ticket)
        return seq, ts

    def _record_uncommitted(self, kind: EntryKind, source: str, detail: dict, session_id: str = "",
                            arrival_ns: int = 0, checkpoint: bool = True,
                            refusable: bool = True) -> tuple[int, int, int]:
        """``_record`` without the wait: (seq, hub time, journal ticket); the caller waits.
        ``checkpoint=False`` leaves a due ledger checkpoint to a later command (see ``kill``)."""
        arrival = arrival_ns or self._clock()
        with self._lock:
            seq, ts = self._next(1, refusable)
            ticket = self.journal.append(JournalEntry(
                seq, seq, ts, kind, source, 0, detail=canonical_json(detail), session=session_id,
                arrival_ns=arrival))
            self.last_ticket = ticket
            if kind == EntryKind.ADMIN:
                raised = self._apply_admin(detail | {"seq": seq})
                if raised:
                    self._act_on_risk(raised, journal=False)  # the input itself is the record
            if checkpoint:
                self.maybe_checkpoint()
        return seq, ts, ticket

    def _journal_batch(self, asset_class: AssetClass, batch, permutation: list[int]) -> None:
        """Journal a released batch's seed and shuffle just before its commands, for audit. Not
        waited for under the sequencer: the journal commits in order, so each command's own commit
        (or reject's) that its caller waits for covers this record too. ``cancels`` and ``others``
        count the batch's elements: an order, cancel or replace (one command or its reject), or a
        mass quote's part for the asset class (its reject records, then one engine step of its
        cancels and new quotes, all with the message's arrival time)."""
        self._record_uncommitted(EntryKind.ADMIN, "hub", {
            "action": "batch", "asset_class": int(asset_class), "batch": batch.number, "seed": str(batch.seed),
            "window_ns": batch.window_ns, "cancels": len(batch.cancels), "others": len(batch.others),
            "permutation": permutation})

    def record_config(self, detail: bytes) -> int:
        """Journal the configuration in force (at start, when it differs from the last one). Its
        participants are the fee payers from here on, and its risk configuration the one the risk
        engine runs with, in the ledger's order: a replay applies both at this record
        (``replay_record``), so a participant added or removed, or a risk limit changed, at a
        restart takes effect at the same point live and on replay."""
        raw = json.loads(detail)
        if "risk" in raw:  # one that could not apply is refused here, never journaled
            risk = risk_config_from_json(raw["risk"])
            if risk.fingerprint() != self.risk.config.fingerprint():
                self.risk.check_reconfigure(risk)
        with self._lock:
            seq, ts = self._next(1)
            ticket = self.journal.append(JournalEntry(seq, seq, ts, EntryKind.CONFIG, "hub", 0, detail=detail))
            raised = self._apply_config(raw, seq, ts)
            if raised:
                self._act_on_risk(raised, journal=False)  # the record itself is the input
        self.journal.wait_committed(ticket)
        self.drain_risk_cancels()  # a margin call with no grace under the new requirements
        return seq

    def adopt_risk_config(self, risk: RiskConfig) -> None:
        """Recovery, before anything is replayed: run the risk engine on ``risk`` from the start (the
        configuration the ledger's first CONFIG record carrying one names; see ``recover``)."""
        with self._lock:
            if risk.fingerprint() != self.risk.config.fingerprint():
                self.risk = RiskEngine(risk, self.config.instruments)
                self._check_risk = self.risk.check_order_positional

    def _apply_config(self, raw: dict, seq: int, ts: int) -> list[RiskEvent]:
        """A CONFIG record (live and on replay): its participants and its risk configuration are
        in force from here on. Returns the risk events the new risk configuration raised."""
        self._rules = int(raw.get("rules", 1))
        self._config_participants(raw, ts)
        if "risk" not in raw:  # a ledger written before CONFIG records carried it
            return []
        risk = risk_config_from_json(raw["risk"])
        if risk.fingerprint() == self.risk.config.fingerprint():
            return []
        if seq == 1:  # the ledger's first record: the engine starts with it, as it did live
            self.adopt_risk_config(risk)
            return []
        breakers = risk.breakers
        self._latency = LatencyMonitor(breakers.latency_threshold_ns, breakers.latency_consecutive)
        return self.risk.reconfigure(ts, risk)

    def _config_participants(self, raw: dict, ts: int) -> None:
        classes = {p["id"]: p["class"] for p in raw.get("participants", ())}
        # Classes in force from this record on; a participant it no longer names keeps its last class,
        # so its history (trades, orders still to be cancelled) still prices and replays.
        self._class_of.update(classes)
        self._register_fee_payers(classes, ts)

    def class_of(self, participant_id: str) -> ParticipantClass:
        """The participant's class in force now (on replay: at the record being replayed)."""
        return ParticipantClass(self._class_of.get(participant_id, ParticipantClass.NONE))

    def _register_fee_payers(self, classes: dict[str, str], ts: int | None = None) -> None:
        self.fees.set_participants({pid: cls for pid, cls in classes.items() if cls in FEE_CLASSES}, ts)

    def _refuse(self, who: Identity, what: str, reason: int, text: str, fields: dict, arrival_ns: int,
                answer: str | None = None) -> EntryResult:
        """Journal an order-entry call's gateway reject without waiting for its commit (the caller
        may hold the sequencer, or be the gateway's event loop) and answer it: ``_settle`` or the
        service waits for ``ticket_of`` the result."""
        _, _, ticket = self._record_uncommitted(EntryKind.GATEWAY_REJECT, who.participant_id,
                                                {"request": what, "reason": int(reason), "text": text, **fields},
                                                arrival_ns=arrival_ns)
        return _refused(reason, text if answer is None else answer, ticket)

    def _reject_record(self, who: Identity, what: str, reason: int, text: str, fields: dict) -> int:
        """Journal a gateway reject of a call that is not an order entry (mass cancel, mass quote);
        returns the journal ticket its answer must see committed."""
        return self._record_uncommitted(EntryKind.GATEWAY_REJECT, who.participant_id,
                                        {"request": what, "reason": int(reason), "text": text, **fields})[2]

    # -- ROUTING -------------------------------------------------------------------------------

    def _register(self, order_id: int, meta: OrderMeta) -> None:
        self._orders[order_id] = meta
        self._orders_of[meta.participant_id].add(order_id)

    def _forget(self, order_id: int) -> OrderMeta | None:
        meta = self._orders.pop(order_id, None)
        if meta is not None:
            self._orders_of[meta.participant_id].discard(order_id)
        return meta

    def _deliver(self, meta: OrderMeta, report: cpb.ExecutionReport, session_id: str, caller: str,
                 outcome: Outcome) -> None:
        """Route one report to its owner only. Streams get it once the command's journal entry is
        appended (``_flush_deliveries``), tagged with its ticket: they send it after the commit."""
        pid = meta.participant_id
        self._history[pid].append(report)
        pending = self._pending_deliveries
        for q in self._drop_copies.get(pid, ()):
            pending.append((q, report))
        if pid == caller:
            outcome.reports.append(report)
        if meta.session_id and (meta.session_id != session_id or pid != caller):
            session = self._sessions.get(meta.session_id)
            if session is not None:
                pending.append((session.outbox, report))

    def _flush_deliveries(self, ticket: int) -> None:
        pending, self._pending_deliveries = self._pending_deliveries, []
        for queue, report in pending:
            queue.put(report, ticket)

    def _route(self, events: list[Event], ts: int, session_id: str, caller: str, outcome: Outcome) -> None:
        orders = self._orders
        # Cancelled orders release their risk in one call per run of cancels (a mass quote cancels
        # hundreds): ``on_orders_done`` ends in the state the one-by-one calls reach, and nothing
        # in between reads it (TopOfBook moves only the LULD state); any other risk input first
        # flushes the run, so the risk engine sees every event in the engine's order.
        released: list[int] = []
        for ev in events:
            t = type(ev)
            if t is BookDelta:
                continue  # market data only (published with the step): the commonest event, tested first
            if released and t is not Cancelled and t is not TopOfBook:
                self.risk.on_orders_done(ts, released)
                released = []
            if t is Trade:
                self._on_trade(ev, ts, session_id, caller, outcome)
            elif t is Accepted:
                meta = orders[ev.order_id]
                self._deliver(meta, _report(meta, ev.order_id, ev.seq, ts, cpb.EXEC_NEW, price=ev.price,
                                            leaves_quantity=ev.quantity), session_id, caller, outcome)
            elif t is TopOfBook:
                self._risk_raised(self.risk.on_top_of_book(ts, ev.instrument_id, ev.bid_price, ev.ask_price))
            elif t is Done:
                self.risk.on_order_done(ts, ev.order_id)
                meta = self._forget(ev.order_id)
                self._deliver(meta, _report(meta, ev.order_id, ev.seq, ts, cpb.EXEC_FILLED, price=meta.price),
                              session_id, caller, outcome)
            elif t is Cancelled:
                released.append(ev.order_id)
                meta = self._forget(ev.order_id)
                self._deliver(meta, _report(meta, ev.order_id, ev.seq, ts, cpb.EXEC_CANCELLED,
                                            price=meta.price, leaves_quantity=0,
                                            cancel_reason=ev.reason), session_id, caller, outcome)
            elif t is Expired:
                self.risk.on_order_done(ts, ev.order_id)
                meta = self._forget(ev.order_id)
                self._deliver(meta, _report(meta, ev.order_id, ev.seq, ts, cpb.EXEC_EXPIRED, price=meta.price),
                              session_id, caller, outcome)
            elif t is Replaced:
                self.risk.on_order_replaced(ts, ev.order_id, ev.price, ev.remaining)
                meta = orders[ev.order_id]
                meta.price = ev.price
                if not ev.priority_kept:  # back of the queue as a new order: its resting time starts again
                    meta.entry_ns = ts
                self._deliver(meta, _report(meta, ev.order_id, ev.seq, ts, cpb.EXEC_REPLACED, price=ev.price,
                                            leaves_quantity=ev.remaining), session_id, caller, outcome)
            elif t is Rejected and ev.command_kind == CommandKind.NEW_ORDER:
                self.risk.on_order_done(ts, ev.order_id)
                meta = self._forget(ev.order_id)
                if meta is not None:
                    self._deliver(meta, _report(meta, ev.order_id, ev.seq, ts, cpb.EXEC_REJECTED,
                                                reject_reason=ev.reason), session_id, caller, outcome)
        if released:
            self.risk.on_orders_done(ts, released)

    def _on_trade(self, ev: Trade, ts: int, session_id: str, caller: str, outcome: Outcome) -> None:
        inst = self.instruments[ev.instrument_id]
        notional = ev.price * ev.quantity * inst.contract_multiplier
        maker, taker = self._orders[ev.maker_order_id], self._orders[ev.taker_order_id]
        fees = self.fees.on_trade(ts, inst, ev, maker_id=maker.participant_id,
                                  maker_class=self._class_of[maker.participant_id],
                                  taker_id=taker.participant_id, taker_class=self._class_of[taker.participant_id])
        self._fee_records += (fees.maker, fees.taker)
        self._fixed_charges += fees.fixed_charges
        fee_json, fixed_json = self._post_trade.setdefault(ev.seq, ([], []))
        fee_json += (fees.maker.canonical_json(), fees.taker.canonical_json())
        if fees.fixed_charges:
            fixed_json += [canonical_json(c.to_dict()).decode() for c in fees.fixed_charges]
        self._risk_raised(self.risk.on_engine_trade(ts, ev, maker.participant_id, taker.participant_id))
        for order_id, meta, account, remaining, aggressor, fee in (
            (ev.maker_order_id, maker, ev.maker_account, ev.maker_remaining, False, fees.maker),
            (ev.taker_order_id, taker, ev.taker_account, ev.taker_remaining, True, fees.taker),
        ):
            pos = self._positions[(account, ev.instrument_id)]
            if meta.side == Side.BUY:
                pos.bought += ev.quantity
                pos.net_cost_raw += notional
            else:
                pos.sold += ev.quantity
                pos.net_cost_raw -= notional
            self._deliver(meta, _report(meta, order_id, ev.seq, ts, cpb.EXEC_TRADE, price=meta.price,
                                        leaves_quantity=remaining, last_price=ev.price,
                                        last_quantity=ev.quantity, trade_id=ev.trade_id, aggressor=aggressor,
                                        fee=fee.fee, fee_currency=fee.currency,
                                        fee_schedule=fee.schedule_version), session_id, caller, outcome)

    def statement(self, participant_id: str, month: Month) -> ParticipantStatement:
        """A participant's monthly fee statement, from the fees charged while the hub ran (and replay)."""
        return participant_statement(participant_id, month, *self._fees_so_far())

    def revenue(self, month: Month) -> VenueRevenueSummary:
        return venue_revenue_summary(*self._fees_so_far(), month=month)

    def _fees_so_far(self) -> tuple[list[FeeRecord], list[FixedFeeCharge]]:
        """The fees charged up to now, read without holding the sequencer while a report scans
        them (a million records held every order back for 270 ms). The lists only ever grow at
        the end, so their first entries, counted under the sequencer, never change."""
        with self._lock:
            records, charges = len(self._fee_records), len(self._fixed_charges)
        return self._fee_records[:records], self._fixed_charges[:charges]

    # -- ORDER ENTRY ---------------------------------------------------------------------------

    def is_halted(self, instrument_id: int) -> bool:
        return (self._hub_halted or instrument_id in self._halted_symbols
                or self.instruments[instrument_id].asset_class in self._halted_classes)

    def _account_for(self, who: Identity, account: int) -> int | None:
        if account == 0:
            return who.accounts[0] if who.accounts else None
        return account if account in who.accounts else None

    def _check_order(self, who: Identity, spec: OrderSpec) -> tuple[int, str] | None:
        limits = self.config.limits
        if len(spec.client_order_id) > limits.client_order_id_max_length or not spec.client_order_id.isprintable():
            return GatewayReject.FIELD_OUT_OF_RANGE, "client_order_id too long or not printable"
        inst = self.by_symbol.get(spec.symbol)
        if inst is None:
            return RejectReason.UNKNOWN_INSTRUMENT, f"unknown symbol {spec.symbol[:64]!r}"
        if not spec.side or not spec.order_type or not spec.time_in_force:
            return GatewayReject.MISSING_FIELD, "side, order_type and time_in_force are required"
        if self._account_for(who, spec.account) is None:
            return GatewayReject.ACCOUNT_NOT_PERMITTED, f"account {spec.account} is not yours"
        if spec.client_order_id and spec.client_order_id in self._client_ids[who.participant_id]:
            return GatewayReject.DUPLICATE_CLIENT_ORDER_ID, "client_order_id already used"
        if self.is_halted(inst.instrument_id):
            return GatewayReject.INSTRUMENT_HALTED, f"{inst.symbol} is halted"
        return None

    def _engine_stp(self, who: Identity, wire: int) -> int:
        if wire == cpb.STP_MODE_UNSPECIFIED:
            return who.default_stp
        return _PROTO_STP.get(wire, _INVALID_STP)

    def submit_order(self, who: Identity, spec: OrderSpec, session_id: str = "",
                     settle: bool = True) -> tuple[Outcome | None, int, str]:
        """Returns (outcome, reject reason or 0, text). Outcome None: refused at the gateway.

        Fairness applies here: the order may wait behind its latency floor or join its asset
        class's random batch before it is sequenced (this call then blocks until it is)."""
        return self._settle(_unheld(self.enter_order(who, spec, session_id)), settle)

    def enter_order(self, who: Identity, spec: OrderSpec, session_id: str = "") -> EntryResult | HeldCall:
        """``submit_order`` without blocking: an order a fairness rule holds comes back as a
        ``HeldCall``; its result is not committed yet (``outcome.ticket``)."""
        arrival = self._clock()
        problem = self._check_order(who, spec)
        if problem is not None:
            return self._refuse(who, "new_order", problem[0], problem[1],
                                {"symbol": spec.symbol[:64], "client_order_id": spec.client_order_id[:64]}, arrival)
        inst = self.by_symbol[spec.symbol]
        account = self._account_for(who, spec.account)
        stp = self._engine_stp(who, spec.stp_mode)
        if spec.client_order_id:
            self._client_ids[who.participant_id].add(spec.client_order_id)
        # The id is used from here on, whatever becomes of the order: a reject from here says so,
        # and replay burns the id again from it (the id passed the length check above).
        refused_fields = {"symbol": inst.symbol, "client_order_id": spec.client_order_id, "burns_client_order_id": True}
        unrecorded = _Unburn(self, who.participant_id, spec.client_order_id)
        blocked = self._kill_switch_refuses(who, inst, spec)
        if blocked is not None:  # decided now: a kill's cancel steps may hold the sequencer for ms
            with unrecorded:
                return self._refuse_for_risk(who, "new_order", blocked, refused_fields, arrival)
        pclass = who.participant_class
        min_rest = self.fairness.min_resting_ns(pclass, spec.order_type, spec.post_only, spec.quantity)

        def build(seq: int, ts: int) -> list[Command]:
            order_type, price = spec.order_type, spec.price
            if order_type == OrderType.MARKET and price == 0 and spec.side in _SIDES and spec.time_in_force in _IMMEDIATE:
                # Price protection: a market order goes to the engine as a limit order at the edge of
                # the price band (where the risk check priced it), decided now, at sequencing, and
                # journaled as such: it never trades outside the band, at whatever price rests there.
                order_type, price = OrderType.LIMIT, self.risk.protected_price(inst.instrument_id, spec.side)
            return [NewOrder(seq, ts, inst.instrument_id, seq, account, spec.side, order_type,
                             spec.time_in_force, price, spec.quantity, spec.display_quantity,
                             int(spec.post_only), stp)]

        def register(commands: list[Command]) -> None:
            cmd = commands[0]
            meta = OrderMeta(who.participant_id, spec.client_order_id, session_id, inst.instrument_id, inst.symbol,
                             spec.side, account, cmd.price, spec.time_in_force, spec.display_quantity,
                             entry_ns=cmd.ts, min_rest_ns=min_rest)
            self._register(cmd.order_id, meta)
            self._enter_risk(cmd, meta)

        released = [arrival]  # when the order left its fairness wait (set at release)

        def run(release_ns: int) -> tuple[Outcome | None, int, str]:
            with unrecorded:
                return sequence(release_ns)

        def sequence(release_ns: int) -> tuple[Outcome | None, int, str]:
            released[0] = release_ns
            if self.is_halted(inst.instrument_id):  # halted while the order waited (floor or batch)
                return self._refuse(who, "new_order", GatewayReject.INSTRUMENT_HALTED, f"{inst.symbol} is halted",
                                    refused_fields, arrival)
            refused = self._risk_check_new(who, session_id, inst, spec)
            if refused is not None:
                return self._refuse_for_risk(who, "new_order", refused, refused_fields, arrival)
            outcome = self._run_engine(inst.asset_class, who.participant_id, session_id, who.participant_id,
                                       1, build, register, arrival, wait=False)
            reason = next((ev.reason for ev in outcome.events if type(ev) is Rejected), 0)
            return outcome, reason, RejectReason(reason).name if reason else ""

        def finish(result: EntryResult) -> EntryResult:
            # The latency breaker watches the hub's own delay: from release (after any deliberate
            # fairness wait: floor, batch window) to the end of sequencing. Sequenced orders only: a
            # refused one waited for its reject record's commit too, so a slow ledger and one
            # participant's bad prices would have halted the whole asset class.
            if result[0] is not None:
                self.observe_ack_latency(inst.asset_class, self._clock() - released[0])
            self.drain_risk_cancels(wait=False)  # a trade or a latency halt may have asked for cancels
            return result

        window = self.fairness.batch_window(inst.asset_class)
        if window is not None:  # (a batch whose own record is refused fails its futures unrun)
            return HeldCall(unrecorded.watch(self.scheduler.batch(inst.asset_class, window, arrival, False, run)),
                            finish)
        taking = is_liquidity_taking(spec.order_type, spec.time_in_force, spec.post_only,
                                     self._marketable(inst, spec.side, spec.price))
        floor = self.fairness.floor_ns(pclass, spec.order_type, spec.post_only, taking, spec.quantity)
        if floor:
            return HeldCall(self.scheduler.hold(arrival + floor, run), finish)
        return finish(self._now(arrival, run))

    def _now(self, arrival: int, run: Callable[[int], object]):
        """Sequence a command that waits for nothing, after everything already due."""
        with self._lock:
            self.scheduler.release_due(arrival)
            return run(arrival)

    def _marketable(self, inst: Instrument, side: int, price: int) -> bool:
        top = self.engines[inst.asset_class].depth(inst.instrument_id, 1)
        opposite = top.asks if side == Side.BUY else top.bids
        if not opposite:
            return False
        return opposite[0][0] <= price if side == Side.BUY else opposite[0][0] >= price

    def _own_order(self, who: Identity, symbol: str, order_id: int) -> tuple[Instrument | None, OrderMeta | None]:
        inst = self.by_symbol.get(symbol)
        meta = self._orders.get(order_id)
        if meta is not None and (meta.participant_id != who.participant_id or inst is None
                                 or meta.instrument_id != inst.instrument_id):
            meta = None  # someone else's order looks exactly like no order
        return inst, meta

    def cancel_order(self, who: Identity, symbol: str, order_id: int, session_id: str = "",
                     settle: bool = True) -> tuple[Outcome | None, int, str]:
        return self._settle(_unheld(self.enter_cancel(who, symbol, order_id, session_id)), settle)

    def replace_order(self, who: Identity, symbol: str, order_id: int, price: int, quantity: int,
                      session_id: str = "", settle: bool = True) -> tuple[Outcome | None, int, str]:
        return self._settle(_unheld(self.enter_replace(who, symbol, order_id, price, quantity, session_id)), settle)

    def enter_cancel(self, who: Identity, symbol: str, order_id: int, session_id: str = "") -> EntryResult | HeldCall:
        """``cancel_order`` without blocking (see ``enter_order``)."""
        return self._amend(who, "cancel", symbol, order_id, session_id, None)

    def enter_replace(self, who: Identity, symbol: str, order_id: int, price: int, quantity: int,
                      session_id: str = "") -> EntryResult | HeldCall:
        """``replace_order`` without blocking (see ``enter_order``)."""
        def finish(result: EntryResult) -> EntryResult:
            self.drain_risk_cancels(wait=False)  # a replace can trade, and a trade can trip a breaker
            return result

        result = self._amend(who, "replace", symbol, order_id, session_id, (price, quantity), finish=finish)
        return result if isinstance(result, HeldCall) else finish(result)

    def _amend(self, who: Identity, what: str, symbol: str, order_id: int, session_id: str,
               new_values: tuple[int, int] | None, enforce_resting: bool = True,
               finish: Callable[[EntryResult], EntryResult] = lambda result: result) -> EntryResult | HeldCall:
        arrival = self._clock()
        inst, meta = self._own_order(who, symbol, order_id)
        problem: tuple[int, str] | None = None
        if inst is None:
            problem = RejectReason.UNKNOWN_INSTRUMENT, f"unknown symbol {symbol[:64]!r}"
        elif meta is None:
            problem = RejectReason.UNKNOWN_ORDER, f"no open order {order_id} of yours on {symbol}"
        elif new_values is not None and self.is_halted(inst.instrument_id):
            problem = GatewayReject.INSTRUMENT_HALTED, f"{inst.symbol} is halted"
        rested_enough_at = meta.entry_ns + meta.min_rest_ns if meta is not None and enforce_resting else 0
        if (problem is None and arrival < rested_enough_at
                and self.fairness.config.min_resting_mode == RestingMode.REJECT):
            problem = FairnessReject.MIN_RESTING_TIME, (
                f"order {order_id} has rested {arrival - meta.entry_ns} ns of the required {meta.min_rest_ns} ns")
        if problem is not None:
            return self._refuse(who, what, problem[0], problem[1], {"symbol": symbol[:64], "order_id": order_id},
                                arrival)
        account = meta.account

        def build(seq: int, ts: int) -> list[Command]:
            if new_values is None:
                return [Cancel(seq, ts, inst.instrument_id, order_id, account)]
            return [Replace(seq, ts, inst.instrument_id, order_id, account, *new_values)]

        def enter(commands: list[Command]) -> None:
            self._enter_risk(commands[0], None, session_id)

        def run(_release_ns: int) -> tuple[Outcome | None, int, str]:
            if new_values is not None and self.is_halted(inst.instrument_id):  # halted while the replace was held
                return self._refuse(who, what, GatewayReject.INSTRUMENT_HALTED, f"{inst.symbol} is halted",
                                    {"symbol": inst.symbol, "order_id": order_id}, arrival)
            if new_values is not None:
                probe = Replace(0, 0, inst.instrument_id, order_id, account, *new_values)
                refused = (None if validation.check_replace(probe, inst) is not None else self.risk.check_replace(
                    self._hub_time_now(), who.participant_id, session_id, order_id, *new_values))
                if refused is not None:
                    return self._refuse_for_risk(who, what, refused, {"symbol": inst.symbol, "order_id": order_id},
                                                 arrival)
            outcome = self._run_engine(inst.asset_class, who.participant_id, session_id, who.participant_id,
                                       1, build, enter, arrival, wait=False)
            reason = next((ev.reason for ev in outcome.events if type(ev) is Rejected), 0)
            return outcome, reason, RejectReason(reason).name if reason else ""

        window = self.fairness.batch_window(inst.asset_class)
        if window is not None:
            is_cancel = new_values is None
            if arrival < rested_enough_at:  # hold mode: it may join a batch only once the order has rested enough
                joined = self.scheduler.hold(rested_enough_at, lambda release_ns: self.scheduler.batch(
                    inst.asset_class, window, release_ns, is_cancel, run))
                return HeldCall(joined, finish)  # resolves to the batch's future
            return HeldCall(self.scheduler.batch(inst.asset_class, window, arrival, is_cancel, run), finish)
        release = rested_enough_at  # hold mode: applied the moment the order has rested enough
        if new_values is not None:  # a replace is a new price and size: it waits behind the floor as an order does
            taking = self._marketable(inst, meta.side, new_values[0])
            floor = self.fairness.floor_ns(who.participant_class, OrderType.LIMIT, False, taking, new_values[1])
            release = max(release, arrival + floor if floor else 0)
        if arrival < release:
            return HeldCall(self.scheduler.hold(release, run), finish)
        return self._now(arrival, run)

    def mass_cancel(self, who: Identity, symbol: str, account: int, source: str = "") -> tuple[int, int, str]:
        """Cancel the participant's orders (one account or all, one instrument or all).
        Returns (cancelled count, reject reason or 0, text). Blocks until committed, and while orders
        in scope wait out their minimum resting time (``enter_mass_cancel`` does not)."""
        entered = self.enter_mass_cancel(who, symbol, account, source)
        if entered is None:
            return self.mass_cancel_order_by_order(who, symbol, account)
        count, reason, text, ticket = entered
        self.journal.wait_committed(ticket)
        return count, reason, text

    def enter_mass_cancel(self, who: Identity, symbol: str, account: int,
                          source: str = "") -> tuple[int, int, str, int] | None:
        """``mass_cancel`` without blocking: (count, reject reason or 0, text, journal ticket the
        answer waits for), or None when orders in scope have not rested their minimum time: then
        ``mass_cancel_order_by_order``, which may wait for them, does it (off the event loop)."""
        inst = self.by_symbol.get(symbol) if symbol else None
        if symbol and inst is None:
            ticket = self._reject_record(who, "mass_cancel", RejectReason.UNKNOWN_INSTRUMENT, "unknown symbol",
                                         {"symbol": symbol[:64]})
            return 0, RejectReason.UNKNOWN_INSTRUMENT, f"unknown symbol {symbol[:64]!r}", ticket
        if account and account not in who.accounts:
            ticket = self._reject_record(who, "mass_cancel", GatewayReject.ACCOUNT_NOT_PERMITTED,
                                         "not your account", {"account": account})
            return 0, GatewayReject.ACCOUNT_NOT_PERMITTED, f"account {account} is not yours", ticket
        accounts = (account,) if account else who.accounts
        if self._not_yet_rested(who, accounts, inst.instrument_id if inst else None):
            return None
        classes = [inst.asset_class] if inst else list(self.engines)
        iid = inst.instrument_id if inst else ALL_INSTRUMENTS
        count = ticket = 0
        self.scheduler.release_due()  # it waits for nothing: whatever is due goes first
        for ac in classes:
            for acct in accounts:
                outcome = self._run_engine(
                    ac, source or who.participant_id, "", who.participant_id, 1,
                    lambda seq, ts, acct=acct: [MassCancel(seq, ts, iid, acct)], wait=False)
                count += sum(ev.cancelled_count for ev in outcome.events if type(ev) is MassCancelReport)
                ticket = outcome.ticket  # the journal commits in order: the last covers them all
        return count, 0, "", ticket

    def _in_scope(self, who: Identity, accounts: tuple[int, ...], instrument_id: int | None) -> list[int]:
        with self._lock:
            return sorted(oid for oid in self._orders_of.get(who.participant_id, ())
                          if (meta := self._orders.get(oid)) is not None and meta.account in accounts
                          and (instrument_id is None or meta.instrument_id == instrument_id))

    def _not_yet_rested(self, who: Identity, accounts: tuple[int, ...], instrument_id: int | None) -> int:
        """How many of the orders a mass cancel would take are still inside their minimum resting time."""
        now = self._clock()
        with self._lock:
            orders = self._orders
            return sum(1 for oid in self._orders_of.get(who.participant_id, ())
                       if (meta := orders.get(oid)) is not None and now < meta.entry_ns + meta.min_rest_ns
                       and meta.account in accounts and (instrument_id is None or meta.instrument_id == instrument_id))

    def mass_cancel_order_by_order(self, who: Identity, symbol: str, account: int) -> tuple[int, int, str]:
        """A mass cancel over orders some of which have not rested their minimum time: each is
        cancelled as its own cancel would be, under the resting rule (refused in REJECT mode, held
        until rested in HOLD mode: this call then blocks). One MassCancel engine command would have
        taken them all at once, which let a scalper pull an order the moment it was entered. Returns
        the count and, for orders left in place, a text saying so (the call itself is accepted).
        For a symbol and account ``enter_mass_cancel`` accepted."""
        inst = self.by_symbol.get(symbol) if symbol else None
        accounts = (account,) if account else who.accounts
        count = left = 0
        for order_id in self._in_scope(who, accounts, inst.instrument_id if inst else None):
            meta = self._orders.get(order_id)
            if meta is None:
                continue  # filled or cancelled meanwhile
            outcome, reason, _ = self._settle(_unheld(self._amend(who, "cancel", meta.symbol, order_id, "", None)))
            if outcome is not None and not reason:
                count += 1
            elif reason == FairnessReject.MIN_RESTING_TIME:
                left += 1
        return count, 0, (f"{left} orders not yet rested their minimum time stay open" if left else "")

    def _take_mass_quote_token(self, participant_id: str) -> bool:
        """The participant's mass-quote message bucket (quote orders take no order-rate tokens, so
        without it one participant could send messages without limit). The gateway's own, like a
        connection limit: a refused message is journaled as a gateway reject, so replay needs no
        bucket."""
        limits = self.config.limits
        rate, capacity = limits.mass_quotes_per_second, limits.mass_quote_burst * ratelimit.TOKEN
        with self._lock:
            now = self._clock()
            bucket = self._quote_buckets.get(participant_id)
            if ratelimit.level(bucket, now, rate, capacity) < ratelimit.TOKEN:
                return False
            self._quote_buckets[participant_id] = ratelimit.take(bucket, now, rate, capacity)
            return True

    def _plan_quote_sides(self, who: Identity, session_id: str, entries: list[tuple[int, QuoteSpec, Instrument]],
                          replaced: dict[int, list[int]], plan: list[tuple[str, int, int, int, int, int]],
                          results: dict[int, list]) -> None:
        """Plan one asset class's part of a mass quote (sequencer held): the cancels of the quotes it
        replaces, then each side that passes pre-trade risk, in message order; refused sides get their
        reason in ``results``. The sides are checked one after the other, as orders sent in turn would
        be: under a risk hold the replaced quotes no longer count and every side already accepted
        does (position limit, margin). Sides the engine will refuse on their own fields are planned
        unchecked and uncounted (they never rest; ``_enter_risk`` skips them too). The hold is undone
        before the engine runs: the sequenced commands then enter risk at registration
        (``on_quotes_entered``: ``_enter_risk``'s calls in one) and through the engine's Cancelled
        events, as replay enters them, so a message that fails to sequence leaves risk untouched."""
        pid, risk_check, fields_refused = who.participant_id, self._check_risk, order_fields_refused
        now = self._hub_time()  # one hub time for the message's checks (sequencer held)
        limit, gtc = int(OrderType.LIMIT), int(TimeInForce.GTC)
        hold = self.risk.hold(pid)
        try:
            hold.release([old for olds in replaced.values() for old in olds])
            cancelled: set[int] = set()
            for index, q, inst in entries:
                iid = inst.instrument_id
                if iid not in cancelled:
                    cancelled.add(iid)
                    plan.extend(("cancel", index, iid, old, 0, 0) for old in replaced[iid])
                row = results[index]
                for side, px, qty, reason_slot in ((Side.BUY, q.bid_price, q.bid_quantity, 2),
                                                   (Side.SELL, q.ask_price, q.ask_quantity, 4)):
                    if not qty:
                        continue
                    if fields_refused(inst, side, limit, gtc, px, qty, 0, 1):
                        plan.append(("refused", index, iid, side, px, qty))  # the engine rejects it
                        continue
                    refused = risk_check(now, pid, session_id, iid, side, limit, px, qty, 0, False)
                    if refused is not None:
                        row[reason_slot] = int(refused)
                    else:
                        plan.append(("new", index, iid, side, px, qty))
                        hold.add(iid, side, qty)  # the next side is checked with this one resting
        finally:
            hold.restore()

    @staticmethod
    def _refuse_young_quotes(entries: list[tuple[int, QuoteSpec, Instrument]], young: set[int],
                             results: dict[int, list]) -> list[tuple[int, QuoteSpec, Instrument]]:
        """The entries of a mass quote on instruments whose quotes have not rested their minimum time
        are refused (both sides, MIN_RESTING_TIME) and those quotes stay: a mass quote is not held for
        them, as a cancel would be in HOLD mode. The other entries go on."""
        kept = []
        for entry in entries:
            index, q, inst = entry
            if inst.instrument_id in young:
                row = results[index]
                row[2] = int(FairnessReject.MIN_RESTING_TIME) if q.bid_quantity else 0
                row[4] = int(FairnessReject.MIN_RESTING_TIME) if q.ask_quantity else 0
            else:
                kept.append(entry)
        return kept

    def _record_refused_quotes(self, message: _QuoteMessage, entries: list[tuple[int, QuoteSpec, object]],
                               arrival: int) -> int:
        """Journal each quote side of ``entries`` that was refused before reaching an engine (unknown
        or halted instrument, pre-trade risk, old quotes not yet rested): a gateway reject record
        per side, as a refused order has. Returns the last record's journal ticket (0: none)."""
        ticket = 0
        for index, q, _ in entries:
            row = message.results[index]
            for side, price, quantity, reason in ((Side.BUY, q.bid_price, q.bid_quantity, row[2]),
                                                  (Side.SELL, q.ask_price, q.ask_quantity, row[4])):
                if quantity and reason:
                    ticket = self._record_uncommitted(EntryKind.GATEWAY_REJECT, message.who.participant_id, {
                        "request": "mass_quote", "reason": int(reason), "text": _reason_name(reason),
                        "symbol": q.symbol[:64], "side": int(side), "price": price, "quantity": quantity,
                    }, message.session_id, arrival)[2]
        return ticket

    def mass_quote(self, who: Identity, quotes: list[QuoteSpec], account: int,
                   session_id: str = "") -> tuple[list[cpb.ExecutionReport], list[tuple[str, int, int, int, int]], int, str]:
        """Replace the participant's quotes instrument by instrument.

        Returns (reports, per-quote (symbol, bid id, bid reject, ask id, ask reject), reject, text)
        once committed."""
        reports, rows, reason, text, ticket = _unheld(self.enter_mass_quote(who, quotes, account, session_id))
        self.journal.wait_committed(ticket)
        return reports, rows, reason, text

    def enter_mass_quote(self, who: Identity, quotes: list[QuoteSpec], account: int,
                         session_id: str = "") -> MassQuoteResult | HeldCall:
        """``mass_quote`` without blocking: its answer, with the journal ticket that answer waits for
        (the gateway groups it with the loop's other commits), or, when a fairness rule holds the
        message (the participant's latency floor, an asset class's batch window), a ``HeldCall``
        that resolves to it."""
        if len(quotes) > self.config.limits.max_quotes_per_message:
            ticket = self._reject_record(who, "mass_quote", GatewayReject.TOO_MANY_QUOTES, "too many quotes",
                                         {"quotes": len(quotes)})
            return [], [], GatewayReject.TOO_MANY_QUOTES, (
                f"{len(quotes)} quotes; at most {self.config.limits.max_quotes_per_message} per message"), ticket
        acct = self._account_for(who, account)
        if acct is None:
            ticket = self._reject_record(who, "mass_quote", GatewayReject.ACCOUNT_NOT_PERMITTED, "not your account",
                                         {"account": account})
            return [], [], GatewayReject.ACCOUNT_NOT_PERMITTED, f"account {account} is not yours", ticket
        if not self._take_mass_quote_token(who.participant_id):
            text = f"more than {self.config.limits.mass_quotes_per_second} mass quotes per second"
            ticket = self._reject_record(who, "mass_quote", RiskReject.SESSION_RATE, text, {"quotes": len(quotes)})
            return [], [], RiskReject.SESSION_RATE, text, ticket
        results: dict[int, list] = {}
        groups: dict[AssetClass, list[tuple[int, QuoteSpec, Instrument]]] = defaultdict(list)
        unknown: list[tuple[int, QuoteSpec, None]] = []
        for index, q in enumerate(quotes):
            inst = self.by_symbol.get(q.symbol)
            if inst is None:
                reason = int(RejectReason.UNKNOWN_INSTRUMENT)
                results[index] = [q.symbol[:64], 0, reason, 0, reason]
                unknown.append((index, q, None))
                continue
            results[index] = [q.symbol, 0, 0, 0, 0]
            groups[inst.asset_class].append((index, q, inst))
        message = _QuoteMessage(who, session_id, acct, results, [])
        arrival = self._clock()
        refused_ticket = self._record_refused_quotes(message, unknown, arrival) if unknown else 0

        def finish(ticket: int) -> MassQuoteResult:
            # One commit covers every group (the journal commits in ticket order). A message of which
            # nothing was sequenced (every side refused: a halt, risk) waits for the newest record
            # still: what it reports (a halt) is shown only once it is on record.
            return (message.reports, [tuple(results[i]) for i in range(len(quotes))], 0, "",
                    ticket or self.last_ticket)

        def run(parts: list[tuple[AssetClass, list]]) -> Callable[[int], int]:
            def sequence(release_ns: int) -> int:
                ticket = 0
                for ac, entries in parts:
                    ticket = self._sequence_quotes(message, ac, entries, arrival, release_ns) or ticket
                return ticket
            return sequence

        # Fairness as for orders: the quotes of a batched asset class join its batch (one element of
        # its shuffle); the others wait behind the participant's latency floor, if any, as one.
        batched = {ac: window for ac in groups if (window := self.fairness.batch_window(ac)) is not None}
        direct = [(ac, entries) for ac, entries in groups.items() if ac not in batched]
        floor = max((self.fairness.floor_ns(who.participant_class, int(OrderType.LIMIT), True, False, qty)
                     for _, entries in direct for _, q, _ in entries for qty in (q.bid_quantity, q.ask_quantity)
                     if qty), default=0)
        # The part that waits for nothing goes first: if it is refused (the hub cannot journal), the
        # call fails with nothing left queued to enter later. A part refused at its release fails the
        # call too (UNAVAILABLE) while the parts sequenced before it stand: as quotes they are
        # replaced by the participant's next mass quote on those instruments.
        ticket = max(refused_ticket, self._now(arrival, run(direct)) if direct and not floor else 0)
        held = [self.scheduler.batch(ac, window, arrival, False, run([(ac, groups[ac])]))
                for ac, window in batched.items()]
        if direct and floor:
            held.append(self.scheduler.hold(arrival + floor, run(direct)))
        if not held:
            return finish(ticket)
        return HeldCall(_highest(held, ticket), finish)

    def _sequence_quotes(self, message: _QuoteMessage, ac: AssetClass, entries: list[tuple[int, QuoteSpec, Instrument]],
                         arrival: int, now: int) -> int:
        """Sequence one asset class's part of a mass quote at hub time ``now`` (its release): the
        cancels of the quotes it replaces and the sides that pass the checks. Returns the journal
        ticket its answer waits for: its engine step's or, when it sequenced nothing, its last reject
        record's or else the newest record's (a halt it reports is then on record)."""
        who, session_id, acct, results = message.who, message.session_id, message.account, message.results
        pclass, fairness, limit, stp = who.participant_class, self.fairness, int(OrderType.LIMIT), int(who.default_stp)
        with self._lock:  # the cancels must see the quote ids the previous message left
            group = entries
            kept = []
            for entry in entries:  # halted now (perhaps while the message waited): refused
                if self.is_halted(entry[2].instrument_id):
                    halted = int(GatewayReject.INSTRUMENT_HALTED)
                    results[entry[0]][1:] = [0, halted, 0, halted]
                else:
                    kept.append(entry)
            entries = kept
            plan: list[tuple[str, int, int, int, int, int]] = []  # (what: cancel | new | refused, index, iid, side, px, qty)
            # Every quote order this participant has live on an instrument of the message goes, once,
            # even when the message lists the instrument twice (its entries then all stand).
            replaced: dict[int, list[int]] = {}
            young: set[int] = set()  # instruments whose quotes have not rested their minimum time
            orders = self._orders
            for _, _, inst in entries:
                iid = inst.instrument_id
                if iid not in replaced and iid not in young:
                    olds = [old for old in self._quotes.get((who.participant_id, acct, iid), ()) if old in orders]
                    if any(now < orders[old].entry_ns + orders[old].min_rest_ns for old in olds):
                        young.add(iid)  # they stay, as their own cancel would leave them
                    else:
                        replaced[iid] = olds
            if young:
                entries = self._refuse_young_quotes(entries, young, results)
            self._plan_quote_sides(who, session_id, entries, replaced, plan, results)
            refused_ticket = self._record_refused_quotes(message, group, arrival)
            if not plan:  # nothing sequenced: what it reports (a halt) is on record by the newest ticket
                return refused_ticket or self.last_ticket

            def build(seq: int, ts: int) -> list[Command]:
                out: list[Command] = []
                for offset, (what, _, iid, a, b, c) in enumerate(plan):
                    s = seq + offset
                    if what == "cancel":
                        out.append(Cancel(s, ts, iid, a, acct))
                    else:
                        out.append(NewOrder(s, ts, iid, s, acct, a, OrderType.LIMIT, TimeInForce.GTC, b, c, 0, 1, stp))
                return out

            def register(commands: list[Command]) -> None:
                entered: list[tuple[int, int, int, int, int]] = []
                for cmd, (what, index, iid, side, px, qty) in zip(commands, plan, strict=True):
                    if what == "cancel":
                        continue
                    inst = self.instruments[iid]
                    meta = OrderMeta(who.participant_id, "", session_id, iid, inst.symbol, side, acct, px,
                                     TimeInForce.GTC, 0, is_quote=True, entry_ns=cmd.ts,
                                     # a quote is a post-only limit order to the resting rule
                                     min_rest_ns=fairness.min_resting_ns(pclass, limit, True, qty))
                    self._register(cmd.order_id, meta)
                    # What _enter_risk does for each of them (and replay does), in one engine call.
                    # The plan already knows which sides check_new_order refuses: their id, account
                    # (configured, 1..2**62) and STP mode (the participant's default) are valid, so
                    # only the fields decide, as order_fields_refused did.
                    if what == "new":
                        entered.append((cmd.order_id, iid, side, px, qty))
                    results[index][1 if side == Side.BUY else 3] = cmd.order_id
                if entered:
                    self.risk.on_quotes_entered(commands[0].ts, who.participant_id, session_id, entered)

            outcome = self._run_engine(ac, who.participant_id, session_id, who.participant_id,
                                       len(plan), build, register, arrival_ns=arrival, wait=False)
            message.reports.extend(outcome.reports)
            rejected = {ev.order_id: ev.reason for ev in outcome.events
                        if type(ev) is Rejected and ev.command_kind == CommandKind.NEW_ORDER}
            fresh: dict[int, list[int]] = {iid: [] for iid in replaced}
            for index, _, inst in entries:
                row = results[index]
                for id_slot, reason_slot in ((1, 2), (3, 4)):
                    if row[id_slot] in rejected:
                        row[reason_slot] = rejected[row[id_slot]]
                        row[id_slot] = 0
                    elif row[id_slot]:
                        fresh[inst.instrument_id].append(row[id_slot])
            for iid, live in fresh.items():
                self._quotes[(who.participant_id, acct, iid)] = live
        return outcome.ticket

    # -- SESSIONS AND STREAMS --------------------------------------------------------------------

    def open_session(self, who: Identity, cancel_on_disconnect: bool) -> SessionState:
        """Sessions are journaled (open, options, close) so that recovery knows which ones were
        still open, with cancel-on-disconnect, when the hub stopped."""
        session, ticket = self.begin_session(who)
        try:
            # Not under the sequencer: a slow commit delays this caller only, not every order.
            self.journal.wait_committed(ticket)
            if cancel_on_disconnect:
                self.set_cancel_on_disconnect(session, True)
        except (HubUnavailableError, JournalUnavailableError):
            self.abandon_session(session)
            raise
        return session

    def begin_session(self, who: Identity) -> tuple[SessionState, int]:
        """Journal a session's open and register it: (session, journal ticket of the open). The
        caller waits for that commit (the gateway without blocking its event loop) before using it,
        and calls ``abandon_session`` if the commit fails."""
        with self._lock:
            seq, _, ticket = self._record_uncommitted(
                EntryKind.ADMIN, who.participant_id,
                {"action": "session_open", "session": f"{who.participant_id}/{self._seq + 1}"})
            session_id = f"{who.participant_id}/{seq}"
            session = SessionState(session_id, who.participant_id, False,
                                   ReportQueue(self.config.limits.market_data_queue))
            self._sessions[session_id] = session
        return session, ticket

    def abandon_session(self, session: SessionState) -> None:
        """A session whose open the ledger did not commit: the caller gets none, but the open is (or
        will be) on record, so the checkpointer's pass closes it once the ledger records again, as
        for a close the ledger refused."""
        with self._lock:
            self._sessions.pop(session.session_id, None)
            self._closes_refused = True

    def set_cancel_on_disconnect(self, session: SessionState, enabled: bool) -> None:
        self.journal.wait_committed(self.record_session_options(session, enabled))
        session.cancel_on_disconnect = enabled

    def record_session_options(self, session: SessionState, enabled: bool) -> int:
        """Journal a session's cancel-on-disconnect option; returns the journal ticket. The caller sets
        ``session.cancel_on_disconnect`` once it is committed (the gateway awaits it on its loop)."""
        return self._record_uncommitted(EntryKind.ADMIN, session.participant_id, {
            "action": "session_options", "session": session.session_id, "cancel_on_disconnect": enabled})[2]

    def close_session(self, who: Identity, session: SessionState) -> int:
        """End a session; with cancel-on-disconnect, cancel its DAY orders. Returns the count.
        Raises HubUnavailableError when the ledger refused a cancel or the close: the session then
        stays open in the ledger, and ``close_sessions_left_open`` finishes it once it can record."""
        with self._lock:
            self._sessions.pop(session.session_id, None)
            self._closing.add(session.session_id)
            session.outbox.close()
        # The DAY orders go first, then the close is recorded, and only if every cancel was: a hub
        # that stops (or whose ledger refuses) in between still finds the session open, with
        # cancel-on-disconnect, in its ledger and cancels what is left. (Recorded regardless, a
        # close whose cancels never ran left those orders resting for good.)
        try:
            cancelled = self._cancel_day_orders(who, session.session_id) if session.cancel_on_disconnect else 0
            self._record(EntryKind.ADMIN, who.participant_id, {"action": "session_close", "session": session.session_id})
            return cancelled
        except (HubUnavailableError, JournalUnavailableError):  # refused, or a commit that timed out
            self._closes_refused = True
            raise
        finally:
            with self._lock:
                self._closing.discard(session.session_id)

    def close_sessions_left_open(self) -> int:
        """Finish the close of sessions whose own close the ledger refused (the checkpointer calls
        this): their cancel-on-disconnect applies as soon as the hub can record again, not only at
        its next start. Returns the DAY orders cancelled. Nothing to do (the usual case) costs a
        flag read."""
        if not self._closes_refused or not self.accepting or not self.journal.available:
            return 0
        self._closes_refused = False
        try:
            return self.cancel_orphaned_sessions()
        except (HubUnavailableError, JournalUnavailableError):
            self._closes_refused = True
            raise

    def _cancel_day_orders(self, who: Identity, session_id: str) -> int:
        """Cancel a session's DAY orders; raises HubUnavailableError if the ledger refuses one
        (the session's close must then not be recorded)."""
        with self._lock:
            doomed = [(oid, m) for oid, m in self._orders.items()
                      if m.session_id == session_id and m.time_in_force == TimeInForce.DAY]
        cancelled = 0
        for order_id, meta in doomed:
            outcome, reason, _ = self._settle(_unheld(self._amend(who, "cancel", meta.symbol, order_id, "", None,
                                                                  enforce_resting=False)))
            cancelled += outcome is not None and not reason
        return cancelled

    def sessions_left_open(self) -> list[tuple[str, str, bool]]:
        """(session id, participant id, cancel-on-disconnect) of journaled sessions with no close."""
        with self._lock:
            return [(sid, pid, cod) for sid, (pid, cod) in sorted(self._open_sessions.items())
                    if sid not in self._sessions and sid not in self._closing]

    def cancel_orphaned_sessions(self) -> int:
        """Sessions the ledger holds open that no stream serves (at recovery: open when the hub
        stopped; live: their own close was refused): apply their option, then record the close.
        Raises HubUnavailableError, leaving the rest open, if the ledger refuses."""
        identities = {p.id: Identity.of(p) for p in self.config.participants}
        cancelled = 0
        for sid, pid, cod in self.sessions_left_open():
            who = identities.get(pid)
            if cod and who is not None:
                cancelled += self._cancel_day_orders(who, sid)
            self._record(EntryKind.ADMIN, pid, {"action": "session_close", "session": sid})
        return cancelled

    def cancel_orders_of_removed_participants(self) -> int:
        """Recovery, once the configuration in force is recorded: cancel the resting orders of the
        participants it no longer names. Nobody could reach them any more (the token is gone, and
        kill switches target configured traders only), so they would rest, and trade, for good. A
        journaled ``participant_removed`` record precedes and explains each participant's cancels.
        Returns the orders cancelled."""
        configured = {p.id for p in self.config.participants}
        with self._lock:
            doomed: dict[str, list[tuple[int, OrderMeta]]] = defaultdict(list)
            for order_id, meta in self._orders.items():
                if meta.participant_id not in configured:
                    doomed[meta.participant_id].append((order_id, meta))
        cancelled = 0
        for pid, orders in sorted(doomed.items()):
            self._record(EntryKind.ADMIN, "hub", {"action": "participant_removed", "participant": pid,
                                                  "orders": len(orders)})
            gone = Identity(pid, Role.PARTICIPANT, self.class_of(pid), (), StpMode.CANCEL_INCOMING)
            for order_id, meta in orders:
                outcome, reason, _ = self._settle(_unheld(self._amend(gone, "cancel", meta.symbol, order_id, "", None,
                                                                      enforce_resting=False)))
                cancelled += outcome is not None and not reason
        return cancelled

    def open_drop_copy(self, who: Identity) -> ReportQueue:
        with self._lock:
            q = ReportQueue(self.config.limits.market_data_queue)
            self._drop_copies[who.participant_id].append(q)
            return q

    def close_drop_copy(self, who: Identity, q: ReportQueue) -> None:
        with self._lock:
            q.close()
            subscribers = self._drop_copies.get(who.participant_id, [])
            if q in subscribers:
                subscribers.remove(q)

    def instrument_ids_for(self, symbols: Iterable[str]) -> list[int] | str:
        """Instrument ids for symbols (all for none); the first unknown symbol as a string."""
        symbols = list(symbols)
        if not symbols:
            return sorted(self.instruments)
        ids = []
        for s in symbols:
            inst = self.by_symbol.get(s)
            if inst is None:
                return s
            ids.append(inst.instrument_id)
        return sorted(set(ids))

    def _snapshot(self, instrument_id: int, depth: int = 0) -> mdpb.BookSnapshot:
        inst = self.instruments[instrument_id]
        book = self.engines[inst.asset_class].depth(instrument_id, depth)
        return self.market_data.snapshot(instrument_id, book, self.is_halted(instrument_id))

    def snapshot(self, instrument_id: int, depth: int = 0) -> mdpb.BookSnapshot:
        with self._lock:
            return self._snapshot(instrument_id, depth)

    def subscribe(self, instrument_ids: list[int]) -> tuple[Subscriber, list[mdpb.BookSnapshot]]:
        with self._lock:
            sub = Subscriber(frozenset(instrument_ids), self.config.limits.market_data_queue)
            self.market_data.attach(sub)
            return sub, [self._snapshot(i) for i in instrument_ids]

    def resync(self, sub: Subscriber) -> list[mdpb.BookSnapshot]:
        with self._lock:
            sub.reset()
            return [self._snapshot(i) for i in sorted(sub.instrument_ids)]

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self.market_data.detach(sub)

    # -- ACCOUNT QUERIES -------------------------------------------------------------------------

    def open_orders(self, who: Identity, symbol: str = "", after_order_id: int = 0,
                    limit: int = 0) -> tuple[list[tuple[OrderMeta, int, object]], bool]:
        """One page of the participant's resting orders in order id order, after ``after_order_id``
        (``limit`` 0: all of them), and whether more follow. The sequencer is held to copy the ids
        and then for the page's lookups only: a market maker's 100,000 orders are sorted outside."""
        with self._lock:
            ids = list(self._orders_of.get(who.participant_id, ()))
        if symbol:  # filtered outside the sequencer too (metas never change; one gone meanwhile is skipped)
            orders = self._orders
            ids = [oid for oid in ids if (meta := orders.get(oid)) is not None and meta.symbol == symbol]
        ids = sorted(order_id for order_id in ids if order_id > after_order_id)
        out: list[tuple[OrderMeta, int, object]] = []
        with self._lock:
            for order_id in ids:
                if limit and len(out) == limit:
                    return out, True  # a next page may turn out empty (its orders gone meanwhile)
                meta = self._orders.get(order_id)
                if meta is None or (symbol and meta.symbol != symbol):
                    continue
                view = self.engines[self.instruments[meta.instrument_id].asset_class].order(
                    meta.instrument_id, order_id)
                if view is not None:
                    out.append((meta, order_id, view))
        return out, False

    def executions(self, who: Identity, after_sequence: int, limit: int) -> list[cpb.ExecutionReport]:
        """The participant's reports of commands after ``after_sequence`` (at most ``limit``; 0: all)."""
        return self.executions_page(who, after_sequence, limit)[0]

    def executions_page(self, who: Identity, after_sequence: int, limit: int,
                        skip: int = 0) -> tuple[list[cpb.ExecutionReport], bool]:
        """One page of the participant's reports in sequence order, and whether more follow.
        ``skip`` > 0 pages inside one sequence's reports (many share one: a kill's settle step, a
        mass cancel): ``after_sequence``'s own reports are included too, after their first ``skip``."""
        with self._lock:
            history = self._history.get(who.participant_id, ())
            if skip:
                found = [r for r in history if r.sequence >= after_sequence]
            else:
                found = [r for r in history if r.sequence > after_sequence]
        found.sort(key=_sequence_of)  # stable: a sequence's own reports keep the order they were reported in
        if skip:
            own = 0
            while own < len(found) and found[own].sequence == after_sequence:
                own += 1
            del found[:min(skip, own)]
        more = bool(limit) and len(found) > limit
        found = found[:limit] if limit else found
        return [r.build() if type(r) is _RiskCancelReport else r for r in found], more

    def positions(self, who: Identity) -> list[tuple[int, int, Position]]:
        with self._lock:
            return [(account, iid, Position(p.bought, p.sold, p.net_cost_raw))
                    for (account, iid), p in sorted(self._positions.items())
                    if self._account_owner.get(account) == who.participant_id]

    # -- ADMIN ---------------------------------------------------------------------------------

    def _scope(self, symbol: str, asset_class: int) -> tuple[list[int], str] | str:
        """Instrument ids in scope and a label; an error text for a bad scope."""
        if symbol and asset_class:
            return "give a symbol or an asset class, not both"
        if symbol:
            inst = self.by_symbol.get(symbol)
            return ([inst.instrument_id], symbol) if inst else f"unknown symbol {symbol[:64]!r}"
        if asset_class:
            if asset_class not in AssetClass._value2member_map_:
                return f"unknown asset class {asset_class}"
            ac = AssetClass(asset_class)
            return [i.instrument_id for i in self.instruments.values() if i.asset_class == ac], ac.name
        return sorted(self.instruments), "hub"

    def set_halted(self, who: Identity, symbol: str, asset_class: int, halted: bool) -> tuple[int, str]:
        """Halt or resume trading in a scope. Returns (sequence, error text)."""
        scope = self._scope(symbol, asset_class)
        if isinstance(scope, str):
            return 0, scope
        self.scheduler.release_due()  # orders already due behind the floor go first
        seq, _ = self._record(EntryKind.ADMIN, who.participant_id,
                              {"action": "halt" if halted else "resume", "scope": scope[1], "symbol": symbol,
                               "asset_class": int(asset_class)})
        return seq, ""

    def _apply_admin(self, detail: dict) -> list[RiskEvent]:
        """Apply a journaled hub-level change (live, right after journaling it, and on replay);
        returns the risk events it raised (acted on live only)."""
        action = detail.get("action")
        at = detail.get("at", 0)
        if action == "batch":
            self.scheduler.continue_after(detail["batch"])
            return []
        if action == "risk_kill":
            return self.risk.kill(at, Scope(detail["scope"]), detail["target"] or None, mode=KillMode(detail["mode"]),
                                  operator=detail["operator"], note=detail.get("note", ""), list_hub_orders=False)
        if action == "risk_kill_record":  # a kill the hub itself decided (latency anomaly)
            return self.risk.kill_from_record(detail["record"])
        if action == "risk_resume_kill":  # after a restart: the cancels a crash interrupted
            ids = self.risk.orders_under_block()
            return [CancelOrders(ts=at, cause=CancelCause.KILL_SWITCH, scope=Scope.HUB, target="", order_ids=ids)] \
                if ids else []
        if action == "risk_lift":
            return self.risk.lift(at, Scope(detail["scope"]), detail["target"] or None, operator=detail["operator"])
        if action == "risk_limit":
            return self.risk.set_position_limit(at, detail["participant"], detail["instrument_id"], detail["base"])
        if action == "risk_tick":
            return self.risk.tick(at)
        if action in ("halt", "resume"):
            symbol, asset_class, halted = detail["symbol"], detail["asset_class"], action == "halt"
            ids, _ = self._scope(symbol, asset_class)
            before = {i: self.is_halted(i) for i in ids}
            if symbol:
                target, key = self._halted_symbols, self.by_symbol[symbol].instrument_id
            elif asset_class:
                target, key = self._halted_classes, AssetClass(asset_class)
            else:
                target, key = None, None
            if target is None:
                self._hub_halted = halted
            elif halted:
                target.add(key)
            else:
                target.discard(key)
            for i in ids:
                if self.is_halted(i) != before[i]:
                    self.market_data.publish_status(i, detail.get("seq", 0), self._clock(), self.is_halted(i),
                                                    self.last_ticket)
        elif action == "session_open":
            self._open_sessions[detail["session"]] = (detail["session"].rsplit("/", 1)[0], False)
        elif action == "session_options":
            pid, _ = self._open_sessions.get(detail["session"], (detail["session"].rsplit("/", 1)[0], False))
            self._open_sessions[detail["session"]] = (pid, bool(detail["cancel_on_disconnect"]))
        elif action == "session_close":
            self._open_sessions.pop(detail["session"], None)
            self.risk.on_session_closed(detail.get("at", 0), detail["session"])
        return []

    def end_of_session(self, who: Identity, symbol: str, asset_class: int) -> tuple[int, int, str]:
        """Expire DAY orders in a scope. Returns (first sequence, expired count, error text)."""
        scope = self._scope(symbol, asset_class)
        if isinstance(scope, str):
            return 0, 0, scope
        if symbol:
            inst = self.by_symbol[symbol]
            targets = [(inst.asset_class, inst.instrument_id)]
        elif asset_class:
            targets = [(AssetClass(asset_class), ALL_INSTRUMENTS)]
        else:
            targets = [(ac, ALL_INSTRUMENTS) for ac in self.engines]
        self.scheduler.release_due()  # orders already due behind the floor go first
        first, expired = 0, 0
        for ac, iid in targets:
            outcome = self._run_engine(ac, who.participant_id, "", who.participant_id, 1,
                                       lambda seq, ts, iid=iid: [EndOfSession(seq, ts, iid)])
            first = first or outcome.seq_first
            expired += sum(1 for ev in outcome.events if type(ev) is Expired)
        return first, expired, ""

    def status(self) -> dict:
        with self._lock:
            engines = []
            for ac, engine in self.engines.items():
                digest = engine.digest()
                ids = engine.instrument_ids
                engines.append({
                    "asset_class": int(ac), "implementation": engine.implementation,
                    "digest": digest.hex(),
                    "resting": sum(1 for m in self._orders.values() if m.instrument_id in ids),
                    "halted": [self.instruments[i].symbol for i in ids if self.is_halted(i)],
                })
            # The same digest the ledger's checkpoints sign: engines, fees and risk.
            return {"last_sequence": self._seq, "time": self._clock(), "digest": self.state_digest_bytes().hex(),
                    "engines": engines, "sessions": len(self._sessions),
                    "subscribers": self.market_data.subscriber_count()}

    def state_digest(self) -> str:
        return self.status()["digest"]
