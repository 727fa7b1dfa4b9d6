"""The native record decoder (matching._codec) against its reference, matching.types._decode."""

from __future__ import annotations

import gc
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import types as T

pytestmark = pytest.mark.skipif(not T.NATIVE_DECODE, reason="matching._codec is not built (HUB_DISABLE_CEXT=1)")

INT64 = st.integers(-(2**63), 2**63 - 1)


def _records(types: dict[type, object]):
    """Any sequence of records of the given types, fields anywhere in int64."""
    one = st.sampled_from(list(types)).flatmap(
        lambda cls: st.tuples(*[INT64] * len(cls._fields)).map(lambda fields: cls(*fields)))
    return st.lists(one, max_size=40)


def _reference(buf: bytes, what: str) -> list:
    layout = T._EVENT_LAYOUT if what == "event" else T._COMMAND_LAYOUT
    return T._decode(buf, layout, what)


def _same(native: list, reference: list) -> None:
    assert native == reference
    assert [type(x) for x in native] == [type(x) for x in reference]


@settings(max_examples=300)
@given(_records(T.EVENT_KIND))
def test_native_event_decode_equals_the_reference(events):
    buf = T.encode_events(events)
    decoded = T.decode_events(buf)
    _same(decoded, _reference(buf, "event"))
    _same(decoded, events)


@settings(max_examples=300)
@given(_records(T.COMMAND_KIND))
def test_native_command_decode_equals_the_reference(commands):
    buf = T.encode_commands(commands)
    _same(T.decode_commands(buf), _reference(buf, "command"))


@settings(max_examples=200)
@given(st.binary(max_size=3 * T.RECORD_SIZE + 7), st.sampled_from(["event", "command"]))
def test_arbitrary_bytes_decode_or_fail_exactly_as_the_reference_does(buf, what):
    """Garbage (a ledger record someone edited) fails with the reference's DecodeError and message."""
    native = T.decode_events if what == "event" else T.decode_commands
    try:
        expected = _reference(buf, what)
    except T.DecodeError as exc:
        with pytest.raises(T.DecodeError) as got:
            native(buf)
        assert str(got.value) == str(exc)
    else:
        _same(native(buf), expected)


@pytest.mark.parametrize("kind", [-1, 0, 12, 63, 64, 2**40])
def test_unknown_kinds_are_refused_with_the_record_index(kind):
    good = T.encode_events([T.Done(1, 2, 3, 4)])
    bad = struct.pack(f"<{T.RECORD_SLOTS}q", kind, *([0] * (T.RECORD_SLOTS - 1)))
    with pytest.raises(T.DecodeError, match=f"unknown event kind {kind} at record 1"):
        T.decode_events(good + bad)


def test_decoded_records_are_ordinary_tracked_namedtuples_with_no_leaked_references():
    events = [T.Trade(*range(2**40, 2**40 + 12)), T.Accepted(7, 1, 2**62, 3, 1, 10**15, 5)]
    buf = T.encode_events(events)
    decoded = T.decode_events(buf)
    for ev in decoded:
        assert gc.is_tracked(ev)  # like any tuple holding ints: the collector may see it
        assert ev._replace(seq=0).seq == 0 and hash(ev) == hash(tuple(ev))
    del ev
    # Counted outside the asserts (pytest's rewriting holds its operands): the list's reference and
    # getrefcount's argument for each record, its tuple's and the argument for a large field.
    records = [sys.getrefcount(decoded[i]) for i in range(len(decoded))]
    fields = [sys.getrefcount(decoded[i][2]) for i in range(len(decoded))]
    assert records == [2, 2] and fields == [2, 2]

def test_a_non_bytes_buffer_takes_the_reference_path():
    buf = T.encode_events([T.Done(1, 2, 3, 4)])
    assert T.decode_events(memoryview(buf)) == T.decode_events(buf) == [T.Done(1, 2, 3, 4)]
