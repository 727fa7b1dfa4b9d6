"""The writer's one-pass record builder against the reference encoding (``entry_payloads``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.journal import EntryKind, JournalEntry
from ledger.store import _entry_records, entry_payloads
from matching.types import RECORD_SIZE


def _reference(entry: JournalEntry) -> list[tuple[int, int, bytes]]:
    return [(int.from_bytes(p[2:10], "little", signed=True), p[1], p) for p in entry_payloads(entry)]


def _engine_record(seq: int, filler: int) -> bytes:
    """A 128-byte engine record whose bytes 8..16 carry ``seq``, as commands and events do."""
    return bytes([filler] * 8) + seq.to_bytes(8, "little", signed=True) + bytes([filler]) * (RECORD_SIZE - 16)


@st.composite
def engine_entries(draw) -> JournalEntry:
    first = draw(st.integers(1, 2**40))
    n = draw(st.integers(1, 6))
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
    assert _entry_records(entry) == _reference(entry)


def test_other_entries_are_their_one_detail_record() -> None:
    entry = JournalEntry(7, 7, 99, EntryKind.ADMIN, "operator", 0, detail=b'{"action":"halt"}', session="s")
    assert _entry_records(entry) == _reference(entry) and len(_entry_records(entry)) == 1
