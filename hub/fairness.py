"""Fairness controls: which orders wait, for how long, and in what order they are released.

Two presets of rule scopes:

* ``participant_class`` (the source documents' defaults): scalper orders must rest 50 us before
  they may be cancelled or replaced; institution orders wait behind a 100 us latency floor.
* ``order_attributes`` (IEX / TSX Alpha style): every new order waits behind the floor except
  post-only orders of at least a minimum size, and every resting order must rest the minimum
  time, whoever sent it. Regulators have rejected delays keyed on who the participant is (the
  SEC disapproved Cboe EDGA's asymmetric delay in 2020), so this is the preset for a regulated
  venue.

Time is hub time (ns) throughout. The ``ReleaseScheduler`` holds commands until their release
time and hands them to the sequencer strictly in release-time order (ties by arrival), so an
order that arrives later with no floor can be sequenced ahead of a delayed one. Optional
EBS-style randomised batching per asset class: commands arriving within a window of random
length are released together, cancels first (in arrival order), then the rest in a random
order drawn from a seeded generator whose seed is journaled, so the shuffle can be audited.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from hub.config import ParticipantClass
from matching.types import AssetClass, OrderType, TimeInForce

log = logging.getLogger(__name__)


class FairnessReject(IntEnum):
    """The 6xx range of RejectReason: fairness rules."""

    MIN_RESTING_TIME = 601  # cancel / replace before the order has rested long enough


class RestingMode(StrEnum):
    REJECT = "reject"  # an early cancel / replace is rejected with MIN_RESTING_TIME
    HOLD = "hold"  # it is held and applied the moment the order has rested long enough


class Preset(StrEnum):
    PARTICIPANT_CLASS = "participant_class"
    ORDER_ATTRIBUTES = "order_attributes"
    OFF = "off"


@dataclass(frozen=True, kw_only=True, slots=True)
class Scope:
    """Which orders a rule applies to; None means "any"."""

    participant_classes: frozenset[ParticipantClass] | None = None
    order_types: frozenset[int] | None = None
    post_only: bool | None = None
    liquidity_taking: bool | None = None
    min_quantity: int | None = None  # applies only to orders at least this large
    exempt_post_only_min_quantity: int | None = None  # post-only orders this large are exempt

    def applies(self, pclass: ParticipantClass, order_type: int, post_only: bool, taking: bool,
                quantity: int) -> bool:
        if self.participant_classes is not None and pclass not in self.participant_classes:
            return False
        if self.order_types is not None and order_type not in self.order_types:
            return False
        if self.post_only is not None and post_only != self.post_only:
            return False
        if self.liquidity_taking is not None and taking != self.liquidity_taking:
            return False
        if self.min_quantity is not None and quantity < self.min_quantity:
            return False
        exempt = self.exempt_post_only_min_quantity
        return not (exempt is not None and post_only and quantity >= exempt)


@dataclass(frozen=True, kw_only=True, slots=True)
class FairnessConfig:
    preset: Preset = Preset.PARTICIPANT_CLASS
    min_resting_ns: int = 50_000
    min_resting_mode: RestingMode = RestingMode.REJECT
    latency_floor_ns: int = 100_000
    post_only_exempt_min_quantity: int = 100  # order_attributes preset: big post-only orders skip the floor
    #: Asset class -> (min, max) batch window in ns; absent: no batching for that class.
    batching: dict[AssetClass, tuple[int, int]] = field(default_factory=dict)
    batch_seed: int = 0  # 0: the hub draws one at start; each batch's derived seed is journaled

    def resting_scope(self) -> Scope | None:
        if self.preset == Preset.PARTICIPANT_CLASS:
            return Scope(participant_classes=frozenset({ParticipantClass.SCALPER}))
        if self.preset == Preset.ORDER_ATTRIBUTES:
            return Scope()
        return None

    def floor_scope(self) -> Scope | None:
        if self.preset == Preset.PARTICIPANT_CLASS:
            return Scope(participant_classes=frozenset({ParticipantClass.INSTITUTION}))
        if self.preset == Preset.ORDER_ATTRIBUTES:
            return Scope(exempt_post_only_min_quantity=self.post_only_exempt_min_quantity)
        return None

    def validated(self) -> FairnessConfig:
        if self.min_resting_ns < 0 or self.latency_floor_ns < 0:
            raise ValueError("fairness durations must not be negative")
        for ac, (lo, hi) in self.batching.items():
            if not 0 < lo <= hi:
                raise ValueError(f"batch window for {AssetClass(ac).name} must satisfy 0 < min <= max")
        return self


def is_liquidity_taking(order_type: int, time_in_force: int, post_only: bool, marketable: bool) -> bool:
    """Taking = market, IOC/FOK, or a limit order that would cross the book when it arrives."""
    if post_only:
        return False
    return order_type == OrderType.MARKET or time_in_force in (TimeInForce.IOC, TimeInForce.FOK) or marketable


class FairnessRules:
    """Decides, per order, the latency floor and the minimum resting time (in ns)."""

    def __init__(self, config: FairnessConfig) -> None:
        self.config = config.validated()
        self._resting = config.resting_scope()
        self._floor = config.floor_scope()

    def floor_ns(self, pclass: ParticipantClass, order_type: int, post_only: bool, taking: bool, quantity: int) -> int:
        if self._floor is None or not self._floor.applies(pclass, order_type, post_only, taking, quantity):
            return 0
        return self.config.latency_floor_ns

    def min_resting_ns(self, pclass: ParticipantClass, order_type: int, post_only: bool, quantity: int) -> int:
        if self._resting is None or not self._resting.applies(pclass, order_type, post_only, False, quantity):
            return 0
        return self.config.min_resting_ns

    def batch_window(self, asset_class: AssetClass) -> tuple[int, int] | None:
        return self.config.batching.get(asset_class)


# -- RELEASE SCHEDULING ---------------------------------------------------------------------------


@dataclass(order=True)
class _Held:
    release_ns: int
    order: int  # arrival order: ties release first-come first-served
    run: Callable[[int], object] = field(compare=False)  # run(actual_release_ns) under the sequencer
    future: Future = field(compare=False)
    scheduled_ns: int = field(compare=False, default=0)


@dataclass
class _Batch:
    number: int
    window_end_ns: int
    window_ns: int
    seed: int
    cancels: list[_Held] = field(default_factory=list)
    others: list[_Held] = field(default_factory=list)


def batch_permutation(seed: int, count: int) -> list[int]:
    """The release order of a batch's non-cancel commands: a Fisher-Yates shuffle driven by
    SHA-256 in counter mode, so anyone with the journaled seed can recompute it exactly."""
    order = list(range(count))
    for i in range(count - 1, 0, -1):
        draw = int.from_bytes(hashlib.sha256(seed.to_bytes(16, "little") + i.to_bytes(8, "little")).digest()[:8],
                              "little")
        j = draw % (i + 1)  # modulo bias < 2**-40 for any realistic batch size
        order[i], order[j] = order[j], order[i]
    return order


def derive(seed: int, *parts: int) -> int:
    """A sub-seed, deterministically derived from the journaled hub seed."""
    data = seed.to_bytes(16, "little") + b"".join(p.to_bytes(8, "little", signed=True) for p in parts)
    return int.from_bytes(hashlib.sha256(data).digest()[:16], "little")


class LatenessStats:
    """How late held commands were released against their scheduled release time."""

    def __init__(self, keep: int = 100_000) -> None:
        self._samples: list[int] = []
        self._keep = keep

    def add(self, lateness_ns: int) -> None:
        if len(self._samples) < self._keep:
            self._samples.append(lateness_ns)

    def percentiles(self) -> dict[str, float]:
        if not self._samples:
            return {"count": 0, "p50_us": 0.0, "p99_us": 0.0, "max_us": 0.0}
        s = sorted(self._samples)
        return {"count": len(s), "p50_us": s[len(s) // 2] / 1000, "p99_us": s[min(len(s) - 1, int(len(s) * 0.99))] / 1000,
                "max_us": s[-1] / 1000}

    def reset(self) -> None:
        self._samples = []


#: The scheduler sleeps on a timed wait until this long before the next release, then yields the CPU
#: in a loop until it is due. Measured (python -m hub.fairness_bench, and an A/B of the strategies):
#: time.sleep(0) is no yield but a ~60 us sleep (Linux's default 50 us timer slack), which made the
#: old last stretch (sleep(0) from 100 us before) release ~50-60 us late at p50; with 1 ns timer slack
#: the timed wait wakes within ~10 us, and sched_yield() in the last 20 us brings p50 to ~5-10 us at
#: the same CPU cost (the stretch is short).
_SPIN_NS = 20_000
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def _precise_timers() -> None:
    """Ask Linux for 1 ns timer slack on the calling thread (default 50 us): its timed waits then
    wake within a few us of their deadline. A no-op elsewhere or if refused."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK = 29
    except (OSError, AttributeError):
        pass


