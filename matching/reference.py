"""The pure-Python reference engine: written to be obviously right, and the oracle for Cython.

Price-time priority on ``sortedcontainers.SortedDict`` price ladders with insertion-ordered dicts
as FIFO queues. Where the fast engine computes something cleverly (e.g. whether a fill-or-kill
order can fill), this one simply tries it on a copy of the book.
"""

from __future__ import annotations

import copy
import hashlib
from array import array
from dataclasses import dataclass, field

from sortedcontainers import SortedDict

from matching import validation
from matching.instruments import Instrument, check_engine_instruments
from matching.types import (
    ALL_INSTRUMENTS,
    COMMAND_KIND,
    DIGEST_BOOK_HEADER,
    DIGEST_ENGINE_HEADER,
    DIGEST_ORDER,
    RECORD_SIZE,
    RECORD_SLOTS,
    Accepted,
    AssetClass,
    BookDelta,
    Cancel,
    Cancelled,
    CancelReason,
    Command,
    CommandKind,
    Depth,
    Done,
    EndOfSession,
    Event,
    Expired,
    MassCancel,
    MassCancelReport,
    NewOrder,
    OrderType,
    OrderView,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    SessionEndReport,
    Side,
    StpMode,
    TimeInForce,
    TopOfBook,
    Trade,
    decode_commands,
    encode_events,
    split_cancelled,
)


@dataclass(slots=True)
class _Order:
    order_id: int
    account: int
    side: int
    price: int  # 0 for a market order (never rests)
    remaining: int
    display: int  # visible slice while resting
    display_size: int  # iceberg peak, 0 for a plain order
    time_in_force: int
    post_only: int
    stp_mode: int
    is_market: bool = False

    def view(self) -> OrderView:
        return OrderView(
            self.order_id, self.account, self.side, self.price, self.remaining, self.display,
            self.display_size, self.time_in_force, self.post_only, self.stp_mode,
        )


@dataclass(slots=True)
class _Level:
    price: int
    queue: dict[int, _Order] = field(default_factory=dict)  # insertion order is time priority
    visible: int = 0


class _Book:
    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        # Bids keyed by -price so that index 0 is the best level on both sides.
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[int, _Order] = {}

    def ladder(self, side: int) -> SortedDict:
        return self.bids if side == Side.BUY else self.asks

    @staticmethod
    def key(side: int, price: int) -> int:
        return -price if side == Side.BUY else price

    def best(self, side: int) -> _Level | None:
        ladder = self.ladder(side)
        return ladder.peekitem(0)[1] if ladder else None

    def top(self) -> tuple[int, int, int, int]:
        bid, ask = self.best(Side.BUY), self.best(Side.SELL)
        return (
            bid.price if bid else 0, bid.visible if bid else 0,
            ask.price if ask else 0, ask.visible if ask else 0,
        )

    def level_visible(self, side: int, price: int) -> int:
        level = self.ladder(side).get(self.key(side, price))
        return level.visible if level else 0

    def rest(self, order: _Order) -> None:
        ladder = self.ladder(order.side)
        key = self.key(order.side, order.price)
        level = ladder.get(key)
        if level is None:
            level = ladder[key] = _Level(order.price)
        level.queue[order.order_id] = order
        level.visible += order.display
        self.orders[order.order_id] = order

    def remove(self, order: _Order) -> None:
        ladder = self.ladder(order.side)
        key = self.key(order.side, order.price)
        level = ladder[key]
        del level.queue[order.order_id]
        level.visible -= order.display
        if not level.queue:
            del ladder[key]
        del self.orders[order.order_id]

    def resting_in_priority_order(self):
        for ladder in (self.bids, self.asks):
            for level in ladder.values():
                yield from level.queue.values()

    def digest(self) -> bytes:
        h = hashlib.sha256(DIGEST_BOOK_HEADER.pack(b"BOOK", self.instrument.instrument_id))
        for o in self.resting_in_priority_order():
            h.update(DIGEST_ORDER.pack(*o.view()))
        return h.digest()


