"""What a journal entry becomes in the ledger: its canonical records, one leaf each.

An engine step is a command record followed by the event records it caused (and its POST_TRADE
fees), per command. A step of many commands (a mass quote: a cancel and a new order per quote side)
is one ENTRY_BLOCK record instead (``records.encode_block``): hundreds of records per message cost
about 5 us each to encode, hash and insert, while the block costs about as much as one large record.
``expand`` turns a block back into exactly the records it stands for, so every reader (recovery,
projections, reports) sees the same records either way.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from hub.journal import EntryKind, JournalEntry
from ledger import records
from ledger.records import RecordType
from matching.types import RECORD_SIZE

_KIND_TO_TYPE = {EntryKind.GATEWAY_REJECT: RecordType.GATEWAY_REJECT, EntryKind.ADMIN: RecordType.ADMIN,
                 EntryKind.CONFIG: RecordType.CONFIG}
_COMMAND, _EVENT = int(RecordType.COMMAND), int(RecordType.EVENT)
_BLOCK = int(RecordType.ENTRY_BLOCK)
_EVENT_HEAD = struct.Struct("<BBqqB")  # records.encode_event's header and asset class, packed at once
_COMMAND_HEAD = struct.Struct("<BBqqqBB")  # records.encode_command's header and fixed fields, packed at once
_EMPTY_STR = records.encode_str("")
#: Engine steps of at least this many commands are written as one ENTRY_BLOCK record. A mass quote
#: of 16 quotes or more (a cancel and a new order per side); a single order never.
BLOCK_MIN_COMMANDS = 32


def entry_records(entry: JournalEntry) -> list[tuple[int, int, bytes]]:
    """(seq, record type, canonical bytes) of each record the ledger stores for an entry: one block
    for a step of ``BLOCK_MIN_COMMANDS`` commands or more, otherwise one record each."""
    if entry.kind == EntryKind.ENGINE and len(entry.commands) >= BLOCK_MIN_COMMANDS * RECORD_SIZE:
        return [(entry.seq_first, _BLOCK, records.encode_block(
            entry.seq_first, entry.ts, entry.arrival_ns, entry.asset_class, entry.source, entry.session,
            entry.client_order_ids, entry.quote_flags, entry.post_trade, entry.commands, entry.events))]
    return _one_record_each(entry)


def expand(payload: bytes) -> list[bytes]:
    """The records a stored record stands for: itself, or the records of an entry block (exactly the
    bytes ``_one_record_each`` gives for the step it came from). Raises RecordFormatError on a
    malformed block."""
    if len(payload) < 2 or payload[1] != _BLOCK:
        return [payload]
    block = records.decode_block(payload)
    entry = JournalEntry(block.seq_first, block.seq_last, block.hub_time_ns, EntryKind.ENGINE, block.participant,
                         block.asset_class, block.commands, block.events, session=block.session,
                         arrival_ns=block.arrival_ns, client_order_ids=block.client_order_ids,
                         quote_flags=block.quote_flags, post_trade=block.post_trade)
    return [p for _, _, p in _one_record_each(entry)]


def decode_all(payload: bytes) -> list[records.Record]:
    """``records.decode`` of each record a stored record stands for (see ``expand``)."""
    return [records.decode(p) for p in expand(payload)]


def entry_payloads(entry: JournalEntry) -> Iterator[bytes]:
    """Canonical records of one journal entry: each command followed by the events it caused."""
    if entry.kind != EntryKind.ENGINE:
        yield records.encode_detail(_KIND_TO_TYPE[entry.kind], entry.seq_first, entry.ts, entry.arrival_ns,
                                    entry.source, entry.session, entry.detail)
        return
    by_seq: dict[int, list[bytes]] = {}
    evbuf = entry.events
    for pos in range(0, len(evbuf), RECORD_SIZE):
        seq = int.from_bytes(evbuf[pos + 8:pos + 16], "little", signed=True)
        by_seq.setdefault(seq, []).append(evbuf[pos:pos + RECORD_SIZE])
    cmds = entry.commands
    for i in range(len(cmds) // RECORD_SIZE):
        seq = entry.seq_first + i
        yield records.encode_command(
            seq, entry.ts, entry.arrival_ns, entry.asset_class, entry.source, entry.session,
            entry.client_order_ids[i] if entry.client_order_ids else "",
            bool(entry.quote_flags[i]) if entry.quote_flags else False,
            cmds[i * RECORD_SIZE:(i + 1) * RECORD_SIZE])
        for ev in by_seq.get(seq, ()):
            yield records.encode_event(seq, entry.ts, entry.asset_class, ev)
        if entry.post_trade and entry.post_trade[i]:
            yield records.encode_detail(RecordType.POST_TRADE, seq, entry.ts, 0, "", "", entry.post_trade[i])


def _one_record_each(entry: JournalEntry) -> list[tuple[int, int, bytes]]:
    """(seq, record type, canonical bytes) of each record of an entry, unblocked: exactly ``entry_payloads``.
    An engine entry is built in one pass, each command followed by the events that carry its
    sequence number (the engine emits them in command order), with the parts every command of the
    entry shares encoded once; events in any other order go through ``entry_payloads``."""
    if entry.kind != EntryKind.ENGINE:
        return [(entry.seq_first, int(_KIND_TO_TYPE[entry.kind]), p) for p in entry_payloads(entry)]
    cmds, evbuf = entry.commands, entry.events
    ts, asset_class, arrival = entry.ts, entry.asset_class, entry.arrival_ns
    sender = records.encode_str(entry.source) + records.encode_str(entry.session)
    coids, flags, post = entry.client_order_ids, entry.quote_flags, entry.post_trade
    version, post_type = records.FORMAT_VERSION, int(RecordType.POST_TRADE)
    out: list[tuple[int, int, bytes]] = []
    add = out.append
    pos, end = 0, len(evbuf)
    for i in range(len(cmds) // RECORD_SIZE):
        seq = entry.seq_first + i
        add((seq, _COMMAND, b"".join((
            _COMMAND_HEAD.pack(version, _COMMAND, seq, ts, arrival, asset_class, 1 if flags and flags[i] else 0),
            sender, records.encode_str(coids[i]) if coids else _EMPTY_STR,
            cmds[i * RECORD_SIZE:(i + 1) * RECORD_SIZE]))))
        if pos < end:
            seq_bytes = seq.to_bytes(8, "little", signed=True)
            if evbuf[pos + 8:pos + 16] == seq_bytes:
                head = _EVENT_HEAD.pack(version, _EVENT, seq, ts, asset_class)
                while pos < end and evbuf[pos + 8:pos + 16] == seq_bytes:
                    add((seq, _EVENT, head + evbuf[pos:pos + RECORD_SIZE]))
                    pos += RECORD_SIZE
        if post and post[i]:
            add((seq, post_type, records.encode_detail(RecordType.POST_TRADE, seq, ts, 0, "", "", post[i])))
    if pos != end:  # an event out of command order (or of no command here): the regrouping path
        return [(int.from_bytes(p[2:10], "little", signed=True), p[1], p) for p in entry_payloads(entry)]
    return out
