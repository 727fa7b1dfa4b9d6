"""Helpers of the integration tier: engine truth read under the sequencer, polling, stream draining."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hub.client import LocalBook, Stream
from hub.core import Hub
from hub.v1 import common_pb2 as cpb

HOST = "127.0.0.1"
P = 190_0000  # AAPL reference price (tick 100, price scale 4)
TICK = 100
M = 420_0000  # MSFT reference price

ACCOUNTS = {"scalper-1": 1001, "scalper-2": 1002, "inst-1": 2001, "inst-2": 2003, "mm-1": 3001}


def token(participant: str) -> str:
    return f"dev-{participant}"


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.005,
               what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; its value, or AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- ENGINE TRUTH (read with the sequencer held, so never mid-command) ------------------------


def engine_depth(hub: Hub, symbol: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    inst = hub.by_symbol[symbol]
    with hub._lock:
        depth = hub.engines[inst.asset_class].depth(inst.instrument_id)
    return [tuple(level) for level in depth.bids], [tuple(level) for level in depth.asks]


def engine_orders(hub: Hub, symbol: str) -> list:
    """Resting orders of ``symbol`` in priority order (bids best first, then asks)."""
    inst = hub.by_symbol[symbol]
    with hub._lock:
        return list(hub.engines[inst.asset_class].orders(inst.instrument_id))


def engine_order(hub: Hub, symbol: str, order_id: int):
    inst = hub.by_symbol[symbol]
    with hub._lock:
        return hub.engines[inst.asset_class].order(inst.instrument_id, order_id)


def engine_digests(hub: Hub) -> dict[int, bytes]:
    with hub._lock:
        return {int(ac): engine.digest() for ac, engine in hub.engines.items()}


def md_sequence(hub: Hub, symbol: str) -> int:
    with hub._lock:
        return hub.market_data.md_sequence(hub.by_symbol[symbol].instrument_id)


def visible_from_orders(orders: list) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The L2 book implied by resting orders: what each shows (``display``) summed per level."""
    levels: dict[int, dict[int, int]] = {cpb.BUY: {}, cpb.SELL: {}}
    for o in orders:
        levels[o.side][o.price] = levels[o.side].get(o.price, 0) + o.display
    return (sorted(levels[cpb.BUY].items(), reverse=True), sorted(levels[cpb.SELL].items()))


def drop_copies_attached(hub: Hub, participant: str, count: int = 1, timeout: float = 5.0) -> None:
    """DropCopy sends nothing when it opens: wait until the hub has registered the stream."""
    wait_until(lambda: len(hub._drop_copies.get(participant, ())) >= count, timeout,
               what=f"{count} drop copies of {participant}")


# -- STREAMS ----------------------------------------------------------------------------------


def read_n(stream: Stream, n: int, timeout: float = 5.0) -> list:
    """Exactly ``n`` more messages of ``stream`` (AssertionError if they do not come in time)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        remaining = deadline - time.monotonic()
        try:
            item = stream.read(timeout=max(remaining, 0.001))
        except TimeoutError:
            raise AssertionError(f"only {len(out)} of {n} stream messages within {timeout} s: {out}") from None
        assert item is not None, f"stream ended after {len(out)} of {n} messages"
        out.append(item)
    return out


def assert_quiet(stream: Stream, wait: float = 0.2) -> None:
    """Nothing more arrives on ``stream`` within ``wait`` s."""
    try:
        item = stream.read(timeout=wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected stream message: {item}")


def follow_book(stream: Stream, book: LocalBook, md_seq: int, timeout: float = 10.0,
                seen: list | None = None) -> None:
    """Apply updates from ``stream`` to ``book`` until it has reached ``md_seq``."""
    deadline = time.monotonic() + timeout
    while book.md_sequence < md_seq or book.needs_snapshot:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"book {book!r} did not reach md_sequence {md_seq} in {timeout} s")
        try:
            update = stream.read(timeout=remaining)
        except TimeoutError:
            continue
        assert update is not None, "market data stream ended"
        if seen is not None:
            seen.append(update)
        book.apply(update)
