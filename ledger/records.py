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
    """A decoded record. ``engine_record`` is the 128-byte command or event, ``detail`` JSON."""

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


def decode(payload: bytes) -> Record:
    """Parse canonical bytes; raises RecordFormatError on anything else."""
    try:
        version, rtype, seq, ts = _HEADER.unpack_from(payload, 0)
        if version != FORMAT_VERSION:
            raise RecordFormatError(f"unknown record format version {version}")
        rtype = RecordType(rtype)
        pos = _HEADER.size
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
