"""Helpers of the fairness tier: a hub on a fake clock, blocked calls in threads, journal lookups.

The hub under test runs its real ``ReleaseScheduler`` (thread included) on a ``FakeClock``:
nothing is released until a test moves the clock, and every hub time (arrival, release,
sequencing) is an exact number the test chose. Calls that the fairness rules hold (a delayed
order, a held cancel, a batched command) block their caller, so they run in threads
(``InProcessHub.start``); a test waits until ``hub.scheduler.pending`` shows them held before it
moves the clock on, then calls ``release`` (set the clock, ``scheduler.release_due()``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from hub.auth import Identity
from hub.config import HubConfig
from hub.core import Hub, OrderSpec
from hub.fairness import FairnessConfig
from hub.journal import EntryKind, InMemoryJournal, Journal, JournalEntry
from hub.v1 import common_pb2 as cpb
from matching.types import Cancel, NewOrder, Rejected, Replace, Trade, decode_commands

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns: the fake clock's start
P = 190_0000  # AAPL reference price (tick 100)
TICK = 100
FX_REF = 1_08500  # EURUSD reference price (tick 1, lot 1000)
FX_LOT = 1_000


class FakeClock:
    """Hub time that moves only when a test moves it (``now`` is settable)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> int:
        self.now += ns
        return self.now


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.0002)


def risk_out_of_the_way(config: HubConfig) -> HubConfig:
    """Pre-trade rate limits and the latency kill switch raised out of the tests' way: these tests
    send hundreds of orders per (fake) second and hold orders deliberately for up to 200 ms, which
    the default limits (50 orders/s per instrument, kill after 3 acks slower than 50 ms) would stop."""
    risk = getattr(config, "risk", None)
    if risk is None:
        return config
    many = 1_000_000
    return replace(config, risk=replace(
        risk, rates=replace(risk.rates, orders_per_second=many, order_burst=many, session_messages_per_second=many,
                            session_burst=many),
        breakers=replace(risk.breakers, latency_threshold_ns=3_600 * 10**9)))


def config_with(fairness: FairnessConfig, **changes: Any) -> HubConfig:
    return risk_out_of_the_way(replace(HubConfig.default(), fairness=fairness, **changes))


@dataclass
class Result:
    """What one order-entry call returned: ``(outcome, reject reason, text)`` unpacked."""

    outcome: Any
    reason: int
    text: str

    @property
    def seq(self) -> int:
        assert self.outcome is not None, f"refused at the gateway: {self.reason} {self.text}"
        return self.outcome.seq_first

    @property
    def ts(self) -> int:
        return self.outcome.ts

    @property
    def order_id(self) -> int:
        return self.seq

    def events(self, kind: type) -> list:
        return [ev for ev in self.outcome.events if type(ev) is kind]


class SwitchableJournal(InMemoryJournal):
    """An in-memory journal whose storage a test takes down (``up = False``) and brings back: while
    down the hub refuses new commands, as it does when the durable ledger fails."""

    up = True
    error = "OperationalError: database is locked (simulated)"

    @property
    def available(self) -> bool:
        return self.up


