"""The serving process's garbage-collector policy: keep collector pauses short.

CPython's cyclic collector scans every tracked object of a generation it collects. A hub keeps
hundreds of thousands of long-lived objects (the order registry, execution histories, risk and
fee state), so in ``python -m hub.bench`` each full (generation 2) collection stopped the hub for
270-370 ms, and collected nothing; those pauses set the p99 of order acknowledgements and
saturated the unary path at 1,000 orders/s. A bare gRPC echo server paid 30-45 ms.

So a serving process freezes what survives: at start and then every ``freeze_interval_s`` the
objects the collector tracks move to the permanent generation (``gc.freeze``, constant time), and
later collections only scan what was allocated since. Plain garbage is still freed at once by
reference counting, and young reference cycles by the frequent young collections (after rounds of
1,500 orders over gRPC, ``collect_all`` found no cyclic garbage left behind). The cost: a cycle
that becomes garbage only after it was frozen stays until ``collect_all``, which an operator's
hub-wide end of session runs while the market is closed.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.config import HubConfig

log = logging.getLogger(__name__)


class GcPolicy:
    """Start with ``start()``; ``stop()`` ends the freezing thread (frozen objects stay frozen)."""

    def __init__(self, freeze_interval_s: float) -> None:
        self.freeze_interval_s = freeze_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, config: HubConfig) -> GcPolicy:
        return cls(config.network.gc_freeze_interval_ms / 1000)

    @property
    def enabled(self) -> bool:
        return self.freeze_interval_s > 0

    def start(self) -> None:
        """Freeze what exists now (modules, configuration, recovered state), then keep freezing."""
        if not self.enabled or self._thread is not None:
            return
        gc.collect()
        gc.freeze()
        self._thread = threading.Thread(target=self._run, name="gc-freeze", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.freeze_interval_s):
            gc.freeze()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def collect_all(self) -> tuple[int, float]:
        """Thaw everything, collect it all once (one long pause), freeze the survivors again.
        Returns (objects collected, seconds paused)."""
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        if self.enabled:
            gc.freeze()
        paused = time.perf_counter() - started
        log.info("full garbage collection: %d objects collected in %.0f ms", collected, paused * 1000)
        return collected, paused
