# distutils: language = c++
"""The compiled matching engine: the hot path behind ``matching.engine.create_engine``.

Same contract as ``matching.reference.ReferenceEngine`` (the oracle), different machinery:
resting orders are plain C structs in one pool (no Python object per order), each side of a
book is a ``std::map`` of price levels holding an intrusive FIFO list, and a whole batch of
commands is matched in C with every event written into one int64 buffer that crosses into
Python once, as bytes (no Python call per fill).
"""

import hashlib

cimport cython

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from cython.operator cimport dereference as deref
from cython.operator cimport preincrement as inc
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy
from libcpp.algorithm cimport sort, unique
from libcpp.map cimport map as cmap
from libcpp.pair cimport pair
from libcpp.unordered_map cimport unordered_map
from libcpp.unordered_set cimport unordered_set
from libcpp.vector cimport vector

from matching.instruments import check_engine_instruments
from matching.types import (
    DIGEST_BOOK_HEADER,
    DIGEST_ENGINE_HEADER,
    RECORD_SIZE,
    AssetClass,
    Depth,
    OrderView,
    decode_events,
    encode_command,
)

# -- CONSTANTS (mirror matching.types; the differential tests pin them) -----------------------

cdef enum:
    SLOTS = 16
    OUT_PREFAULT_EVENTS = 4096
    NIL = -1
    BUY = 1
    SELL = 2
    LIMIT = 1
    MARKET = 2
    GTC = 1
    DAY = 2
    IOC = 3
    FOK = 4
    STP_NONE = 0
    STP_CANCEL_RESTING = 1
    STP_CANCEL_INCOMING = 2
    STP_CANCEL_BOTH = 3

cdef enum CommandKind:
    C_NEW_ORDER = 1
    C_CANCEL = 2
    C_REPLACE = 3
    C_MASS_CANCEL = 4
    C_END_OF_SESSION = 5

cdef enum EventKind:
    E_ACCEPTED = 1
    E_REJECTED = 2
    E_TRADE = 3
    E_DONE = 4
    E_CANCELLED = 5
    E_EXPIRED = 6
    E_REPLACED = 7
    E_BOOK_DELTA = 8
    E_TOP_OF_BOOK = 9
    E_MASS_CANCEL_REPORT = 10
    E_SESSION_END_REPORT = 11

cdef enum Reason:
    OK = 0
    UNKNOWN_INSTRUMENT = 101
    INVALID_ORDER_ID = 102
    DUPLICATE_ORDER_ID = 103
    INVALID_ACCOUNT = 104
    INVALID_SIDE = 105
    INVALID_ORDER_TYPE = 106
    INVALID_TIME_IN_FORCE = 107
    INVALID_STP_MODE = 108
    POST_ONLY_NOT_ALLOWED = 109
    INVALID_QUANTITY = 110
    QUANTITY_NOT_LOT_MULTIPLE = 111
    QUANTITY_BELOW_MIN = 112
    QUANTITY_ABOVE_MAX = 113
    INVALID_PRICE = 114
    PRICE_NOT_ON_TICK = 115
    NOTIONAL_ABOVE_MAX = 116
    INVALID_DISPLAY_QUANTITY = 117
    UNKNOWN_COMMAND = 118
    UNKNOWN_ORDER = 201
    POST_ONLY_WOULD_CROSS = 301
    FOK_NOT_FILLABLE = 302

cdef enum CancelReason:
    CR_USER_REQUESTED = 1
    CR_IMMEDIATE_REMAINDER = 2
    CR_SELF_TRADE_PREVENTION = 3
    CR_MASS_CANCEL = 4
    CR_RISK = 5

cdef int64_t MAX_PRICE = 1000000000000000  # matching.types.MAX_PRICE


# -- DATA ---------------------------------------------------------------------------------

cdef struct COrder:
    int64_t order_id
    int64_t account
    int64_t price
    int64_t remaining
    int64_t display       # visible slice while resting
    int64_t display_size  # iceberg peak; 0 for a plain order
    int32_t prev          # pool slots of the neighbours in the level's FIFO
    int32_t next
    int32_t book
    int32_t side
    int32_t tif
    int32_t post_only
    int32_t stp
    int32_t is_market

cdef struct CLevel:
    int64_t price
    int64_t visible
    int64_t epoch         # last command (book pass) that recorded this level's "before" size
    int32_t head
    int32_t tail

cdef struct CInstrument:
    int64_t instrument_id
    int64_t tick
    int64_t lot
    int64_t min_qty
    int64_t max_qty
    int64_t max_notional_raw
    int64_t multiplier
    int64_t reference_price

cdef struct Touched:
    int64_t side
    int64_t price
    int64_t before

# Both sides keyed so that begin() is the best level: bids by -price, asks by price.
ctypedef cmap[int64_t, CLevel] Ladder
# An order to remove: ((book, order id), pool slot). Sorted by book and id; the slot spares a second
# look-up of the id in ``resting``.
ctypedef pair[pair[int64_t, int64_t], int32_t] Victim


cdef inline int64_t ladder_key(int side, int64_t price) noexcept nogil:
    return -price if side == BUY else price