class TeeJournal:
    """A journal (the durable ledger) whose entries are also kept in memory for the test to read."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self._entries: list[JournalEntry] = []

    def append(self, entry: JournalEntry) -> int:
        ticket = self.inner.append(entry)
        self._entries.append(entry)  # called under the hub's sequencer: in sequence order
        return ticket

    def entries(self) -> list[JournalEntry]:
        return list(self._entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class InProcessHub:
    """A hub on a fake clock plus the dev participants' identities."""

    def __init__(self, fairness: FairnessConfig, journal: Journal | None = None, clock: FakeClock | None = None,
                 config: HubConfig | None = None) -> None:
        self.clock = clock or FakeClock()
        self.config = config or config_with(fairness)
        self.hub = Hub(self.config, journal, clock=self.clock)
        self.who = {p.id: Identity.of(p) for p in self.config.participants}

    def close(self) -> None:
        self.hub.scheduler.close()

    # -- calls

    def submit(self, participant: str, symbol: str, side: int, quantity: int, price: int, *, post_only: bool = False,
               tif: int = cpb.GTC, order_type: int = cpb.LIMIT, session_id: str = "",
               stp: int = cpb.STP_MODE_UNSPECIFIED) -> Result:
        spec = OrderSpec(symbol, side, order_type, tif, price, quantity, post_only=post_only, stp_mode=stp)
        return Result(*self.hub.submit_order(self.who[participant], spec, session_id))

    def cancel(self, participant: str, symbol: str, order_id: int) -> Result:
        return Result(*self.hub.cancel_order(self.who[participant], symbol, order_id))

    def replace(self, participant: str, symbol: str, order_id: int, price: int, quantity: int) -> Result:
        return Result(*self.hub.replace_order(self.who[participant], symbol, order_id, price, quantity))

    def start(self, fn: Callable[..., Result], *args: Any, **kwargs: Any) -> Future:
        """Run a call that may be held on a (daemon) thread; its Result comes through the future.

        Daemon: a call a broken hub never releases fails its test by timeout, not the run by hanging."""
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - re-raised by future.result()
                future.set_exception(exc)

        threading.Thread(target=run, name="fair-call", daemon=True).start()
        return future

    def start_held(self, fn: Callable[..., Result], *args: Any, **kwargs: Any) -> Future:
        """Start a call and wait until the scheduler holds it (``pending`` went up by one)."""
        before = self.hub.scheduler.pending
        future = self.start(fn, *args, **kwargs)
        wait_until(lambda: self.hub.scheduler.pending > before or future.done(), what="the call to be held")
        if future.done():
            raise AssertionError(f"call was not held: {future.result()}")
        return future

    def call(self, fn: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        """A call that must not be held: its result, or AssertionError (never a hung test)."""
        return self.start(fn, *args, **kwargs).result(timeout=10)

    # -- time

    def release(self, at: int) -> None:
        """Move the clock to ``at`` and release what is due (the scheduler's thread may get there first)."""
        self.clock.now = at
        self.hub.scheduler.release_due()

    # -- journal and engine truth

    def entries(self) -> list[JournalEntry]:
        return self.hub.journal.entries()

    def entry(self, seq: int) -> JournalEntry:
        found = [e for e in self.entries() if e.seq_first <= seq <= e.seq_last]
        assert found, f"no journal entry holds sequence {seq}"
        return found[0]

    def last_entry(self) -> JournalEntry:
        return self.entries()[-1]

    def resting(self, symbol: str) -> dict[int, Any]:
        inst = self.hub.by_symbol[symbol]
        with self.hub._lock:
            return {o.order_id: o for o in self.hub.engines[inst.asset_class].orders(inst.instrument_id)}


def detail(entry: JournalEntry) -> dict:
    return json.loads(entry.detail)


def command_of(entry: JournalEntry):
    (cmd,) = decode_commands(entry.commands)
    return cmd


def is_cancel(entry: JournalEntry) -> bool:
    return entry.kind == EntryKind.ENGINE and type(command_of(entry)) is Cancel


def kind_name(cmd: Any) -> str:
    return {NewOrder: "new", Cancel: "cancel", Replace: "replace"}.get(type(cmd), type(cmd).__name__)


def trades(result: Result) -> list[Trade]:
    return result.events(Trade)


def rejects(result: Result) -> list[Rejected]:
    return result.events(Rejected)


def hold_until_released(h: InProcessHub, futures: list[Future], at: int, timeout: float = 10.0) -> list[Result]:
    """Release at ``at`` and collect the held calls' results."""
    h.release(at)
    return [f.result(timeout=timeout) for f in futures]


def wait_all_done(futures: list[Future], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for f in futures:
        f.result(timeout=max(0.001, deadline - time.monotonic()))


def not_done_after(future: Future, wait: float = 0.05) -> bool:
    """True if ``future`` is still running after ``wait`` s (the scheduler had the chance to release it)."""
    try:
        future.result(timeout=wait)
    except TimeoutError:
        return True
    return False

