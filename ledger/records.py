"""Canonical bytes of ledger records: the exact bytes that are hashed into the Merkle tree.

Every record starts with the same header (format version, record type, global sequence number,
hub time in ns); the body is fixed-order binary (integers little-endian, strings as a 2-byte
length plus UTF-8), with engine commands and events embedded as their 128-byte engine records,
so replay feeds the engines exactly the bytes they saw. Admin and reject details are canonical
JSON (sorted keys, no spaces). Nothing here depends on an ORM or on re-serialising objects.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from array import array
from dataclasses import dataclass
from enum import IntEnum

from matching.types import RECORD_SIZE

FORMAT_VERSION = 1
_HEADER = struct.Struct("<BBqq")  # version, type, seq, hub time ns
_COMMAND_FIXED = struct.Struct("<qBB")  # arrival ns, asset class, is_quote
_STR_LEN = struct.Struct("<H")


class RecordType(IntEnum):
    COMMAND = 1  # an inbound command as sequenced, with who sent it and every order field
    EVENT = 2  # one engine event the preceding command caused
    GATEWAY_REJECT = 3  # a request refused before any engine saw it
    ADMIN = 4  # hub-level state changes: halts, sessions, configuration
    CONFIG = 5  # instruments and participants in force (so reports need no other source)
    POST_TRADE = 6  # the fees (and monthly fixed fees) the preceding command's trades were charged
    ENTRY_BLOCK = 7  # a many-command engine step (a mass quote) in one leaf: see ``encode_block``


class RecordFormatError(ValueError):
    """Bytes that are not a canonical ledger record."""


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pack_int64s(packed: bytes) -> str:
    """Little-endian int64s (already packed) as a JSON-safe string: base64. For records that list
    thousands of ids, where a JSON list of numbers costs about 0.3 us an id to write and to read."""
    return base64.b64encode(packed).decode("ascii")


def unpack_int64s(text: str) -> list[int]:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise RecordFormatError("packed int64 field is not a whole number of int64")
    values = array("q")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def risk_cancel_orders(detail: dict) -> list[int]:
    """The orders a ``risk_cancel`` ADMIN record cancelled, in either of its formats: a JSON list
    ``orders`` (records written before 2026-12-07) or packed int64s ``orders_le64``."""
    if "orders_le64" in detail:
        return unpack_int64s(detail["orders_le64"])
    return list(detail["orders"])


def risk_cancel_remaining(detail: dict) -> list[int]:
    """The remaining quantities of those orders when cancelled (same order)."""
    if "remaining_le64" in detail:
        return unpack_int64s(detail["remaining_le64"])
    return list(detail["remaining"])


def encode_str(value: str) -> bytes:
    """A string as records embed it: 2-byte little-endian length, then UTF-8."""
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("string too long for a ledger record")
    return _STR_LEN.pack(len(raw)) + raw


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded record. ``engine_record`` is the 128-byte command or event, ``detail`` JSON. Of an
    ENTRY_BLOCK only the header and sender: ``ledger.entries.decode_all`` gives the records in it."""

    record_type: RecordType
    seq: int
    hub_time_ns: int
    arrival_ns: int = 0
    asset_class: int = 0
    participant: str = ""
    session: str = ""
    client_order_id: str = ""
    is_quote: bool = False
    engine_record: bytes = b""
    detail: bytes = b""

    def detail_json(self) -> dict:
        return json.loads(self.detail) if self.detail else {}


def encode_command(seq: int, ts: int, arrival_ns: int, asset_class: int, participant: str, session: str,
                   client_order_id: str, is_quote: bool, engine_record: bytes) -> bytes:
    return b"".join((
        _HEADER.pack(FORMAT_VERSION, RecordType.COMMAND, seq, ts),
        _COMMAND_FIXED.pack(arrival_ns, asset_class, int(is_quote)),
        encode_str(participant), encode_str(session), encode_str(client_order_id), engine_record,
    ))


def encode_event(seq: int, ts: int, asset_class: int, engine_record: bytes) -> bytes:
    return _HEADER.pack(FORMAT_VERSION, RecordType.EVENT, seq, ts) + bytes((asset_class,)) + engine_record


def encode_detail(record_type: RecordType, seq: int, ts: int, arrival_ns: int, participant: str, session: str,
                  detail: bytes) -> bytes:
    return b"".join((_HEADER.pack(FORMAT_VERSION, record_type, seq, ts), struct.pack("<q", arrival_ns),
                     encode_str(participant), encode_str(session), detail))


_BLOCK_FIXED = struct.Struct("<qBII")  # arrival ns, asset class, commands, event bytes
_POST_LEN = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Block:
    """A decoded ENTRY_BLOCK: one sequenced engine step of many commands, exactly as journaled. It
    stands for the COMMAND, EVENT and POST_TRADE records ``ledger.entries.expand`` rebuilds from it
    (the very bytes they would have had), so nothing a report needs is lost by blocking them."""

    seq_first: int
    hub_time_ns: int
    arrival_ns: int
    asset_class: int
    participant: str
    session: str
    client_order_ids: tuple[str, ...]
    quote_flags: tuple[bool, ...]
    post_trade: tuple[bytes, ...]
    commands: bytes  # n engine commands, RECORD_SIZE bytes each
    events: bytes  # the engine events they caused, RECORD_SIZE bytes each, as the engine emitted them

    @property
    def seq_last(self) -> int:
        return self.seq_first + len(self.commands) // RECORD_SIZE - 1