cdef inline int64_t min64(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


@cython.final
cdef class CythonEngine:
    """One asset class's books; single writer. See ``matching.interface.MatchingEngine``."""

    implementation = "cython"

    cdef readonly object asset_class
    cdef vector[CInstrument] insts          # book index -> instrument, ascending instrument id
    cdef vector[Ladder] ladders             # 2 * book + (side - 1)
    cdef unordered_map[int64_t, int32_t] book_of
    cdef vector[COrder] pool
    cdef vector[int32_t] free_slots
    cdef unordered_map[int64_t, int32_t] resting   # order id -> pool slot
    # The id map cancel_all_columns emptied, until free_cancelled frees it; then an empty spare that
    # keeps its buckets, for the next kill to swap in (the refilled book then grows no new table).
    cdef unordered_map[int64_t, int32_t] graveyard
    cdef vector[int64_t] out
    # The Cancelled events of ``cancel_all_columns`` straight in columns (order id, remaining), 16
    # bytes an order instead of a 128-byte event record: a 10,000-order kill wrote 1.3 MB of records
    # through fresh pages (2-3 us a first touch here) only for the columns to be cut out of them.
    cdef vector[int64_t] cut_ids
    cdef vector[int64_t] cut_left
    cdef vector[Touched] touched
    cdef int64_t epoch
    cdef int64_t top_before[4]
    cdef int64_t seq
    cdef readonly int64_t last_order_id
    cdef readonly int64_t last_trade_id
    cdef readonly int64_t last_seq
    # Held by the one step that runs without the GIL (``cancel_all_columns``), and by ``depth``, the
    # one query callers make without the hub's sequencer (the arrival path asks for the top of book).
    cdef PyThread_type_lock busy

    #: ``cancel_all_columns`` lets go of the GIL while it empties the books, so the engines of several
    #: asset classes can be emptied at once on several cores.
    releases_gil = True

    def __cinit__(self, *args, **kwargs):
        self.busy = PyThread_allocate_lock()
        if self.busy == NULL:
            raise MemoryError("cannot allocate the engine's lock")

    def __dealloc__(self):
        if self.busy != NULL:
            PyThread_free_lock(self.busy)

    cdef void _enter(self) noexcept:
        """Take ``busy``; waits without the GIL only when a GIL-free step holds it."""
        if not PyThread_acquire_lock(self.busy, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self.busy, WAIT_LOCK)

    def __init__(self, asset_class, instruments):
        self.asset_class = AssetClass(asset_class)
        cdef CInstrument ci
        cdef Ladder empty
        check_engine_instruments(self.asset_class, instruments)
        for inst in sorted(instruments, key=lambda i: i.instrument_id):
            ci.instrument_id = inst.instrument_id
            ci.tick = inst.tick_size
            ci.lot = inst.lot_size
            ci.min_qty = inst.min_quantity
            ci.max_qty = inst.max_quantity
            ci.max_notional_raw = inst.max_notional_raw
            ci.multiplier = inst.contract_multiplier
            ci.reference_price = inst.reference_price
            self.book_of[ci.instrument_id] = <int32_t>self.insts.size()
            self.insts.push_back(ci)
            self.ladders.push_back(empty)
            self.ladders.push_back(empty)
        self.resting.reserve(1 << 16)
        self.graveyard.reserve(1 << 16)
        self.pool.reserve(1 << 16)
        # The event buffer sized and touched now, for 4,096 events (512 KB): a burst of them (a kill's
        # cancels, a mass quote) otherwise grows it through fresh pages, and a first touch of a page
        # costs 2-3 us on a VM, most of what cancelling 2,500 orders at once cost.
        self.out.resize(OUT_PREFAULT_EVENTS * SLOTS)
        self.out.clear()
        self.epoch = 0
        self.last_order_id = 0
        self.last_trade_id = 0
        self.last_seq = 0

    # -- QUERIES ---------------------------------------------------------------------------

    @property
    def resting_count(self):
        return self.resting.size()

    @property
    def instrument_ids(self):
        return [self.insts[b].instrument_id for b in range(<int>self.insts.size())]

    cdef int _book(self, int64_t instrument_id) noexcept:
        cdef unordered_map[int64_t, int32_t].iterator it = self.book_of.find(instrument_id)
        if it == self.book_of.end():
            return NIL
        return deref(it).second

    cdef int _known_book(self, int64_t instrument_id) except -2:
        cdef int b = self._book(instrument_id)
        if b == NIL:
            raise KeyError(instrument_id)
        return b

    def depth(self, int64_t instrument_id, int levels=0):
        if levels < 0:
            raise ValueError("levels must be >= 0 (0: every level)")
        cdef int b = self._known_book(instrument_id)
        sides = []
        cdef Ladder.iterator it
        cdef int side
        self._enter()
        try:
            for side in (BUY, SELL):
                rows = []
                it = self.ladders[2 * b + side - 1].begin()
                while it != self.ladders[2 * b + side - 1].end():
                    if levels and len(rows) == levels:
                        break
                    rows.append((deref(it).second.price, deref(it).second.visible))
                    inc(it)
                sides.append(rows)
        finally:
            PyThread_release_lock(self.busy)
        return Depth(sides[0], sides[1])

    cdef object _view(self, int32_t slot):
        cdef COrder* o = &self.pool[slot]
        return OrderView(o.order_id, o.account, o.side, o.price, o.remaining, o.display,
                         o.display_size, o.tif, o.post_only, o.stp)

    def orders(self, int64_t instrument_id):
        """Resting orders in priority order: bids best first, then asks best first."""
        cdef int b = self._known_book(instrument_id)
        cdef Ladder.iterator it
        cdef int32_t slot
        cdef int side
        views = []
        for side in (BUY, SELL):
            it = self.ladders[2 * b + side - 1].begin()
            while it != self.ladders[2 * b + side - 1].end():
                slot = deref(it).second.head
                while slot != NIL:
                    views.append(self._view(slot))
                    slot = self.pool[slot].next
                inc(it)
        return views

    def order(self, int64_t instrument_id, int64_t order_id):
        cdef int b = self._known_book(instrument_id)
        cdef unordered_map[int64_t, int32_t].iterator it = self.resting.find(order_id)
        if it == self.resting.end() or self.pool[deref(it).second].book != b:
            return None
        return self._view(deref(it).second)

    def book_digest(self, int64_t instrument_id):
        """SHA-256 of the book's canonical encoding (see matching.types.DIGEST_ORDER), packed in C."""
        cdef int b = self._known_book(instrument_id)
        cdef vector[int64_t] buf
        cdef Ladder.iterator it
        cdef int32_t slot
        cdef int side
        cdef COrder* o
        for side in (BUY, SELL):
            it = self.ladders[2 * b + side - 1].begin()
            while it != self.ladders[2 * b + side - 1].end():
                slot = deref(it).second.head
                while slot != NIL:
                    o = &self.pool[slot]
                    buf.push_back(o.order_id)
                    buf.push_back(o.account)
                    buf.push_back(o.side)
                    buf.push_back(o.price)
                    buf.push_back(o.remaining)
                    buf.push_back(o.display)
                    buf.push_back(o.display_size)
                    buf.push_back(o.tif)
                    buf.push_back(o.post_only)
                    buf.push_back(o.stp)
                    slot = o.next
                inc(it)
        h = hashlib.sha256(DIGEST_BOOK_HEADER.pack(b"BOOK", instrument_id))
        if not buf.empty():
            h.update(PyBytes_FromStringAndSize(<char*>buf.data(), <Py_ssize_t>(buf.size() * 8)))
        return h.digest()

    def digest(self):
        h = hashlib.sha256(DIGEST_ENGINE_HEADER.pack(
            b"ENGINE", int(self.asset_class), self.last_order_id, self.last_trade_id))
        for instrument_id in self.instrument_ids:
            h.update(self.book_digest(instrument_id))
        return h.digest()

    # -- COMMANDS (Python entry points) ----------------------------------------------------

    def process(self, command):
        """One typed command in, its typed events out (convenience over ``process_packed``)."""
        return decode_events(self.process_packed(encode_command(command)))

    def process_packed(self, const unsigned char[::1] commands not None):
        """Encoded commands in (any number), all their encoded events out in one buffer."""
        cdef Py_ssize_t n = commands.shape[0]
        if n % RECORD_SIZE:
            raise ValueError("command buffer is not a whole number of records")
        cdef int64_t cmd[SLOTS]
        cdef Py_ssize_t i
        self.out.clear()
        for i in range(0, n, RECORD_SIZE):
            memcpy(cmd, &commands[i], RECORD_SIZE)
            self._process_one(cmd)
        if self.out.empty():
            return b""
        return PyBytes_FromStringAndSize(<char*>self.out.data(), <Py_ssize_t>(self.out.size() * 8))

    # -- EVENTS ----------------------------------------------------------------------------

    cdef inline int64_t* _emit(self, int64_t kind, int64_t instrument_id) noexcept nogil:
        """Append one zeroed event record; returns its payload (slot 3 on). Fill it at once:
        the next emit may move the buffer."""
        cdef size_t base = self.out.size()
        self.out.resize(base + SLOTS)
        cdef int64_t* rec = self.out.data() + base
        rec[0] = kind
        rec[1] = self.seq
        rec[2] = instrument_id
        return rec + 3

    cdef void _reject(self, int64_t instrument_id, int64_t order_id, int64_t account,
                      int64_t reason, int64_t command_kind) noexcept:
        cdef int64_t* p = self._emit(E_REJECTED, instrument_id)
        p[0] = order_id
        p[1] = account
        p[2] = reason
        p[3] = command_kind

    cdef void _order_event(self, int64_t kind, int b, COrder* o, int64_t reason) noexcept:
        """Done / Cancelled / Expired of one order (reason is ignored where the kind has none)."""
        cdef int64_t* p = self._emit(kind, self.insts[b].instrument_id)
        p[0] = o.order_id
        p[1] = o.account
        if kind == E_CANCELLED:
            p[2] = o.remaining
            p[3] = reason
        elif kind == E_EXPIRED:
            p[2] = o.remaining

    cdef void _top(self, int b, int64_t* top) noexcept nogil:
        cdef Ladder* bids = &self.ladders[2 * b]
        cdef Ladder* asks = &self.ladders[2 * b + 1]
        top[0] = top[1] = top[2] = top[3] = 0
        if not bids.empty():
            top[0] = deref(bids.begin()).second.price
            top[1] = deref(bids.begin()).second.visible
        if not asks.empty():
            top[2] = deref(asks.begin()).second.price
            top[3] = deref(asks.begin()).second.visible

    cdef void _begin_book(self, int b) noexcept nogil:
        self.epoch += 1
        self.touched.clear()
        self._top(b, self.top_before)

    cdef CLevel* _level(self, int b, int side, int64_t price) noexcept nogil:
        cdef Ladder* lad = &self.ladders[2 * b + side - 1]
        cdef Ladder.iterator it = lad.find(ladder_key(side, price))
        if it == lad.end():
            return NULL
        return &deref(it).second

    cdef void _touch(self, int b, int side, int64_t price) noexcept:
        """Remember a level's visible size before this command first changes it."""
        cdef CLevel* lv = self._level(b, side, price)
        cdef Touched t
        cdef size_t i
        if lv != NULL:
            if lv.epoch == self.epoch:
                return
            lv.epoch = self.epoch
            t.before = lv.visible
        else:
            # A level about to be created: it may have existed earlier in this command.
            for i in range(self.touched.size()):
                if self.touched[i].side == side and self.touched[i].price == price:
                    return
            t.before = 0
        t.side = side
        t.price = price
        self.touched.push_back(t)

    cdef void _flush_book(self, int b) noexcept nogil:
        cdef int64_t iid = self.insts[b].instrument_id
        cdef size_t i
        cdef CLevel* lv
        cdef int64_t now
        cdef int64_t* p
        cdef int64_t top[4]
        for i in range(self.touched.size()):
            lv = self._level(b, <int>self.touched[i].side, self.touched[i].price)
            now = lv.visible if lv != NULL else 0
            if now != self.touched[i].before:
                p = self._emit(E_BOOK_DELTA, iid)
                p[0] = self.touched[i].side
                p[1] = self.touched[i].price
                p[2] = now
        self._top(b, top)
        if (top[0] != self.top_before[0] or top[1] != self.top_before[1]
                or top[2] != self.top_before[2] or top[3] != self.top_before[3]):
            p = self._emit(E_TOP_OF_BOOK, iid)
            p[0] = top[0]
            p[1] = top[1]
            p[2] = top[2]
            p[3] = top[3]
        self.touched.clear()

    # -- BOOK MAINTENANCE ------------------------------------------------------------------

    cdef int32_t _alloc(self) noexcept:
        cdef int32_t slot
        cdef COrder blank
        if not self.free_slots.empty():
            slot = self.free_slots.back()
            self.free_slots.pop_back()
            return slot
        self.pool.push_back(blank)
        return <int32_t>(self.pool.size() - 1)

    cdef void _free(self, int32_t slot) noexcept:
        self.resting.erase(self.pool[slot].order_id)
        self.free_slots.push_back(slot)

    cdef void _link_tail(self, int32_t slot) noexcept:
        """Rest an order at the back of its price level, creating the level if needed.
        The caller has touched the level first."""
        cdef COrder* o = &self.pool[slot]
        cdef Ladder* lad = &self.ladders[2 * o.book + o.side - 1]
        cdef int64_t key = ladder_key(o.side, o.price)
        cdef Ladder.iterator it = lad.find(key)
        cdef CLevel fresh
        cdef CLevel* lv
        if it == lad.end():
            fresh.price = o.price
            fresh.visible = 0
            fresh.epoch = self.epoch
            fresh.head = NIL
            fresh.tail = NIL
            it = lad.insert(pair[int64_t, CLevel](key, fresh)).first
        lv = &deref(it).second
        o.prev = lv.tail
        o.next = NIL
        if lv.tail != NIL:
            self.pool[lv.tail].next = slot
        else:
            lv.head = slot
        lv.tail = slot
        lv.visible += o.display
        self.resting[o.order_id] = slot

    cdef void _unlink(self, int32_t slot) noexcept:
        """Take an order out of its level's queue, dropping the level if it empties."""
        cdef COrder* o = &self.pool[slot]
        cdef Ladder* lad = &self.ladders[2 * o.book + o.side - 1]
        self._unlink_at(slot, lad, lad.find(ladder_key(o.side, o.price)))

    cdef void _unlink_at(self, int32_t slot, Ladder* lad, Ladder.iterator it) noexcept:
        """``_unlink`` with the order's level already found (``it`` in ``lad``)."""
        cdef COrder* o = &self.pool[slot]
        cdef CLevel* lv = &deref(it).second
        if o.prev != NIL:
            self.pool[o.prev].next = o.next
        else:
            lv.head = o.next
        if o.next != NIL:
            self.pool[o.next].prev = o.prev
        else:
            lv.tail = o.prev
        lv.visible -= o.display
        if lv.head == NIL:
            lad.erase(it)

    cdef bint _crosses(self, int b, int side, int64_t price) noexcept:
        """Would a limit order at ``price`` meet the opposite side's best level?"""
        cdef Ladder* opp = &self.ladders[2 * b + (SELL if side == BUY else BUY) - 1]
        if opp.empty():
            return False
        cdef int64_t best = deref(opp.begin()).second.price
        return best <= price if side == BUY else best >= price

    # -- VALIDATION (transcribes matching.validation, same order) ---------------------------

    cdef int64_t _check_quantity(self, int b, int64_t qty) noexcept:
        cdef CInstrument* inst = &self.insts[b]
        if qty <= 0:
            return INVALID_QUANTITY
        if qty % inst.lot:
            return QUANTITY_NOT_LOT_MULTIPLE
        if qty < inst.min_qty:
            return QUANTITY_BELOW_MIN
        if qty > inst.max_qty:
            return QUANTITY_ABOVE_MAX
        return OK

    cdef int64_t _check_limit_price(self, int b, int64_t price) noexcept:
        if price <= 0 or price > MAX_PRICE:
            return INVALID_PRICE
        if price % self.insts[b].tick:
            return PRICE_NOT_ON_TICK
        return OK

    cdef bint _exceeds_notional(self, int b, int64_t price, int64_t qty) noexcept:
        cdef CInstrument* inst = &self.insts[b]
        return qty * inst.multiplier > inst.max_notional_raw // price

    cdef int64_t _check_new_order(self, int b, const int64_t* c) noexcept:
        cdef int64_t order_id = c[4], account = c[5], side = c[6], otype = c[7], tif = c[8]
        cdef int64_t price = c[9], qty = c[10], display = c[11], post_only = c[12], stp = c[13]
        cdef int64_t reason, notional_price
        if b == NIL:
            return UNKNOWN_INSTRUMENT
        if order_id <= 0:
            return INVALID_ORDER_ID
        if order_id <= self.last_order_id:
            return DUPLICATE_ORDER_ID
        if account <= 0:
            return INVALID_ACCOUNT
        if side != BUY and side != SELL:
            return INVALID_SIDE
        if otype != LIMIT and otype != MARKET:
            return INVALID_ORDER_TYPE
        cdef bint is_market = otype == MARKET
        cdef bint immediate = tif == IOC or tif == FOK
        if tif < GTC or tif > FOK or (is_market and not immediate):
            return INVALID_TIME_IN_FORCE
        if stp < STP_NONE or stp > STP_CANCEL_BOTH:
            return INVALID_STP_MODE
        if (post_only != 0 and post_only != 1) or (post_only and (is_market or immediate)):
            return POST_ONLY_NOT_ALLOWED
        reason = self._check_quantity(b, qty)
        if reason:
            return reason
        if is_market:
            if price != 0:
                return INVALID_PRICE
            notional_price = self.insts[b].reference_price
        else:
            reason = self._check_limit_price(b, price)
            if reason:
                return reason
            notional_price = price
        if self._exceeds_notional(b, notional_price, qty):
            return NOTIONAL_ABOVE_MAX
        if display != 0 and (display < 0 or is_market or immediate or display >= qty
                             or display % self.insts[b].lot or display < self.insts[b].min_qty):
            return INVALID_DISPLAY_QUANTITY
        return OK

    cdef bint _fok_fills(self, int b, int side, bint is_market, int64_t price, int64_t account,
                         int64_t stp, int64_t qty) noexcept:
        """Can a fill-or-kill order fill completely? Computed without touching the book.

        Per level, best first: if self-trade prevention stops the taker at its own order,
        it can only take the visible slices queued ahead of that order (iceberg refills go
        behind it); otherwise it can take everything resting there that is not cancelled
        by self-trade prevention on the way."""
        cdef Ladder* opp = &self.ladders[2 * b + (SELL if side == BUY else BUY) - 1]
        cdef Ladder.iterator it = opp.begin()
        cdef int64_t need = qty, total, ahead
        cdef int32_t slot
        cdef bint stops_at_own = stp == STP_CANCEL_INCOMING or stp == STP_CANCEL_BOTH
        cdef bint own_found
        cdef COrder* o
        while it != opp.end():
            if not is_market:
                if side == BUY and deref(it).second.price > price:
                    return False
                if side == SELL and deref(it).second.price < price:
                    return False
            total = 0
            ahead = 0
            own_found = False
            slot = deref(it).second.head
            while slot != NIL:
                o = &self.pool[slot]
                if o.account == account and stp != STP_NONE:
                    if stops_at_own:
                        own_found = True
                        break
                else:
                    total += o.remaining
                    ahead += o.display
                slot = o.next
            if own_found:
                return need <= ahead
            if need <= total:
                return True
            need -= total
            inc(it)
        return False

    # -- MATCHING --------------------------------------------------------------------------

    cdef bint _match(self, int b, COrder* taker) noexcept:
        """Trade ``taker`` against the opposite side; True if self-trade prevention stopped it."""
        cdef int maker_side = SELL if taker.side == BUY else BUY
        cdef Ladder* lad = &self.ladders[2 * b + maker_side - 1]
        cdef int64_t iid = self.insts[b].instrument_id
        cdef CLevel* lv
        cdef COrder* m
        cdef int32_t mslot
        cdef int64_t fill
        cdef int64_t* p
        while taker.remaining > 0:
            if lad.empty():
                return False
            lv = &deref(lad.begin()).second
            if not taker.is_market:
                if taker.side == BUY and lv.price > taker.price:
                    return False
                if taker.side == SELL and lv.price < taker.price:
                    return False
            if lv.epoch != self.epoch:
                self._touch(b, maker_side, lv.price)
            mslot = lv.head
            m = &self.pool[mslot]
            if m.account == taker.account and taker.stp != STP_NONE:
                if taker.stp == STP_CANCEL_RESTING or taker.stp == STP_CANCEL_BOTH:
                    self._order_event(E_CANCELLED, b, m, CR_SELF_TRADE_PREVENTION)
                    self._unlink(mslot)
                    self._free(mslot)
                if taker.stp == STP_CANCEL_INCOMING or taker.stp == STP_CANCEL_BOTH:
                    return True
                continue
            fill = min64(taker.remaining, m.display)
            taker.remaining -= fill
            self.last_trade_id += 1
            p = self._emit(E_TRADE, iid)
            p[0] = self.last_trade_id
            p[1] = m.price
            p[2] = fill
            p[3] = taker.side
            p[4] = m.order_id
            p[5] = m.account
            p[6] = taker.order_id
            p[7] = taker.account
            p[8] = m.remaining - fill
            p[9] = taker.remaining
            if m.remaining == fill:
                self._order_event(E_DONE, b, m, 0)
                self._unlink(mslot)
                self._free(mslot)
            elif m.display == fill:
                # Iceberg refill: a new slice at the back of the queue, with new time priority.
                m.remaining -= fill
                lv.visible -= fill
                m.display = min64(m.display_size, m.remaining)
                lv.visible += m.display
                if lv.tail != mslot:
                    lv.head = m.next
                    self.pool[m.next].prev = NIL
                    m.prev = lv.tail
                    m.next = NIL
                    self.pool[lv.tail].next = mslot
                    lv.tail = mslot
            else:
                m.remaining -= fill
                m.display -= fill
                lv.visible -= fill
        return False

    cdef void _execute(self, int b, int32_t slot) noexcept:
        """Match an incoming (or re-entering) order, then rest, finish or cancel what is left."""
        cdef COrder* o = &self.pool[slot]
        cdef bint stopped = self._match(b, o)
        if o.remaining == 0:
            self._order_event(E_DONE, b, o, 0)
            self._free(slot)
        elif stopped:
            self._order_event(E_CANCELLED, b, o, CR_SELF_TRADE_PREVENTION)
            self._free(slot)
        elif o.is_market or o.tif == IOC or o.tif == FOK:
            self._order_event(E_CANCELLED, b, o, CR_IMMEDIATE_REMAINDER)
            self._free(slot)
        else:
            o.display = min64(o.display_size, o.remaining) if o.display_size else o.remaining
            self._touch(b, o.side, o.price)
            self._link_tail(slot)

    # -- COMMANDS --------------------------------------------------------------------------

    cdef void _process_one(self, const int64_t* c) noexcept:
        self.seq = c[1]
        self.last_seq = c[1]
        if c[0] == C_NEW_ORDER:
            self._new_order(c)
        elif c[0] == C_CANCEL:
            self._cancel(c)
        elif c[0] == C_REPLACE:
            self._replace(c)
        elif c[0] == C_MASS_CANCEL:
            self._mass_cancel(c)
        elif c[0] == C_END_OF_SESSION:
            self._end_of_session(c)
        else:
            self._reject(0, 0, 0, UNKNOWN_COMMAND, c[0])

    cdef void _new_order(self, const int64_t* c) noexcept:
        # c: kind seq ts instrument order_id account side type tif price qty display post_only stp
        cdef int b = self._book(c[3])
        cdef int64_t reason = self._check_new_order(b, c)
        if reason == OK and c[12] and self._crosses(b, <int>c[6], c[9]):
            reason = POST_ONLY_WOULD_CROSS
        if reason == OK and c[8] == FOK and not self._fok_fills(
                b, <int>c[6], c[7] == MARKET, c[9], c[5], c[13], c[10]):
            reason = FOK_NOT_FILLABLE
        if reason != OK:
            self._reject(c[3], c[4], c[5], reason, C_NEW_ORDER)
            return
        self.last_order_id = c[4]
        cdef int64_t* p = self._emit(E_ACCEPTED, c[3])
        p[0] = c[4]
        p[1] = c[5]
        p[2] = c[6]
        p[3] = c[9]
        p[4] = c[10]
        self._begin_book(b)
        cdef int32_t slot = self._alloc()
        cdef COrder* o = &self.pool[slot]
        o.order_id = c[4]
        o.account = c[5]
        o.side = <int32_t>c[6]
        o.is_market = c[7] == MARKET
        o.tif = <int32_t>c[8]
        o.price = c[9]
        o.remaining = c[10]
        o.display_size = c[11]
        o.display = min64(c[11], c[10]) if c[11] else c[10]
        o.post_only = <int32_t>c[12]
        o.stp = <int32_t>c[13]
        o.book = b
        o.prev = NIL
        o.next = NIL
        self._execute(b, slot)
        self._flush_book(b)

    cdef int32_t _owned(self, int b, int64_t order_id, int64_t account) noexcept:
        cdef unordered_map[int64_t, int32_t].iterator it = self.resting.find(order_id)
        if it == self.resting.end():
            return NIL
        cdef int32_t slot = deref(it).second
        if self.pool[slot].book != b or self.pool[slot].account != account:
            return NIL
        return slot

    cdef void _cancel(self, const int64_t* c) noexcept:
        # c: kind seq ts instrument order_id account
        cdef int b = self._book(c[3])
        if b == NIL:
            self._reject(c[3], c[4], c[5], UNKNOWN_INSTRUMENT, C_CANCEL)
            return
        cdef int32_t slot = self._owned(b, c[4], c[5])
        if slot == NIL:
            self._reject(c[3], c[4], c[5], UNKNOWN_ORDER, C_CANCEL)
            return
        self._begin_book(b)
        cdef COrder* o = &self.pool[slot]
        self._touch(b, o.side, o.price)
        self._order_event(E_CANCELLED, b, o, CR_USER_REQUESTED)
        self._unlink(slot)
        self._free(slot)
        self._flush_book(b)

    cdef void _replace(self, const int64_t* c) noexcept:
        # c: kind seq ts instrument order_id account price qty
        cdef int b = self._book(c[3])
        if b == NIL:
            self._reject(c[3], c[4], c[5], UNKNOWN_INSTRUMENT, C_REPLACE)
            return
        cdef int64_t price = c[6], qty = c[7]
        cdef int32_t slot = self._owned(b, c[4], c[5])
        cdef int64_t reason = UNKNOWN_ORDER
        if slot != NIL:
            reason = self._check_quantity(b, qty)
            if reason == OK:
                reason = self._check_limit_price(b, price)
            if reason == OK and self._exceeds_notional(b, price, qty):
                reason = NOTIONAL_ABOVE_MAX
            if reason == OK and self.pool[slot].post_only and self._crosses(b, self.pool[slot].side, price):
                reason = POST_ONLY_WOULD_CROSS
        if reason != OK:
            self._reject(c[3], c[4], c[5], reason, C_REPLACE)
            return
        self._begin_book(b)
        cdef COrder* o = &self.pool[slot]
        self._touch(b, o.side, o.price)
        cdef bint keeps_priority = price == o.price and qty <= o.remaining
        cdef CLevel* lv
        cdef int64_t new_display
        if keeps_priority:
            lv = self._level(b, o.side, o.price)
            new_display = min64(o.display, qty)
            lv.visible += new_display - o.display
            o.display = new_display
            o.remaining = qty
        else:
            self._unlink(slot)
            o.price = price
            o.remaining = qty
        cdef int64_t* p = self._emit(E_REPLACED, c[3])
        p[0] = o.order_id
        p[1] = o.account
        p[2] = o.price
        p[3] = o.remaining
        p[4] = keeps_priority
        if not keeps_priority:
            self._execute(b, slot)
        self._flush_book(b)

    cdef int _target_books(self, const int64_t* c, int64_t account, int64_t command_kind) noexcept:
        """Book index for a one-instrument command, NIL for all, or -2 after rejecting."""
        if c[3] == 0:
            return NIL
        cdef int b = self._book(c[3])
        if b == NIL:
            self._reject(c[3], 0, account, UNKNOWN_INSTRUMENT, command_kind)
            return -2
        return b

    cdef int64_t _remove_all(self, int only_book, int64_t account, int64_t event_kind) noexcept:
        """Remove every resting order of ``account`` (or every DAY order when account is 0),
        book by book in instrument order and by order id within a book."""
        cdef vector[Victim] victims
        cdef unordered_map[int64_t, int32_t].iterator it = self.resting.begin()
        cdef COrder* o
        while it != self.resting.end():
            o = &self.pool[deref(it).second]
            if only_book == NIL or o.book == only_book:
                if (account != 0 and o.account == account) or (account == 0 and o.tif == DAY):
                    victims.push_back(Victim(pair[int64_t, int64_t](o.book, o.order_id), deref(it).second))
            inc(it)
        return self._remove_victims(victims, event_kind, CR_MASS_CANCEL)

    cdef int64_t _remove_victims(self, vector[Victim]& victims, int64_t event_kind,
                                 int64_t reason, bint presorted=False) noexcept:
        """Remove (book, order id) pairs, book by book in instrument order and by order id within a
        book: one BookDelta per level changed and one TopOfBook per book, not per order."""
        if not presorted:
            sort(victims.begin(), victims.end())
            # An id listed twice (two risk decisions naming the same order) is removed once, as the
            # reference engine's set does: removing a slot twice corrupts the pool's free list.
            victims.erase(unique(victims.begin(), victims.end()), victims.end())
        cdef size_t i
        cdef int b = NIL
        cdef int32_t slot
        cdef COrder* o
        cdef Ladder* lad
        cdef Ladder.iterator it
        cdef CLevel* lv
        cdef Touched t
        for i in range(victims.size()):
            if victims[i].first.first != b:
                if b != NIL:
                    self._flush_book(b)
                b = <int>victims[i].first.first
                self._begin_book(b)
            slot = victims[i].second
            o = &self.pool[slot]
            # _touch and _unlink in one ladder lookup: a kill removes thousands of orders, and
            # the lookup (a tree walk that misses the cache) is most of what each removal costs.
            lad = &self.ladders[2 * b + o.side - 1]
            it = lad.find(ladder_key(o.side, o.price))
            lv = &deref(it).second
            if lv.epoch != self.epoch:
                lv.epoch = self.epoch
                t.side = o.side
                t.price = o.price
                t.before = lv.visible
                self.touched.push_back(t)
            self._order_event(event_kind, b, o, reason)
            self._unlink_at(slot, lad, it)
            self._free(slot)
        if b != NIL:
            self._flush_book(b)
        return <int64_t>victims.size()

    def cancel_orders(self, int64_t seq, const unsigned char[::1] order_ids not None):
        """Risk cancels: remove the listed resting orders (packed little-endian int64 ids; ids not
        resting here are skipped) as one step stamped ``seq``, reason RISK. Events: a Cancelled per
        order, then per book the changed levels and the new top. Deterministic for replay. None of
        them resting here: b"" and nothing changes (not even ``last_seq``)."""
        if not self._cancel_risk(seq, order_ids):  # nothing here: no step, the engine is exactly as it was
            return b""
        return PyBytes_FromStringAndSize(<char*>self.out.data(), <Py_ssize_t>(self.out.size() * 8))

    def cancel_orders_columns(self, int64_t seq, const unsigned char[::1] order_ids not None):
        """``cancel_orders`` with its events in columns (``matching.types.split_cancelled``): the
        Cancelled records' order ids and remaining quantities (packed int64), the other records as
        they are, and the number of events. A kill's 2,500 orders an engine are 320 KB of Cancelled
        records that nobody reads whole: this writes the 40 KB that are read."""
        if not self._cancel_risk(seq, order_ids):
            return b"", b"", b"", 0
        return self._columns()

    def cancel_all_columns(self, int64_t seq):
        """Risk cancels of every order resting in this engine (a BLOCK kill switch over the whole hub
        or this asset class): ``cancel_orders_columns`` of all of them, without the caller listing
        them. Nothing resting: (b"", b"", b"", 0) and nothing changes.

        Runs without the GIL (holding ``busy``): emptying several engines at once, one a thread,
        takes several cores. The caller must still be the engine's single writer."""
        if self.resting.empty():
            return b"", b"", b"", 0
        with nogil:
            PyThread_acquire_lock(self.busy, WAIT_LOCK)
            self._cancel_everything(seq)
            PyThread_release_lock(self.busy)
        cdef Py_ssize_t cut = <Py_ssize_t>self.cut_ids.size()
        return (PyBytes_FromStringAndSize(<char*>self.cut_ids.data(), cut * 8),
                PyBytes_FromStringAndSize(<char*>self.cut_left.data(), cut * 8),
                PyBytes_FromStringAndSize(<char*>self.out.data(), <Py_ssize_t>(self.out.size() * 8)),
                cut + <Py_ssize_t>(self.out.size() // SLOTS))

    def free_cancelled(self):
        """Free the memory ``cancel_all_columns`` kept back (the emptied id map) so as not to make
        the kill wait for it. Without the GIL: call it from any thread once the kill is on record."""
        cdef unordered_map[int64_t, int32_t] dead
        with nogil:
            PyThread_acquire_lock(self.busy, WAIT_LOCK)
            dead.swap(self.graveyard)
            PyThread_release_lock(self.busy)
            dead.clear()  # holding nothing: a top-of-book query need not wait for it
            PyThread_acquire_lock(self.busy, WAIT_LOCK)
            if self.graveyard.empty():  # (not if another kill came meanwhile: its map waits for its own call)
                self.graveyard.swap(dead)  # the spare, buckets and all
            PyThread_release_lock(self.busy)

    cdef void _cancel_everything(self, int64_t seq) noexcept nogil:
        cdef vector[Victim] victims
        cdef vector[vector[pair[int64_t, int32_t]]] by_book  # (order id, slot) per book
        cdef vector[char] free
        cdef size_t i, j
        cdef COrder* o
        # Between commands every pool slot not on the free list holds a resting order: scan the pool
        # (contiguous) instead of the levels' chains or the id map (both scattered, cold in a kill),
        # then sort each book's orders by id as _remove_victims would.
        free.resize(self.pool.size(), 0)
        for i in range(self.free_slots.size()):
            free[self.free_slots[i]] = 1
        by_book.resize(self.insts.size())
        for i in range(self.pool.size()):
            if not free[i]:
                o = &self.pool[i]
                by_book[o.book].push_back(pair[int64_t, int32_t](o.order_id, <int32_t>i))
        victims.reserve(self.resting.size())
        for i in range(by_book.size()):
            sort(by_book[i].begin(), by_book[i].end())
            for j in range(by_book[i].size()):
                victims.push_back(Victim(pair[int64_t, int64_t](<int64_t>i, by_book[i][j].first), by_book[i][j].second))
        self.seq = seq
        self.last_seq = seq
        self.out.clear()
        self.cut_ids.clear()
        self.cut_left.clear()
        self.cut_ids.reserve(victims.size())
        self.cut_left.reserve(victims.size())
        self._remove_everything(victims)

    cdef void _remove_everything(self, vector[Victim]& victims) noexcept nogil:
        """``_remove_victims(victims, E_CANCELLED, CR_RISK)`` when ``victims`` is every resting order
        (by book, then id): the same events, byte for byte (the Cancelled ones in ``cut_ids`` /
        ``cut_left``, the book changes in ``out``), but each price level is looked up once
        (the first time one of its orders comes up, as ``_remove_victims`` first touches it) instead
        of once per order, and the books and the id map are emptied whole instead of order by order.
        The per-order tree walks and hash erasures were most of a 10,000-order kill's engine time."""
        cdef size_t i = 0
        cdef size_t n = victims.size()
        cdef int b
        cdef int32_t slot
        cdef COrder* o
        cdef Touched t
        cdef unordered_set[int64_t] seen[2]  # prices of this book's bid and ask levels met so far
        while i < n:
            b = <int>victims[i].first.first
            self._begin_book(b)
            seen[0].clear()
            seen[1].clear()
            while i < n and victims[i].first.first == b:
                slot = victims[i].second
                o = &self.pool[slot]
                if seen[o.side - 1].insert(o.price).second:
                    t.side = o.side
                    t.price = o.price
                    t.before = self._level(b, o.side, o.price).visible
                    self.touched.push_back(t)
                self.cut_ids.push_back(o.order_id)  # the Cancelled event (reason RISK), in columns
                self.cut_left.push_back(o.remaining)
                self.free_slots.push_back(slot)  # in the order _free would have freed them
                i += 1
            self.ladders[2 * b].clear()  # every order of the book is gone, so is every level
            self.ladders[2 * b + 1].clear()
            self._flush_book(b)
        # Every id is gone: swap the map out whole. Freeing its 2,500 scattered nodes an engine
        # (a cache miss each) was half of a kill's engine time; ``free_cancelled`` does it later.
        if not self.graveyard.empty():  # two kills one after the other: the first's map is not freed yet
            self.graveyard.clear()
        self.graveyard.swap(self.resting)

    cdef tuple _columns(self):
        """The events in ``self.out`` in columns (see ``cancel_orders_columns``)."""
        cdef Py_ssize_t count
        cdef Py_ssize_t cancelled
        cdef Py_ssize_t i
        cdef int64_t* rec
        cdef char* ids
        cdef char* left
        cdef char* others
        count = <Py_ssize_t>(self.out.size() // SLOTS)
        cancelled = 0
        for i in range(count):
            if self.out[i * SLOTS] == E_CANCELLED:
                cancelled += 1
        id_bytes = PyBytes_FromStringAndSize(NULL, cancelled * 8)
        left_bytes = PyBytes_FromStringAndSize(NULL, cancelled * 8)
        other_bytes = PyBytes_FromStringAndSize(NULL, (count - cancelled) * SLOTS * 8)
        ids = PyBytes_AS_STRING(id_bytes)
        left = PyBytes_AS_STRING(left_bytes)
        others = PyBytes_AS_STRING(other_bytes)
        for i in range(count):
            rec = self.out.data() + i * SLOTS
            if rec[0] == E_CANCELLED:
                memcpy(ids, &rec[3], 8)  # Cancelled: kind, seq, instrument, order id, account, remaining, reason
                memcpy(left, &rec[5], 8)
                ids += 8
                left += 8
            else:
                memcpy(others, rec, SLOTS * 8)
                others += SLOTS * 8
        return id_bytes, left_bytes, other_bytes, count

    cdef bint _cancel_risk(self, int64_t seq, const unsigned char[::1] order_ids) except -1:
        """Remove the listed resting orders into ``self.out`` as one step ``seq``, reason RISK;
        False (nothing changed) when none of them rests here."""
        cdef Py_ssize_t n = order_ids.shape[0]
        if n % 8:
            raise ValueError("order id buffer is not a whole number of int64")
        cdef vector[Victim] victims
        cdef unordered_map[int64_t, int32_t].iterator it
        cdef int64_t oid
        cdef Py_ssize_t i
        for i in range(0, n, 8):
            memcpy(&oid, &order_ids[i], 8)
            it = self.resting.find(oid)
            if it != self.resting.end():
                victims.push_back(Victim(pair[int64_t, int64_t](self.pool[deref(it).second].book, oid), deref(it).second))
        if victims.empty():
            return False
        self.seq = seq
        self.last_seq = seq
        self.out.clear()
        self._remove_victims(victims, E_CANCELLED, CR_RISK)
        return True

    cdef void _mass_cancel(self, const int64_t* c) noexcept:
        # c: kind seq ts instrument account
        cdef int b = self._target_books(c, c[4], C_MASS_CANCEL)
        if b == -2:
            return
        if c[4] <= 0:
            self._reject(c[3], 0, c[4], INVALID_ACCOUNT, C_MASS_CANCEL)
            return
        cdef int64_t count = self._remove_all(b, c[4], E_CANCELLED)
        cdef int64_t* p = self._emit(E_MASS_CANCEL_REPORT, c[3])
        p[0] = c[4]
        p[1] = count

    cdef void _end_of_session(self, const int64_t* c) noexcept:
        # c: kind seq ts instrument
        cdef int b = self._target_books(c, 0, C_END_OF_SESSION)
        if b == -2:
            return
        cdef int64_t count = self._remove_all(b, 0, E_EXPIRED)
        cdef int64_t* p = self._emit(E_SESSION_END_REPORT, c[3])
        p[0] = count
