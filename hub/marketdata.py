"""Market data fan-out: one sequenced stream per instrument, bounded queues per subscriber.

``publish`` runs inside the sequencer's critical section and never blocks: a subscriber whose
queue is full is marked for resynchronisation and its backlog dropped, so a stalled reader
costs the engine and the other subscribers nothing. Snapshots are taken inside the same
critical section, so a snapshot's md_sequence is exactly the last update it includes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from hub.loop_bridge import LoopWakeable
from hub.v1 import market_data_pb2 as mdpb
from matching.types import BookDelta, Depth, Event, TopOfBook, Trade


class Subscriber(LoopWakeable):
    """One subscription's queue. Written by the sequencer, read by one streaming RPC."""

    def __init__(self, instrument_ids: frozenset[int], capacity: int) -> None:
        self.instrument_ids = instrument_ids
        self._capacity = capacity
        self._queue: deque[tuple[mdpb.MarketDataUpdate, int]] = deque()  # (update, journal ticket)
        self._cv = threading.Condition(threading.Lock())
        self.needs_resync = False
        self.closed = False
        self.dropped = 0

    def offer(self, update: mdpb.MarketDataUpdate, ticket: int = 0) -> None:
        with self._cv:
            if self.needs_resync or self.closed:
                self.dropped += 1
                return
            if len(self._queue) >= self._capacity:
                self.dropped += len(self._queue) + 1
                self._queue.clear()
                self.needs_resync = True
            else:
                self._queue.append((update, ticket))
            self._cv.notify()
            self._wake_loop()

    def take(self, timeout: float) -> tuple[list[mdpb.MarketDataUpdate], int]:
        """Everything queued (possibly nothing after ``timeout``) and the journal ticket that must
        be committed before it is sent; check needs_resync after."""
        with self._cv:
            if not self._has_news():
                self._cv.wait(timeout)
            return self._drain()

    async def take_async(self, timeout: float | None) -> tuple[list[mdpb.MarketDataUpdate], int]:
        """``take`` for the gateway's event loop: waits without blocking the loop."""
        await self._ready(self._has_news, timeout)
        with self._cv:
            return self._drain()

    def _has_news(self) -> bool:
        return bool(self._queue) or self.needs_resync or self.closed

    def _drain(self) -> tuple[list[mdpb.MarketDataUpdate], int]:
        items = [u for u, _ in self._queue]
        ticket = max((t for _, t in self._queue), default=0)
        self._queue.clear()
        return items, ticket

    def reset(self) -> None:
        """Called with the sequencer held, right before the fresh snapshot is taken."""
        with self._cv:
            self._queue.clear()
            self.needs_resync = False

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._cv.notify_all()
            self._wake_loop()


class _Channel:
    __slots__ = ("symbol", "md_seq", "subscribers")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.md_seq = 0
        self.subscribers: list[Subscriber] = []


class MarketDataHub:
    def __init__(self, symbols: dict[int, str]) -> None:
        self._channels = {iid: _Channel(sym) for iid, sym in symbols.items()}

    def subscriber_count(self) -> int:
        return len({id(s) for ch in self._channels.values() for s in ch.subscribers})

    def attach(self, sub: Subscriber) -> None:
        for iid in sub.instrument_ids:
            self._channels[iid].subscribers.append(sub)

    def detach(self, sub: Subscriber) -> None:
        sub.close()
        for iid in sub.instrument_ids:
            try:
                self._channels[iid].subscribers.remove(sub)
            except ValueError:
                pass

    def md_sequence(self, instrument_id: int) -> int:
        return self._channels[instrument_id].md_seq

    def snapshot(self, instrument_id: int, depth: Depth, halted: bool) -> mdpb.BookSnapshot:
        ch = self._channels[instrument_id]
        return mdpb.BookSnapshot(
            symbol=ch.symbol,
            md_sequence=ch.md_seq,
            bids=[mdpb.PriceLevel(price=p, quantity=q) for p, q in depth.bids],
            asks=[mdpb.PriceLevel(price=p, quantity=q) for p, q in depth.asks],
            halted=halted,
        )

    def _send(self, ch: _Channel, seq: int, ts: int, ticket: int = 0, **body) -> None:
        ch.md_seq += 1
        update = mdpb.MarketDataUpdate(symbol=ch.symbol, md_sequence=ch.md_seq, sequence=seq,
                                       hub_time_ns=ts, **body)
        for sub in ch.subscribers:
            sub.offer(update, ticket)

    def publish(self, seq: int, ts: int, events: Iterable[Event], ticket: int = 0) -> None:
        """Turn one command's engine events into public updates (never order ids or accounts);
        subscribers send them once journal ticket ``ticket`` is committed."""
        channels = self._channels
        for ev in events:
            t = type(ev)
            if t is BookDelta or t is Trade or t is TopOfBook:
                ch = channels[ev.instrument_id]
                if not ch.subscribers:
                    ch.md_seq += 1  # nobody listens: keep the sequence, skip building the message
                    continue
                if t is BookDelta:
                    self._send(ch, ev.seq, ts, ticket, delta=mdpb.BookDeltaUpdate(
                        side=ev.side, price=ev.price, quantity=ev.visible_quantity))
                elif t is Trade:
                    self._send(ch, ev.seq, ts, ticket, trade=mdpb.TradeUpdate(
                        trade_id=ev.trade_id, price=ev.price, quantity=ev.quantity,
                        aggressor_side=ev.aggressor_side))
                else:
                    self._send(ch, ev.seq, ts, ticket, top=mdpb.TopOfBookUpdate(
                        bid_price=ev.bid_price, bid_quantity=ev.bid_quantity,
                        ask_price=ev.ask_price, ask_quantity=ev.ask_quantity))

    def publish_status(self, instrument_id: int, seq: int, ts: int, halted: bool, ticket: int = 0) -> None:
        """A halt or resume; subscribers send it once journal ticket ``ticket`` (its record) is committed."""
        self._send(self._channels[instrument_id], seq, ts, ticket,
                   status=mdpb.TradingStatusUpdate(halted=halted))

