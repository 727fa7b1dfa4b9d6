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


def cpu_times(path: str = "/proc/stat") -> tuple[int, int] | None:
    """(stolen, total) CPU time of all CPUs since boot, in clock ticks, from Linux's ``/proc/stat``;
    None where there is no such file. Stolen time is what the hypervisor gave other guests while this
    VM wanted to run: the other half of what ``python_loop_ns`` sees."""
    try:
        with open(path) as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return steal, user + nice + system + idle + iowait + irq + softirq + steal


def steal_fraction(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of all CPU time between two ``cpu_times`` readings that the hypervisor took."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def describe(loop_ns: float, stolen: float | None = None) -> str:
    line = (f"machine speed: {loop_ns:.1f} ns per iteration of a pure-Python loop (hub.machine; lower is faster: "
            f"compare figures between runs at similar speeds)")
    if stolen is not None:
        line += (f"\nCPU time taken by the hypervisor during the run (steal): {100 * stolen:.1f} % of all CPU time "
                 f"(a few % and more: other guests disturbed the figures)")
    return line
