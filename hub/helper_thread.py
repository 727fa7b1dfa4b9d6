"""A second thread for the sequencer to hand one half of a GIL-free job to.

A kill empties every engine at once. The Cython engines let go of the GIL while they empty their
books, so two threads can empty two engines on two cores at the same time; the sequencer keeps one
half of the engines and gives the other half to this thread, which is started once (one for the
process, shared by every hub in it) and then waits.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")


class _Job(Generic[U]):
    __slots__ = ("run", "done", "result", "error", "awaited")

    def __init__(self, run: Callable[[], U], awaited: bool = True) -> None:
        self.run = run
        self.done = threading.Event()
        self.result: U | None = None
        self.error: BaseException | None = None
        self.awaited = awaited


class HelperThread:
    """One daemon thread that runs a job beside the caller: ``beside(here, there)`` runs ``there`` on
    the helper and ``here`` on the calling thread, and returns both results once both are done (an
    exception in either is raised in the caller, after both have finished). Jobs run one at a
    time (callers on several threads queue up); a job must not call ``beside`` itself."""

    def __init__(self, name: str = "hub-helper") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.result = job.run()
            except BaseException as exc:  # handed to the caller, which raises it
                job.error = exc
                if not job.awaited:
                    _log.exception("background job %r failed", job.run)
            finally:
                job.done.set()

    def beside(self, here: Callable[[], T], there: Callable[[], U]) -> tuple[T, U]:
        job: _Job[U] = _Job(there)
        self._jobs.put(job)
        try:
            mine = here()
        finally:
            job.done.wait()  # never return (or raise) while the helper still works on shared state
        if job.error is not None:
            raise job.error
        return mine, job.result  # type: ignore[return-value]

    def submit(self, run: Callable[[], object]) -> None:
        """Run ``run`` on the helper when it is free, without waiting for it (a failure is logged)."""
        self._jobs.put(_Job(run, awaited=False))

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)


_shared: HelperThread | None = None
_shared_lock = threading.Lock()


def shared_helper() -> HelperThread:
    """The process's helper thread, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = HelperThread()
        return _shared


def _forget_in_child() -> None:
    """A forked child has none of the parent's threads: its first use starts its own helper."""
    global _shared, _shared_lock
    _shared, _shared_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
