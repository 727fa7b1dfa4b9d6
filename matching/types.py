"""Commands in, events out: the matching engine's whole vocabulary.

Both engines (the Cython hot path and the pure-Python reference) speak exactly these types, and
both encode them into the same fixed-size binary records, so a command stream can be journaled,
replayed and compared byte for byte.

Wire layout: every command and every event is one record of ``RECORD_SLOTS`` little-endian
signed 64-bit integers. Slot 0 is the kind, slot 1 the sequence number; the rest are the fields
of the NamedTuple in declaration order (after ``seq``), zero-padded. Prices are integers in the
instrument's price units, quantities integers in its quantity units: there are no floats here.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

RECORD_SLOTS = 16
RECORD_SIZE = RECORD_SLOTS * 8
_RECORD = struct.Struct(f"<{RECORD_SLOTS}q")

#: Largest price any order may carry; keeps price * quantity arithmetic far from int64 overflow.
MAX_PRICE = 10**15
#: Instrument id 0 in a mass cancel or end-of-session means "every instrument of the engine".
ALL_INSTRUMENTS = 0


class AssetClass(IntEnum):
    EQUITY = 1
    FUTURE = 2
    FX = 3
    CRYPTO = 4


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1
    DAY = 2  # expired by an end-of-session command
    IOC = 3
    FOK = 4


class StpMode(IntEnum):
    """Self-trade prevention, applied when the incoming order meets a resting order of its account."""

    NONE = 0  # self trades allowed
    CANCEL_RESTING = 1
    CANCEL_INCOMING = 2
    CANCEL_BOTH = 3


class RejectReason(IntEnum):
    """Closed set of business rejects, numbered by subsystem (1xx order validation,
    2xx order state, 3xx matching conditions). Later subsystems (risk, fairness, gateway)
    take the 4xx-9xx ranges; the proto enum mirrors this one value for value."""

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

    UNKNOWN_ORDER = 201  # never existed, already filled, cancelled or expired, or not yours

    POST_ONLY_WOULD_CROSS = 301
    FOK_NOT_FILLABLE = 302


class CancelReason(IntEnum):
    USER_REQUESTED = 1
    IMMEDIATE_REMAINDER = 2  # unfilled remainder of an IOC or market order
    SELF_TRADE_PREVENTION = 3
    MASS_CANCEL = 4
    RISK = 5  # the hub's risk controls (kill switch, margin reduce-only): never a command field


class CommandKind(IntEnum):
    NEW_ORDER = 1
    CANCEL = 2
    REPLACE = 3
    MASS_CANCEL = 4
    END_OF_SESSION = 5


class EventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    TRADE = 3
    DONE = 4  # fully filled
    CANCELLED = 5
    EXPIRED = 6
    REPLACED = 7
    BOOK_DELTA = 8
    TOP_OF_BOOK = 9
    MASS_CANCEL_REPORT = 10
    SESSION_END_REPORT = 11


# -- COMMANDS --------------------------------------------------------------------------------
# seq and ts (hub time, ns UTC) are stamped by the sequencer; the engine never reads a clock.


class NewOrder(NamedTuple):
    seq: int
    ts: int
    instrument_id: int
    order_id: int  # assigned by the hub, strictly increasing per engine
    account: int
    side: int
    order_type: int
    time_in_force: int
    price: int  # 0 for market orders
    quantity: int
    display_quantity: int = 0  # > 0 makes it an iceberg showing this much at a time
    post_only: int = 0  # 1: reject if it would take liquidity (never repriced)
    stp_mode: int = StpMode.NONE


class Cancel(NamedTuple):
    seq: int
    ts: int
    instrument_id: int
    order_id: int
    account: int


class Replace(NamedTuple):
    """New price and new *open* quantity. Same price and open quantity down keeps priority;
    a price change or a quantity increase re-enters the order at the back of the queue."""

    seq: int
    ts: int
    instrument_id: int
    order_id: int
    account: int
    price: int
    quantity: int


class MassCancel(NamedTuple):
    seq: int
    ts: int
    instrument_id: int  # ALL_INSTRUMENTS for every instrument of the engine
    account: int


class EndOfSession(NamedTuple):
    seq: int
    ts: int
    instrument_id: int  # ALL_INSTRUMENTS for every instrument of the engine


Command = NewOrder | Cancel | Replace | MassCancel | EndOfSession

COMMAND_KIND: dict[type, CommandKind] = {
    NewOrder: CommandKind.NEW_ORDER,
    Cancel: CommandKind.CANCEL,
    Replace: CommandKind.REPLACE,
    MassCancel: CommandKind.MASS_CANCEL,
    EndOfSession: CommandKind.END_OF_SESSION,
}
COMMAND_TYPE: dict[int, type] = {int(kind): cls for cls, kind in COMMAND_KIND.items()}


# -- EVENTS ----------------------------------------------------------------------------------


class Accepted(NamedTuple):
    seq: int
    instrument_id: int
    order_id: int
    account: int
    side: int
    price: int
    quantity: int


class Rejected(NamedTuple):
    seq: int
    instrument_id: int
    order_id: int
    account: int
    reason: int
    command_kind: int


class Trade(NamedTuple):
    seq: int
    instrument_id: int
    trade_id: int
    price: int
    quantity: int
    aggressor_side: int
    maker_order_id: int
    maker_account: int
    taker_order_id: int
    taker_account: int
    maker_remaining: int
    taker_remaining: int


class Done(NamedTuple):
    """The order is fully filled."""

    seq: int
    instrument_id: int
    order_id: int
    account: int


class Cancelled(NamedTuple):
    seq: int
    instrument_id: int
    order_id: int
    account: int
    remaining: int
    reason: int


class Expired(NamedTuple):
    seq: int
    instrument_id: int
    order_id: int
    account: int
    remaining: int


class Replaced(NamedTuple):
    seq: int
    instrument_id: int
    order_id: int
    account: int
    price: int
    remaining: int
    priority_kept: int


class BookDelta(NamedTuple):
    """New aggregate *visible* quantity at one price level; 0 means the level is gone."""

    seq: int
    instrument_id: int
    side: int
    price: int
    visible_quantity: int


class TopOfBook(NamedTuple):
    """Emitted when the best bid or offer (price or visible size) changed; 0/0 means empty side."""

    seq: int
    instrument_id: int
    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int


class MassCancelReport(NamedTuple):
    seq: int
    instrument_id: int
    account: int
    cancelled_count: int


class SessionEndReport(NamedTuple):
    seq: int
    instrument_id: int
    expired_count: int


Event = (
    Accepted
    | Rejected
    | Trade
    | Done
    | Cancelled
    | Expired
    | Replaced
    | BookDelta
    | TopOfBook
    | MassCancelReport
    | SessionEndReport
)

EVENT_KIND: dict[type, EventKind] = {
    Accepted: EventKind.ACCEPTED,
    Rejected: EventKind.REJECTED,
    Trade: EventKind.TRADE,
    Done: EventKind.DONE,
    Cancelled: EventKind.CANCELLED,
    Expired: EventKind.EXPIRED,
    Replaced: EventKind.REPLACED,
    BookDelta: EventKind.BOOK_DELTA,
    TopOfBook: EventKind.TOP_OF_BOOK,
    MassCancelReport: EventKind.MASS_CANCEL_REPORT,
    SessionEndReport: EventKind.SESSION_END_REPORT,
}
EVENT_TYPE: dict[int, type] = {int(kind): cls for cls, kind in EVENT_KIND.items()}


# -- CODEC -----------------------------------------------------------------------------------


class DecodeError(ValueError):
    """A record that is not a valid command or event encoding."""


def _encode(kind: int, fields: tuple) -> bytes:
    if len(fields) >= RECORD_SLOTS:
        raise ValueError("too many fields for one record")
    return _RECORD.pack(kind, *fields, *([0] * (RECORD_SLOTS - 1 - len(fields))))


def encode_command(command: Command) -> bytes:
    """Canonical bytes of one command (the journal and replay format)."""
    try:
        return _encode(COMMAND_KIND[type(command)], tuple(command))
    except struct.error as exc:  # a field outside int64
        raise ValueError(f"command field out of int64 range: {command!r}") from exc


def _padding(types: dict[type, object]) -> dict[type, tuple[int, tuple[int, ...]]]:
    """Per record type: its kind and the zeros that fill its record after its fields."""
    return {cls: (int(kind), (0,) * (RECORD_SLOTS - 1 - len(cls._fields))) for cls, kind in types.items()}


_COMMAND_PADDING = _padding(COMMAND_KIND)


def encode_commands(commands: list[Command]) -> bytes:
    """``encode_command`` of each, joined: one struct pack per command, no call per command (a
    mass quote encodes hundreds). A field outside int64 is reported by ``encode_command``."""
    pack, padding = _RECORD.pack, _COMMAND_PADDING
    try:
        return b"".join([pack(padding[type(c)][0], *c, *padding[type(c)][1]) for c in commands])
    except struct.error:
        return b"".join(encode_command(c) for c in commands)  # raises the precise ValueError


def encode_event(event: Event) -> bytes:
    return _encode(EVENT_KIND[type(event)], tuple(event))


def encode_events(events: list[Event]) -> bytes:
    return b"".join(encode_event(e) for e in events)


def _layouts(types: dict[int, type]) -> dict[int, tuple[type, int]]:
    return {kind: (cls, len(cls._fields)) for kind, cls in types.items()}


_COMMAND_LAYOUT = _layouts(COMMAND_TYPE)
_EVENT_LAYOUT = _layouts(EVENT_TYPE)


def _decode(buf: bytes, layout: dict[int, tuple[type, int]], what: str) -> list:
    # One struct unpack per record and tuple.__new__ on the slice: about twice as fast as a
    # memoryview slice through NamedTuple._make, and every routed command decodes its events.
    if len(buf) % RECORD_SIZE:
        raise DecodeError(f"{what} buffer of {len(buf)} bytes is not a whole number of records")
    new = tuple.__new__
    out: list = []
    append = out.append
    for rec in _RECORD.iter_unpack(buf):
        found = layout.get(rec[0])
        if found is None:
            raise DecodeError(f"unknown {what} kind {rec[0]} at record {len(out)}")
        append(new(found[0], rec[1:found[1] + 1]))
    return out


def _dense(layout: dict[int, tuple[type, int]]) -> tuple[tuple[type, int] | None, ...]:
    """The layout as a tuple indexed by kind (None for the kinds that do not exist)."""
    return tuple(layout.get(kind) for kind in range(max(layout) + 1))


_COMMAND_TABLE = _dense(_COMMAND_LAYOUT)
_EVENT_TABLE = _dense(_EVENT_LAYOUT)

try:  # the native decoder (built with the engine); _decode is its reference and fallback
    from matching._codec import decode_records as _native_decode
except ImportError:  # pragma: no cover - HUB_DISABLE_CEXT=1 or no compiler
    _native_decode = None

NATIVE_DECODE = _native_decode is not None


def decode_commands(buf: bytes) -> list[Command]:
    if _native_decode is not None and type(buf) is bytes:
        return _native_decode(buf, _COMMAND_TABLE, DecodeError, "command")
    return _decode(buf, _COMMAND_LAYOUT, "command")


def decode_events(buf: bytes) -> list[Event]:
    if _native_decode is not None and type(buf) is bytes:
        return _native_decode(buf, _EVENT_TABLE, DecodeError, "event")
    return _decode(buf, _EVENT_LAYOUT, "event")


_CANCELLED_MARK = bytes([EventKind.CANCELLED])


def split_cancelled(buf: bytes) -> tuple[bytes, bytes, bytes, int]:
    """Encoded events in columns: the Cancelled records' order ids and remaining quantities (packed
    int64, in event order), every other record as it is (concatenated), and the number of events.
    What ``MatchingEngine.cancel_orders_columns`` returns. The records of one book's Cancelled events
    come in a run, so this is a few slices per book, never an event decoded."""
    slots = memoryview(buf).cast("q")
    kinds = bytes(slots[0::RECORD_SLOTS].tolist())  # event kinds are small numbers
    count = len(kinds)
    ids, left, others = [], [], []
    pos = 0
    while pos < count:
        start = kinds.find(_CANCELLED_MARK, pos)
        if start < 0:
            start = count
        if start > pos:
            others.append(buf[pos * RECORD_SIZE:start * RECORD_SIZE])
        if start == count:
            break
        end = count - len(kinds[start:].lstrip(_CANCELLED_MARK))
        ids.append(slots[start * RECORD_SLOTS + 3:end * RECORD_SLOTS:RECORD_SLOTS].tobytes())  # order id
        left.append(slots[start * RECORD_SLOTS + 5:end * RECORD_SLOTS:RECORD_SLOTS].tobytes())  # remaining
        pos = end
    return b"".join(ids), b"".join(left), b"".join(others), count


# -- QUERIES ---------------------------------------------------------------------------------


class OrderView(NamedTuple):
    """A resting order as the book holds it; ``display`` is what the market sees of it now."""

    order_id: int
    account: int
    side: int
    price: int
    remaining: int
    display: int
    display_size: int  # iceberg peak; 0 for a plain order
    time_in_force: int
    post_only: int
    stp_mode: int


class Depth(NamedTuple):
    """Aggregate visible quantity per price level, best first."""

    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


#: Canonical encoding of one resting order inside a book digest.
DIGEST_ORDER = struct.Struct("<10q")
DIGEST_BOOK_HEADER = struct.Struct("<4sq")
DIGEST_ENGINE_HEADER = struct.Struct("<6s3q")
