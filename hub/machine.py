"""How fast this machine runs Python right now, printed beside every benchmark's figures.

The VM these benchmarks run on has changed speed by 2-3x between sessions and within one (a fixed
pure-Python loop took 0.5 s one hour and 1.0 s the next, and 1.6 s on another day). A figure alone cannot tell a change in the
code from a change in the machine; the same figure beside this one can: compare runs at similar
loop speeds, or scale by it.
"""

from __future__ import annotations

import time

LOOP_ITERATIONS = 2_000_000


def python_loop_ns() -> float:
    """Nanoseconds per iteration of ``for i in range(n): s += i``, best of three short runs
    (about 0.1-0.3 s each here)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter_ns()
        s = 0
        for i in range(LOOP_ITERATIONS):
            s += i
        best = min(best, (time.perf_counter_ns() - started) / LOOP_ITERATIONS)
    return best


def describe(loop_ns: float) -> str:
    return (f"machine speed: {loop_ns:.1f} ns per iteration of a pure-Python loop (hub.machine; lower is faster: "
            f"compare figures between runs at similar speeds)")
