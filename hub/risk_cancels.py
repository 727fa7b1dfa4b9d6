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

import hashlib
from collections import deque
from dataclasses import dataclass

from ledger.records import pack_int64s
from matching.types import split_cancelled


@dataclass(frozen=True, slots=True)
class CancelStepEvents:
    """A ``cancel_orders`` step's events in columns: the Cancelled records' order ids and remaining
    quantities (packed little-endian int64, in event order) and the other records (the changed
    levels and tops) as they were. A kill's record lists thousands of cancels: these are sliced
    out of the engine's buffer in C, never decoded one by one."""

    order_ids: bytes
    remaining: bytes
    others: bytes
    events: int

    @property
    def cancelled(self) -> int:
        return len(self.order_ids) // 8

    def digest(self) -> str:
        """SHA-256 over the columns and the other records: everything the step's events say (a
        Cancelled record adds only the step's seq, the reason RISK and the order's own instrument
        and account), at a third of the bytes of the whole buffer."""
        return hashlib.sha256(self.order_ids + self.remaining + self.others).hexdigest()


def split_cancel_events(evbuf: bytes) -> CancelStepEvents:
    """The columns of a ``cancel_orders`` step's encoded events (what ``cancel_orders_columns``
    returns at once)."""
    return CancelStepEvents(*split_cancelled(evbuf))


def risk_cancel_detail(asset_class: int, cols: CancelStepEvents) -> bytes:
    """The canonical JSON detail of a ``risk_cancel`` record: exactly ``canonical_json`` of
    {action, asset_class, cancelled, digest_sha256, events, orders_le64, remaining_le64, settle},
    written directly (keys in canonical order; base64 and hex need no escaping). json.dumps scans
    the two long base64 strings character by character for escapes: 80 us a record of 2,500 orders,
    on the path of a kill."""
    return (f'{{"action":"risk_cancel","asset_class":{int(asset_class)},"cancelled":{cols.cancelled},'
            f'"digest_sha256":"{cols.digest()}","events":{cols.events},'
            f'"orders_le64":"{pack_int64s(cols.order_ids)}","remaining_le64":"{pack_int64s(cols.remaining)}",'
            f'"settle":"deferred"}}').encode("ascii")


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
