"""Risk cancels carried out in two sequenced phases: cancelled in the engine (and on record) first,
settled in the hub's own state after.

A kill switch must take thousands of orders out of the books within milliseconds. Removing them
from a book is a native engine call (about 0.2 us an order); releasing their risk exposure,
dropping them from the order registry and writing their execution reports is Python (about 1 us an
order). So a ``risk_cancel`` step only cancels in the engine and journals the result; the orders
then wait here, in the order they were cancelled, until ``risk_settle`` steps (journaled too, so a
replay interleaves them with other commands exactly as live) finish them off.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class CancelStep:
    """The orders one ``risk_cancel`` step took out of an engine, at its sequence number and time;
    ``settled`` of them (from the front) are settled already."""

    seq: int
    ts: int
    order_ids: list[int]
    settled: int = 0


class UnsettledCancels:
    """Orders cancelled in an engine whose hub state (risk exposure, registry, reports) is not yet
    settled, oldest first. Deterministic: replay fills and takes it exactly as the live hub did."""

    def __init__(self) -> None:
        self._steps: deque[CancelStep] = deque()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, seq: int, ts: int, order_ids: list[int]) -> None:
        if order_ids:
            self._steps.append(CancelStep(seq, ts, order_ids))
            self._count += len(order_ids)

    def take(self, limit: int) -> list[tuple[int, int, list[int]]]:
        """Up to ``limit`` of the oldest orders, as (cancel seq, cancel ts, order ids) per step."""
        out: list[tuple[int, int, list[int]]] = []
        while limit > 0 and self._steps:
            step = self._steps[0]
            end = min(step.settled + limit, len(step.order_ids))
            ids = step.order_ids[step.settled:end]
            out.append((step.seq, step.ts, ids))
            limit -= len(ids)
            self._count -= len(ids)
            step.settled = end
            if end == len(step.order_ids):
                self._steps.popleft()
        return out