def encode_block(seq_first: int, ts: int, arrival_ns: int, asset_class: int, participant: str, session: str,
                 client_order_ids: tuple[str, ...], quote_flags: tuple[bool, ...], post_trade: tuple[bytes, ...],
                 commands: bytes, events: bytes) -> bytes:
    """An engine step of ``n`` commands as one record: header, fixed fields, sender, then per command
    its client order id, then n quote flags (one byte each), n post-trade details (4-byte length,
    bytes), the commands and the events. The per-command tuples may be empty (none), as in a
    journal entry; they are written out in full, so the encoding is canonical."""
    n = len(commands) // RECORD_SIZE
    if n * RECORD_SIZE != len(commands) or len(events) % RECORD_SIZE or not n:
        raise ValueError("a block holds whole engine records and at least one command")
    coids = client_order_ids or ("",) * n
    flags = quote_flags or (False,) * n
    posts = post_trade or (b"",) * n
    if not len(coids) == len(flags) == len(posts) == n:
        raise ValueError("per-command fields must have one value per command")
    return b"".join((
        _HEADER.pack(FORMAT_VERSION, RecordType.ENTRY_BLOCK, seq_first, ts),
        _BLOCK_FIXED.pack(arrival_ns, asset_class, n, len(events)),
        encode_str(participant), encode_str(session), *map(encode_str, coids),
        bytes(1 if f else 0 for f in flags),
        *(_POST_LEN.pack(len(p)) + p for p in posts),
        commands, events))


def decode_block(payload: bytes) -> Block:
    """Parse an ENTRY_BLOCK record; raises RecordFormatError on anything else."""
    try:
        version, rtype, seq, ts = _HEADER.unpack_from(payload, 0)
        if version != FORMAT_VERSION or rtype != RecordType.ENTRY_BLOCK:
            raise RecordFormatError("not an entry block record")
        arrival, asset_class, n, n_events = _BLOCK_FIXED.unpack_from(payload, _HEADER.size)
        pos = _HEADER.size + _BLOCK_FIXED.size
        participant, pos = _read_str(payload, pos)
        session, pos = _read_str(payload, pos)
        coids = []
        for _ in range(n):
            coid, pos = _read_str(payload, pos)
            coids.append(coid)
        flags = payload[pos:pos + n]
        pos += n
        if len(flags) != n or any(f > 1 for f in flags):
            raise RecordFormatError("entry block has malformed quote flags")
        posts = []
        for _ in range(n):
            (length,) = _POST_LEN.unpack_from(payload, pos)
            posts.append(payload[pos + 4:pos + 4 + length])
            pos += 4 + length
        commands = payload[pos:pos + n * RECORD_SIZE]
        events = payload[pos + n * RECORD_SIZE:]
        if not n or len(commands) != n * RECORD_SIZE or len(events) != n_events or n_events % RECORD_SIZE:
            raise RecordFormatError("entry block has the wrong length")
        return Block(seq, ts, arrival, asset_class, participant, session, tuple(coids),
                     tuple(f == 1 for f in flags), tuple(posts), commands, events)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, RecordFormatError):
            raise
        raise RecordFormatError(f"malformed entry block: {exc}") from None


def record_end_seq(payload: bytes) -> int:
    """The last sequence number a record carries: its own, or an entry block's last command's (the
    number the next record's follows). Only the header and the block's command count are read."""
    _, rtype, seq, _ = _HEADER.unpack_from(payload, 0)
    if rtype != RecordType.ENTRY_BLOCK:
        return seq
    return seq + _BLOCK_FIXED.unpack_from(payload, _HEADER.size)[2] - 1


def decode(payload: bytes) -> Record:
    """Parse canonical bytes; raises RecordFormatError on anything else."""
    try:
        version, rtype, seq, ts = _HEADER.unpack_from(payload, 0)
        if version != FORMAT_VERSION:
            raise RecordFormatError(f"unknown record format version {version}")
        rtype = RecordType(rtype)
        pos = _HEADER.size
        if rtype == RecordType.ENTRY_BLOCK:  # its header and sender only: ledger.entries.expand reads the rest
            block = decode_block(payload)
            return Record(rtype, seq, ts, block.arrival_ns, block.asset_class, block.participant, block.session)
        if rtype == RecordType.EVENT:
            if len(payload) != pos + 1 + RECORD_SIZE:
                raise RecordFormatError("event record has the wrong length")
            return Record(rtype, seq, ts, asset_class=payload[pos], engine_record=payload[pos + 1:])
        if rtype == RecordType.COMMAND:
            arrival, asset_class, is_quote = _COMMAND_FIXED.unpack_from(payload, pos)
            pos += _COMMAND_FIXED.size
            participant, pos = _read_str(payload, pos)
            session, pos = _read_str(payload, pos)
            client_order_id, pos = _read_str(payload, pos)
            if len(payload) - pos != RECORD_SIZE or is_quote not in (0, 1):
                raise RecordFormatError("command record has the wrong length")
            return Record(rtype, seq, ts, arrival, asset_class, participant, session, client_order_id,
                          bool(is_quote), payload[pos:])
        (arrival,) = struct.unpack_from("<q", payload, pos)
        participant, pos = _read_str(payload, pos + 8)
        session, pos = _read_str(payload, pos)
        return Record(rtype, seq, ts, arrival, participant=participant, session=session, detail=payload[pos:])
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, RecordFormatError):
            raise
        raise RecordFormatError(f"malformed record: {exc}") from None


def _read_str(payload: bytes, pos: int) -> tuple[str, int]:
    (n,) = _STR_LEN.unpack_from(payload, pos)
    end = pos + 2 + n
    if end > len(payload):
        raise RecordFormatError("string runs past the end of the record")
    return payload[pos + 2:end].decode(), end
