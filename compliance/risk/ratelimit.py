"""Integer token buckets: per participant x instrument order rate, per session message rate.

A bucket is ``[level, last_ts]``. One message costs ``TOKEN`` = 10**9 units and the bucket
refills ``rate`` units per ns (``rate`` messages per second = rate x 10**9 units per 10**9 ns),
so a bucket of 50/s refills one message every 20,000,000 ns exactly, with no rounding at all.
Capacity is ``burst x TOKEN``; a fresh bucket is full. Levels are brought up to date lazily
from hub time, so checking is pure (``level`` does not mutate) and only ``take`` changes state:
the hub calls ``take`` (through ``RiskEngine.on_order_entered``) for every order it sequences,
which makes the bucket a function of the ledger. Hub time never goes backwards in sequence
order; if it did, no refill is credited for the negative interval.
"""

from __future__ import annotations

TOKEN = 1_000_000_000


def level(bucket: list[int] | None, ts: int, rate: int, capacity: int) -> int:
    """Tokens (in units) available at ``ts`` without changing the bucket."""
    if bucket is None:
        return capacity
    elapsed = ts - bucket[1]
    if elapsed <= 0:
        return bucket[0]
    filled = bucket[0] + elapsed * rate
    return capacity if filled > capacity else filled


def take(bucket: list[int] | None, ts: int, rate: int, capacity: int) -> list[int]:
    """Consume one message at ``ts`` (the level may go negative if the hub sequenced an order the
    check would have refused, e.g. on a config change; it then refills from below zero)."""
    now = level(bucket, ts, rate, capacity) - TOKEN
    last = ts if bucket is None or ts > bucket[1] else bucket[1]
    if bucket is None:
        return [now, last]
    bucket[0] = now
    bucket[1] = last
    return bucket