def _resolve(future: Future, result: object = None, error: BaseException | None = None) -> None:
    """Hand a released command's result to its caller. A caller that cancelled its future (it went
    away) is not there to hear it: the command ran all the same, and the scheduler goes on."""
    try:
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass


class ReleaseScheduler:
    """Holds commands until their release time; releases them in release-time order.

    ``sequencer`` is the hub's sequencer lock. Released work runs while holding it, either on
    the scheduler's own thread or, when a command that needs no hold arrives, on that command's
    thread first (``release_due``), so nothing due is ever overtaken.
    """

    def __init__(self, sequencer: threading.RLock, clock: Callable[[], int], seed: int,
                 on_batch: Callable[[AssetClass, _Batch, list[int]], None] | None = None) -> None:
        self._sequencer = sequencer
        self._clock = clock
        self._seed = seed
        self._on_batch = on_batch
        self._heap: list[_Held] = []
        self._batches: dict[AssetClass, _Batch] = {}
        self._closed: list[tuple[AssetClass, _Batch, list[int]]] = []
        self._batch_numbers = itertools.count(1)
        self._last_batch = 0
        self._arrivals = itertools.count()
        self._cv = threading.Condition(threading.Lock())
        self._stop = False
        self.lateness = LatenessStats()
        self._thread = threading.Thread(target=self._run, name="release-scheduler", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._cv:
            return len(self._heap) + sum(len(b.cancels) + len(b.others) for b in self._batches.values())

    def hold(self, release_ns: int, run: Callable[[int], object]) -> Future:
        future: Future = Future()
        with self._cv:
            heapq.heappush(self._heap, _Held(release_ns, next(self._arrivals), run, future, release_ns))
            self._cv.notify()
        return future

    def batch(self, asset_class: AssetClass, window: tuple[int, int], arrival_ns: int, is_cancel: bool,
              run: Callable[[int], object]) -> Future:
        future: Future = Future()
        with self._cv:
            current = self._batches.get(asset_class)
            if current is not None and current.window_end_ns <= arrival_ns:
                self._close_batch(asset_class)  # its window is over: this command opens the next one
                current = None
            if current is None:
                number = next(self._batch_numbers)
                self._last_batch = number
                seed = derive(self._seed, int(asset_class), number)
                lo, hi = window
                length = lo + seed % (hi - lo + 1)
                current = self._batches[asset_class] = _Batch(number, arrival_ns + length, length, seed)
            held = _Held(current.window_end_ns, next(self._arrivals), run, future, current.window_end_ns)
            (current.cancels if is_cancel else current.others).append(held)
            self._cv.notify()
        return future

    def continue_after(self, batch_number: int) -> None:
        """Recovery: go on numbering after the last journaled batch, so a configured seed never
        gives the same windows and shuffles twice."""
        with self._cv:
            if batch_number >= self._last_batch:
                self._last_batch = batch_number
                self._batch_numbers = itertools.count(batch_number + 1)

    def _close_batch(self, ac: AssetClass) -> None:
        """Move a batch into the release heap in its shuffled order (cancels first), all with the
        batch's release time and rising tie-breakers so it stays contiguous."""
        b = self._batches.pop(ac)
        permutation = batch_permutation(b.seed, len(b.others))
        for item in b.cancels + [b.others[i] for i in permutation]:
            item.order = next(self._arrivals)
            heapq.heappush(self._heap, item)
        self._closed.append((ac, b, permutation))

    def _due(self, now: int) -> tuple[list[_Held], list[tuple[AssetClass, _Batch, list[int]]]]:
        """Pop everything due by ``now`` in release order, with the batches closed since last time."""
        for ac, b in list(self._batches.items()):
            if b.window_end_ns <= now:
                self._close_batch(ac)
        out: list[_Held] = []
        while self._heap and self._heap[0].release_ns <= now:
            out.append(heapq.heappop(self._heap))
        closed, self._closed = self._closed, []
        return out, closed

    def release_due(self, now: int | None = None) -> int:
        """Run everything due by ``now`` (default: the clock); call with or without the sequencer."""
        with self._sequencer:
            now = self._clock() if now is None else now
            with self._cv:
                due, closed = self._due(now)
            try:
                if self._on_batch is not None:
                    for ac, b, permutation in closed:
                        self._on_batch(ac, b, permutation)
            except Exception as exc:  # noqa: BLE001 - the batch's record was refused (ledger down)
                # Nothing it released runs: each waiting caller hears why (UNAVAILABLE) instead of
                # waiting forever, and whoever called (often the scheduler's own thread) goes on.
                log.warning("released orders refused: their batch could not be journaled: %s", exc)
                for item in due:
                    _resolve(item.future, error=exc)
                return 0
            for item in due:
                actual = self._clock()
                self.lateness.add(max(0, actual - item.scheduled_ns))
                try:
                    result = item.run(actual)
                except BaseException as exc:  # noqa: BLE001 - the waiting caller re-raises it
                    _resolve(item.future, error=exc)
                else:
                    _resolve(item.future, result)
            return len(due)

    def _next_release(self) -> int | None:
        times = [h.release_ns for h in self._heap[:1]] + [b.window_end_ns for b in self._batches.values()]
        return min(times) if times else None

    def _run(self) -> None:
        _precise_timers()
        while True:
            with self._cv:
                while not self._stop and self._next_release() is None:
                    self._cv.wait()
                if self._stop:
                    return
                wait_ns = self._next_release() - self._clock()
                if wait_ns > _SPIN_NS:
                    self._cv.wait((wait_ns - _SPIN_NS) / 1e9)  # sleep most of the way, wake on new work
                    continue
            if wait_ns > 0:
                _yield()  # the last stretch: give the CPU up without a timer, re-check
                continue
            self.release_due()

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(5)
