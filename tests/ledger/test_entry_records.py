"""What an entry becomes in the ledger: the writer's one-pass record builder against the reference
encoding (``entry_payloads``), and entry blocks, which must expand to exactly those records."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.journal import EntryKind, JournalEntry
from ledger.entries import BLOCK_MIN_COMMANDS, _one_record_each, decode_all, entry_payloads, entry_records, expand
from ledger.records import RecordFormatError, RecordType, decode, decode_block, record_end_seq
from matching.types import RECORD_SIZE


def _reference(entry: JournalEntry) -> list[tuple[int, int, bytes]]:
    return [(int.from_bytes(p[2:10], "little", signed=True), p[1], p) for p in entry_payloads(entry)]


def _engine_record(seq: int, filler: int) -> bytes:
    """A 128-byte engine record whose bytes 8..16 carry ``seq``, as commands and events do."""
    return bytes([filler] * 8) + seq.to_bytes(8, "little", signed=True) + bytes([filler]) * (RECORD_SIZE - 16)


@st.composite
def engine_entries(draw, max_commands: int = 6) -> JournalEntry:
    first = draw(st.integers(1, 2**40))
    n = draw(st.integers(1, max_commands))
    commands = b"".join(_engine_record(first + i, i) for i in range(n))
    # events per command, in command order; sometimes one of another seq or out of order
    seqs = [first + i for i in range(n) for _ in range(draw(st.integers(0, 3)))]
    if seqs and draw(st.booleans()):
        seqs = draw(st.permutations(seqs)) if draw(st.booleans()) else [*seqs, first + n + 5]
    events = b"".join(_engine_record(s, 200 + k % 50) for k, s in enumerate(seqs))
    with_ids = draw(st.booleans())
    return JournalEntry(
        first, first + n - 1, draw(st.integers(0, 2**62)), EntryKind.ENGINE, draw(st.text(max_size=12)),
        draw(st.integers(0, 4)), commands, events, session=draw(st.text(max_size=12)),
        arrival_ns=draw(st.integers(0, 2**62)),
        client_order_ids=tuple(draw(st.text(max_size=20)) for _ in range(n)) if with_ids else (),
        quote_flags=tuple(draw(st.booleans()) for _ in range(n)) if draw(st.booleans()) else (),
        post_trade=tuple(draw(st.sampled_from([b"", b'{"fee":1}'])) for _ in range(n)) if draw(st.booleans()) else ())


@settings(max_examples=300, deadline=None)
@given(engine_entries())
def test_engine_entries_build_exactly_the_reference_records(entry: JournalEntry) -> None:
    assert _one_record_each(entry) == _reference(entry)
    assert entry_records(entry) == _reference(entry)  # under BLOCK_MIN_COMMANDS: one record each


@settings(max_examples=150, deadline=None)
@given(engine_entries(max_commands=3 * BLOCK_MIN_COMMANDS))
def test_a_large_step_is_one_block_that_expands_to_exactly_the_reference_records(entry: JournalEntry) -> None:
    stored = entry_records(entry)
    n = len(entry.commands) // RECORD_SIZE
    if n < BLOCK_MIN_COMMANDS:
        assert stored == _reference(entry)
        return
    ((seq, rtype, payload),) = stored
    assert (seq, rtype) == (entry.seq_first, RecordType.ENTRY_BLOCK)
    assert expand(payload) == [p for _, _, p in _reference(entry)]
    assert [r.engine_record for r in decode_all(payload) if r.record_type == RecordType.COMMAND] == [
        entry.commands[i * RECORD_SIZE:(i + 1) * RECORD_SIZE] for i in range(n)]
    assert record_end_seq(payload) == entry.seq_last == decode_block(payload).seq_last


def _block_entry(n: int = BLOCK_MIN_COMMANDS) -> JournalEntry:
    first = 100
    return JournalEntry(first, first + n - 1, 5, EntryKind.ENGINE, "mm-1", 1,
                        b"".join(_engine_record(first + i, i) for i in range(n)),
                        b"".join(_engine_record(first + i, 9) for i in range(n)), session="s",
                        client_order_ids=tuple(f"q{i}" for i in range(n)), quote_flags=(True,) * n)


def test_a_malformed_block_is_refused_and_a_whole_one_expands() -> None:
    ((_, _, payload),) = entry_records(_block_entry())
    head = decode(payload)  # the header and sender; its records come from expand
    assert (head.record_type, head.seq, head.participant, head.engine_record) == (RecordType.ENTRY_BLOCK, 100, "mm-1", b"")
    flags = payload.index(b"\x01" * BLOCK_MIN_COMMANDS)  # every command entered by the quote
    for damaged in (payload[:-1], payload + b"\x00", payload[:30], payload[:flags] + b"\x02" + payload[flags + 1:],
                    payload[:31] + b"\xff\xff\x00\x00" + payload[35:]):  # a flag of 2; the event byte count
        with pytest.raises(RecordFormatError):
            expand(damaged)
    assert len(expand(payload)) == 2 * BLOCK_MIN_COMMANDS


def test_other_entries_are_their_one_detail_record() -> None:
    entry = JournalEntry(7, 7, 99, EntryKind.ADMIN, "operator", 0, detail=b'{"action":"halt"}', session="s")
    assert entry_records(entry) == _reference(entry) and len(entry_records(entry)) == 1