class _Emitter:
    """Collects one command's events; book deltas and top of book are flushed per book."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.events: list[Event] = []
        self._touched: dict[tuple[int, int], int] = {}  # (side, price) -> visible before
        self._top_before: tuple[int, int, int, int] | None = None

    def begin_book(self, book: _Book) -> None:
        self._touched = {}
        self._top_before = book.top()

    def touch(self, book: _Book, side: int, price: int) -> None:
        if (side, price) not in self._touched:
            self._touched[(side, price)] = book.level_visible(side, price)

    def flush_book(self, book: _Book) -> None:
        iid = book.instrument.instrument_id
        for (side, price), before in self._touched.items():
            now = book.level_visible(side, price)
            if now != before:
                self.events.append(BookDelta(self.seq, iid, side, price, now))
        top = book.top()
        if top != self._top_before:
            self.events.append(TopOfBook(self.seq, iid, *top))
        self._touched = {}
        self._top_before = None


class ReferenceEngine:
    """One asset class's books, driven by commands; deterministic and single-threaded."""

    implementation = "reference"
    releases_gil = False  # pure Python: no two of its steps ever run at once

    def __init__(self, asset_class: AssetClass, instruments: tuple[Instrument, ...]) -> None:
        self.asset_class = AssetClass(asset_class)
        check_engine_instruments(self.asset_class, instruments)
        self._books = {i.instrument_id: _Book(i) for i in sorted(instruments, key=lambda i: i.instrument_id)}
        self.last_order_id = 0
        self.last_trade_id = 0
        self.last_seq = 0

    # -- QUERIES -------------------------------------------------------------------------------

    @property
    def instrument_ids(self) -> list[int]:
        return list(self._books)

    @property
    def resting_count(self) -> int:
        return sum(len(book.orders) for book in self._books.values())

    def depth(self, instrument_id: int, levels: int = 0) -> Depth:
        if levels < 0:
            raise ValueError("levels must be >= 0 (0: every level)")
        book = self._books[instrument_id]
        def side(ladder: SortedDict) -> list[tuple[int, int]]:
            out = [(lv.price, lv.visible) for lv in ladder.values()]
            return out[:levels] if levels else out
        return Depth(side(book.bids), side(book.asks))

    def orders(self, instrument_id: int) -> list[OrderView]:
        """Resting orders in priority order: bids best first, then asks best first."""
        return [o.view() for o in self._books[instrument_id].resting_in_priority_order()]

    def order(self, instrument_id: int, order_id: int) -> OrderView | None:
        o = self._books[instrument_id].orders.get(order_id)
        return o.view() if o else None

    def book_digest(self, instrument_id: int) -> bytes:
        return self._books[instrument_id].digest()

    def digest(self) -> bytes:
        h = hashlib.sha256(
            DIGEST_ENGINE_HEADER.pack(b"ENGINE", self.asset_class, self.last_order_id, self.last_trade_id)
        )
        for book in self._books.values():
            h.update(book.digest())
        return h.digest()

    # -- COMMANDS ------------------------------------------------------------------------------

    def process(self, command: Command) -> list[Event]:
        if not all(type(v) is int or isinstance(v, int) for v in command) or any(
                not -(2**63) <= v < 2**63 for v in command):
            raise ValueError(f"command field outside int64: {command!r}")  # as the binary codec would
        self.last_seq = command.seq
        out = _Emitter(command.seq)
        if isinstance(command, NewOrder):
            self._new_order(out, command)
        elif isinstance(command, Cancel):
            self._cancel(out, command)
        elif isinstance(command, Replace):
            self._replace(out, command)
        elif isinstance(command, MassCancel):
            self._mass_cancel(out, command)
        elif isinstance(command, EndOfSession):
            self._end_of_session(out, command)
        else:
            raise TypeError(f"not a command: {command!r}")
        return out.events

    def process_packed(self, commands: bytes) -> bytes:
        """Binary in, binary out: the same contract as the Cython engine's fast path."""
        if len(commands) % RECORD_SIZE:
            raise ValueError("command buffer is not a whole number of records")
        events: list[Event] = []
        slots = memoryview(commands).cast("q")
        for base in range(0, len(slots), RECORD_SLOTS):
            kind = slots[base]
            if kind not in CommandKind._value2member_map_:
                self.last_seq = slots[base + 1]
                events.append(Rejected(slots[base + 1], 0, 0, 0, RejectReason.UNKNOWN_COMMAND, kind))
                continue
            (command,) = decode_commands(bytes(slots[base : base + RECORD_SLOTS]))
            events.extend(self.process(command))
        return encode_events(events)

    def _reject(self, out: _Emitter, cmd: Command, reason: RejectReason, order_id: int = 0,
                account: int = 0) -> None:
        out.events.append(
            Rejected(cmd.seq, cmd.instrument_id, order_id, account, reason, COMMAND_KIND[type(cmd)])
        )

    def _new_order(self, out: _Emitter, cmd: NewOrder) -> None:
        book = self._books.get(cmd.instrument_id)
        reason = validation.check_new_order(cmd, book.instrument if book else None, self.last_order_id)
        if reason is None and cmd.post_only and self._crosses(book, cmd.side, cmd.price):
            reason = RejectReason.POST_ONLY_WOULD_CROSS
        if reason is None and cmd.time_in_force == TimeInForce.FOK and not self._fok_fills(book, cmd):
            reason = RejectReason.FOK_NOT_FILLABLE
        if reason is not None:
            self._reject(out, cmd, reason, cmd.order_id, cmd.account)
            return
        self.last_order_id = cmd.order_id
        out.events.append(
            Accepted(cmd.seq, cmd.instrument_id, cmd.order_id, cmd.account, cmd.side, cmd.price, cmd.quantity)
        )
        out.begin_book(book)
        order = _Order(
            cmd.order_id, cmd.account, cmd.side, cmd.price, cmd.quantity,
            min(cmd.display_quantity, cmd.quantity) if cmd.display_quantity else cmd.quantity,
            cmd.display_quantity, cmd.time_in_force, cmd.post_only, cmd.stp_mode,
            is_market=cmd.order_type == OrderType.MARKET,
        )
        self._execute(out, book, order)
        out.flush_book(book)

    def _fok_fills(self, book: _Book, cmd: NewOrder) -> bool:
        """Try the order on a throwaway copy of the book: the plainest possible definition."""
        trial_book = copy.deepcopy(book)
        saved_trade_id = self.last_trade_id
        trial = _Order(cmd.order_id, cmd.account, cmd.side, cmd.price, cmd.quantity, cmd.quantity, 0,
                       cmd.time_in_force, 0, cmd.stp_mode, is_market=cmd.order_type == OrderType.MARKET)
        scratch = _Emitter(cmd.seq)
        scratch.begin_book(trial_book)
        self._match(scratch, trial_book, trial)
        self.last_trade_id = saved_trade_id
        return trial.remaining == 0

    def _crosses(self, book: _Book, side: int, price: int) -> bool:
        opposite = book.best(Side.SELL if side == Side.BUY else Side.BUY)
        if opposite is None:
            return False
        return opposite.price <= price if side == Side.BUY else opposite.price >= price

    def _execute(self, out: _Emitter, book: _Book, order: _Order) -> None:
        """Match an incoming (or re-entering) order, then rest, finish or cancel what is left."""
        stopped_by_stp = self._match(out, book, order)
        iid = book.instrument.instrument_id
        if order.remaining == 0:
            out.events.append(Done(out.seq, iid, order.order_id, order.account))
        elif stopped_by_stp:
            out.events.append(Cancelled(out.seq, iid, order.order_id, order.account, order.remaining,
                                        CancelReason.SELF_TRADE_PREVENTION))
        elif order.is_market or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            out.events.append(Cancelled(out.seq, iid, order.order_id, order.account, order.remaining,
                                        CancelReason.IMMEDIATE_REMAINDER))
        else:
            order.display = min(order.display_size, order.remaining) if order.display_size else order.remaining
            out.touch(book, order.side, order.price)
            book.rest(order)

    def _match(self, out: _Emitter, book: _Book, taker: _Order) -> bool:
        """Trade ``taker`` against the opposite side; True if self-trade prevention stopped it."""
        iid = book.instrument.instrument_id
        maker_side = Side.SELL if taker.side == Side.BUY else Side.BUY
        while taker.remaining > 0:
            level = book.best(maker_side)
            if level is None or (not taker.is_market and not self._crosses(book, taker.side, taker.price)):
                return False
            maker = next(iter(level.queue.values()))
            out.touch(book, maker_side, level.price)
            if maker.account == taker.account and taker.stp_mode != StpMode.NONE:
                if taker.stp_mode in (StpMode.CANCEL_RESTING, StpMode.CANCEL_BOTH):
                    book.remove(maker)
                    out.events.append(Cancelled(out.seq, iid, maker.order_id, maker.account,
                                                maker.remaining, CancelReason.SELF_TRADE_PREVENTION))
                if taker.stp_mode in (StpMode.CANCEL_INCOMING, StpMode.CANCEL_BOTH):
                    return True
                continue
            fill = min(taker.remaining, maker.display)
            taker.remaining -= fill
            self.last_trade_id += 1
            out.events.append(Trade(
                out.seq, iid, self.last_trade_id, maker.price, fill, taker.side,
                maker.order_id, maker.account, taker.order_id, taker.account,
                maker.remaining - fill, taker.remaining,
            ))
            if maker.remaining == fill:
                book.remove(maker)
                out.events.append(Done(out.seq, iid, maker.order_id, maker.account))
            elif maker.display == fill:
                # Iceberg refill: a new slice at the back of the queue, with new time priority.
                book.remove(maker)
                maker.remaining -= fill
                maker.display = min(maker.display_size, maker.remaining)
                book.rest(maker)
            else:
                maker.remaining -= fill
                maker.display -= fill
                level.visible -= fill
        return False

    def _owned(self, book: _Book | None, order_id: int, account: int) -> _Order | None:
        order = book.orders.get(order_id) if book else None
        return order if order is not None and order.account == account else None

    def _cancel(self, out: _Emitter, cmd: Cancel) -> None:
        book = self._books.get(cmd.instrument_id)
        if book is None:
            return self._reject(out, cmd, RejectReason.UNKNOWN_INSTRUMENT, cmd.order_id, cmd.account)
        order = self._owned(book, cmd.order_id, cmd.account)
        if order is None:
            return self._reject(out, cmd, RejectReason.UNKNOWN_ORDER, cmd.order_id, cmd.account)
        out.begin_book(book)
        out.touch(book, order.side, order.price)
        book.remove(order)
        out.events.append(Cancelled(cmd.seq, cmd.instrument_id, order.order_id, order.account,
                                    order.remaining, CancelReason.USER_REQUESTED))
        out.flush_book(book)

    def _replace(self, out: _Emitter, cmd: Replace) -> None:
        book = self._books.get(cmd.instrument_id)
        if book is None:
            return self._reject(out, cmd, RejectReason.UNKNOWN_INSTRUMENT, cmd.order_id, cmd.account)
        order = self._owned(book, cmd.order_id, cmd.account)
        reason = (RejectReason.UNKNOWN_ORDER if order is None
                  else validation.check_replace(cmd, book.instrument))
        if reason is None and order.post_only and self._crosses(book, order.side, cmd.price):
            reason = RejectReason.POST_ONLY_WOULD_CROSS
        if reason is not None:
            return self._reject(out, cmd, reason, cmd.order_id, cmd.account)
        out.begin_book(book)
        out.touch(book, order.side, order.price)
        keeps_priority = cmd.price == order.price and cmd.quantity <= order.remaining
        if keeps_priority:
            level = book.ladder(order.side)[book.key(order.side, order.price)]
            new_display = min(order.display, cmd.quantity)
            level.visible += new_display - order.display
            order.display = new_display
            order.remaining = cmd.quantity
        else:
            book.remove(order)
            order.price = cmd.price
            order.remaining = cmd.quantity
        out.events.append(Replaced(cmd.seq, cmd.instrument_id, order.order_id, order.account,
                                   order.price, order.remaining, int(keeps_priority)))
        if not keeps_priority:
            self._execute(out, book, order)
        out.flush_book(book)

    def _books_for(self, out: _Emitter, cmd: MassCancel | EndOfSession, account: int) -> list[_Book] | None:
        if cmd.instrument_id == ALL_INSTRUMENTS:
            return list(self._books.values())
        book = self._books.get(cmd.instrument_id)
        if book is None:
            self._reject(out, cmd, RejectReason.UNKNOWN_INSTRUMENT, 0, account)
            return None
        return [book]

    def _mass_cancel(self, out: _Emitter, cmd: MassCancel) -> None:
        books = self._books_for(out, cmd, cmd.account)
        if books is None:
            return
        if cmd.account <= 0:
            return self._reject(out, cmd, RejectReason.INVALID_ACCOUNT, 0, cmd.account)
        count = self._remove_all(out, books, lambda o: o.account == cmd.account, CancelReason.MASS_CANCEL)
        out.events.append(MassCancelReport(cmd.seq, cmd.instrument_id, cmd.account, count))

    def _end_of_session(self, out: _Emitter, cmd: EndOfSession) -> None:
        books = self._books_for(out, cmd, 0)
        if books is None:
            return
        count = self._remove_all(out, books, lambda o: o.time_in_force == TimeInForce.DAY, None)
        out.events.append(SessionEndReport(cmd.seq, cmd.instrument_id, count))

    def cancel_orders(self, seq: int, order_ids: bytes) -> bytes:
        """Risk cancels (see the Cython engine): the listed resting orders, reason RISK, book by book
        in instrument order and by order id within a book; ids not resting here are skipped."""
        if len(order_ids) % 8:
            raise ValueError("order id buffer is not a whole number of int64")
        wanted = set(memoryview(order_ids).cast("q"))
        out = _Emitter(seq)
        if self._remove_all(out, list(self._books.values()), lambda o: o.order_id in wanted, CancelReason.RISK):
            self.last_seq = seq  # none resting here: no step, the engine is exactly as it was
        return encode_events(out.events)

    def cancel_orders_columns(self, seq: int, order_ids: bytes) -> tuple[bytes, bytes, bytes, int]:
        """``cancel_orders`` with its events in columns (``split_cancelled``)."""
        return split_cancelled(self.cancel_orders(seq, order_ids))

    def cancel_all_columns(self, seq: int) -> tuple[bytes, bytes, bytes, int]:
        """Risk cancels of every resting order, in columns (see the Cython engine)."""
        resting = [o.order_id for book in self._books.values() for o in book.orders.values()]
        return self.cancel_orders_columns(seq, array("q", resting).tobytes())

    def free_cancelled(self) -> None:
        """Nothing kept back here (see the Cython engine)."""

    def _remove_all(self, out: _Emitter, books: list[_Book], selected, cancel_reason) -> int:
        """Remove the selected orders of each book in order-id order; None reason means expiry."""
        count = 0
        for book in books:
            victims = sorted((o for o in book.orders.values() if selected(o)), key=lambda o: o.order_id)
            if not victims:
                continue
            out.begin_book(book)
            iid = book.instrument.instrument_id
            for order in victims:
                out.touch(book, order.side, order.price)
                book.remove(order)
                if cancel_reason is None:
                    out.events.append(Expired(out.seq, iid, order.order_id, order.account, order.remaining))
                else:
                    out.events.append(Cancelled(out.seq, iid, order.order_id, order.account,
                                                order.remaining, cancel_reason))
            out.flush_book(book)
            count += len(victims)
        return count
