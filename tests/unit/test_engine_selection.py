"""Choosing an engine, the shared interface, the digest format, and the binary codec."""

from __future__ import annotations

import hashlib
import re
import struct
import sys

import pytest

import matching
from matching.engine import ENGINE_ENV, EngineUnavailableError, create_engine, cython_available
from matching.instruments import DEFAULT_INSTRUMENTS, by_asset_class
from matching.interface import MatchingEngine
from matching.reference import ReferenceEngine
from matching.types import (
    COMMAND_KIND,
    DIGEST_BOOK_HEADER,
    DIGEST_ENGINE_HEADER,
    DIGEST_ORDER,
    EVENT_KIND,
    RECORD_SIZE,
    RECORD_SLOTS,
    Accepted,
    AssetClass,
    BookDelta,
    Cancel,
    Cancelled,
    CancelReason,
    CommandKind,
    DecodeError,
    Done,
    EndOfSession,
    EventKind,
    Expired,
    MassCancel,
    MassCancelReport,
    NewOrder,
    Rejected,
    RejectReason,
    Replace,
    Replaced,
    SessionEndReport,
    TopOfBook,
    Trade,
    decode_commands,
    decode_events,
    encode_command,
    encode_commands,
    encode_event,
    encode_events,
)

EQUITIES = by_asset_class(DEFAULT_INSTRUMENTS)[AssetClass.EQUITY]


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    return monkeypatch


@pytest.fixture
def without_compiled_engine(no_env):
    """Make ``matching._cengine`` unimportable for the test. Removing the package attribute as
    well matters: ``from matching import _cengine`` finds an already imported submodule there
    without consulting ``sys.modules``."""
    no_env.setitem(sys.modules, "matching._cengine", None)
    no_env.delattr(matching, "_cengine", raising=False)
    return no_env


# -- SELECTION --------------------------------------------------------------------------------


def test_create_engine_defaults_to_the_compiled_engine(no_env):
    engine = create_engine(AssetClass.EQUITY, EQUITIES)
    assert engine.implementation == "cython"
    assert type(engine).__module__ == "matching._cengine"
    assert cython_available()


def test_empty_hub_engine_variable_means_the_default(no_env):
    no_env.setenv(ENGINE_ENV, "")
    assert create_engine(AssetClass.EQUITY, EQUITIES).implementation == "cython"


def test_hub_engine_reference_selects_the_reference_engine(no_env):
    no_env.setenv(ENGINE_ENV, "reference")
    engine = create_engine(AssetClass.EQUITY, EQUITIES)
    assert type(engine) is ReferenceEngine
    assert engine.implementation == "reference"


def test_explicit_implementation_overrides_hub_engine(no_env):
    no_env.setenv(ENGINE_ENV, "reference")
    assert create_engine(AssetClass.EQUITY, EQUITIES, implementation="cython").implementation == "cython"
    no_env.setenv(ENGINE_ENV, "cython")
    assert create_engine(AssetClass.EQUITY, EQUITIES, implementation="reference").implementation == "reference"


@pytest.mark.parametrize("name", ["rust", "Cython", "REFERENCE", "naive", " cython"])
def test_unknown_implementation_name_raises_engine_unavailable(no_env, name):
    with pytest.raises(EngineUnavailableError, match="unknown engine implementation"):
        create_engine(AssetClass.EQUITY, EQUITIES, implementation=name)
    no_env.setenv(ENGINE_ENV, name)
    with pytest.raises(EngineUnavailableError, match=re.escape(repr(name))):
        create_engine(AssetClass.EQUITY, EQUITIES)


def test_missing_compiled_engine_raises_and_names_the_explicit_switch(without_compiled_engine):
    with pytest.raises(EngineUnavailableError) as info:
        create_engine(AssetClass.EQUITY, EQUITIES)
    assert f"{ENGINE_ENV}=reference" in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    assert not cython_available()


def test_missing_compiled_engine_never_falls_back_when_cython_is_asked_for(without_compiled_engine):
    without_compiled_engine.setenv(ENGINE_ENV, "cython")
    with pytest.raises(EngineUnavailableError):
        create_engine(AssetClass.EQUITY, EQUITIES)
    with pytest.raises(EngineUnavailableError):
        create_engine(AssetClass.EQUITY, EQUITIES, implementation="cython")


def test_reference_engine_still_works_without_the_compiled_engine(without_compiled_engine):
    without_compiled_engine.setenv(ENGINE_ENV, "reference")
    assert type(create_engine(AssetClass.EQUITY, EQUITIES)) is ReferenceEngine


# -- INTERFACE AND DIGEST ---------------------------------------------------------------------


def test_both_engines_satisfy_the_matching_engine_protocol(make_engine, engine_impl):
    engine = make_engine()
    assert isinstance(engine, MatchingEngine)
    assert engine.implementation == engine_impl
    assert engine.asset_class == AssetClass.EQUITY
    assert engine.instrument_ids == [1, 2]
    assert (engine.last_order_id, engine.last_trade_id, engine.last_seq) == (0, 0, 0)


def expected_empty_digest(asset_class: AssetClass) -> bytes:
    """The documented canonical form, computed independently of either engine."""
    h = hashlib.sha256(DIGEST_ENGINE_HEADER.pack(b"ENGINE", asset_class, 0, 0))
    for inst in by_asset_class(DEFAULT_INSTRUMENTS)[asset_class]:
        h.update(hashlib.sha256(DIGEST_BOOK_HEADER.pack(b"BOOK", inst.instrument_id)).digest())
    return h.digest()


@pytest.mark.parametrize("asset_class", list(AssetClass), ids=lambda ac: ac.name)
def test_fresh_engine_digest_is_the_canonical_one_for_both_implementations(make_engine, asset_class):
    assert make_engine(asset_class).digest() == expected_empty_digest(asset_class)


def test_fresh_digests_differ_between_asset_classes(make_engine):
    assert len({make_engine(ac).digest() for ac in AssetClass}) == len(AssetClass)


def test_book_digest_covers_every_resting_order_field(make_engine):
    engine = make_engine()
    engine.process(NewOrder(1, 0, 1, 7, 3, 2, 1, 2, 190_0100, 50, 20, 1, 3))  # DAY post-only iceberg
    view = (7, 3, 2, 190_0100, 50, 20, 20, 2, 1, 3)
    assert tuple(engine.order(1, 7)) == view
    book = hashlib.sha256(DIGEST_BOOK_HEADER.pack(b"BOOK", 1) + DIGEST_ORDER.pack(*view)).digest()
    assert engine.book_digest(1) == book
    h = hashlib.sha256(DIGEST_ENGINE_HEADER.pack(b"ENGINE", AssetClass.EQUITY, 7, 0))
    h.update(book)
    h.update(hashlib.sha256(DIGEST_BOOK_HEADER.pack(b"BOOK", 2)).digest())
    assert engine.digest() == h.digest()


# -- CODEC ------------------------------------------------------------------------------------

BIG = 2**63 - 1
COMMANDS = [
    NewOrder(1, 1_700_000_000_000_000_000, 1, 42, 7, 1, 2, 3, 0, 100, 0, 0, 2),
    NewOrder(2, 2, 5, 43, 8, 2, 1, 1, 1_08500, 5_000, 1_000, 1, 1),
    Cancel(3, 3, 1, 42, 7),
    Replace(4, 4, 1, 43, 8, 190_0100, 30),
    MassCancel(5, 5, 0, 7),
    EndOfSession(6, 6, 3),
    NewOrder(BIG, -BIG - 1, -1, BIG, -5, 9, 9, 9, -BIG - 1, BIG, -1, 2, -3),
]
EVENTS = [
    Accepted(1, 1, 42, 7, 1, 190_0000, 100),
    Rejected(2, 99, 43, 8, RejectReason.UNKNOWN_INSTRUMENT, CommandKind.NEW_ORDER),
    Trade(3, 1, 9, 190_0000, 10, 2, 41, 6, 42, 7, 0, 90),
    Done(4, 1, 41, 6),
    Cancelled(5, 1, 42, 7, 90, CancelReason.IMMEDIATE_REMAINDER),
    Expired(6, 2, 50, 3, 12),
    Replaced(7, 1, 43, 8, 190_0100, 30, 0),
    BookDelta(8, 1, 2, 190_0100, 0),
    TopOfBook(9, 1, 189_9900, 15, 190_0100, 30),
    MassCancelReport(10, 0, 7, 3),
    SessionEndReport(11, 0, 4),
    TopOfBook(-BIG - 1, BIG, -1, -2, -3, BIG),
]


def test_test_data_covers_every_command_and_event_type():
    assert {type(c) for c in COMMANDS} == set(COMMAND_KIND)
    assert {type(e) for e in EVENTS} == set(EVENT_KIND)


def slots(record: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{RECORD_SLOTS}q", record)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_command_encodes_to_one_record_and_decodes_back_exactly(command):
    record = encode_command(command)
    assert len(record) == RECORD_SIZE
    assert slots(record) == (COMMAND_KIND[type(command)], *command) + (0,) * (RECORD_SLOTS - 1 - len(command))
    (decoded,) = decode_commands(record)
    assert type(decoded) is type(command) and decoded == command


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_event_encodes_to_one_record_and_decodes_back_exactly(event):
    record = encode_event(event)
    assert len(record) == RECORD_SIZE
    assert slots(record) == (EVENT_KIND[type(event)], *event) + (0,) * (RECORD_SLOTS - 1 - len(event))
    (decoded,) = decode_events(record)
    assert type(decoded) is type(event) and decoded == event


def test_a_batch_encodes_to_exactly_the_records_of_its_commands_in_order():
    # encode_commands packs without a call per command; the per-command encoding is the reference
    batch = COMMANDS * 3
    assert encode_commands(batch) == b"".join(encode_command(c) for c in batch)
    assert encode_commands([]) == b""


def test_a_batch_with_a_field_outside_int64_is_refused_whole():
    with pytest.raises(ValueError, match="int64"):
        encode_commands([*COMMANDS, MassCancel(1, 0, 1, 2**63)])


def test_batches_round_trip_in_order():
    assert decode_commands(encode_commands(COMMANDS)) == COMMANDS
    assert [type(c) for c in decode_commands(encode_commands(COMMANDS))] == [type(c) for c in COMMANDS]
    assert decode_events(encode_events(EVENTS)) == EVENTS
    assert decode_commands(b"") == [] and decode_events(b"") == []


def test_decoding_rejects_unknown_kinds_and_partial_records():
    with pytest.raises(DecodeError, match="unknown command kind 6 at record 1"):
        decode_commands(encode_command(COMMANDS[0]) + struct.pack(f"<{RECORD_SLOTS}q", 6, *[0] * 15))
    with pytest.raises(DecodeError, match="unknown event kind 12"):
        decode_events(struct.pack(f"<{RECORD_SLOTS}q", 12, *[0] * 15))
    with pytest.raises(DecodeError, match="not a whole number of records"):
        decode_events(encode_event(EVENTS[0])[:-8])
    with pytest.raises(DecodeError):
        decode_commands(b"\x00")


def test_wire_enumerations_keep_their_numbers():
    """The journal and the proto enums depend on these values; renumbering breaks replay."""
    assert [(k.name, k.value) for k in CommandKind] == [
        ("NEW_ORDER", 1), ("CANCEL", 2), ("REPLACE", 3), ("MASS_CANCEL", 4), ("END_OF_SESSION", 5)]
    assert [k.value for k in EventKind] == list(range(1, 12))
    assert [EVENT_KIND[t] for t in (Accepted, Rejected, Trade, Done, Cancelled, Expired, Replaced,
                                    BookDelta, TopOfBook, MassCancelReport, SessionEndReport)] == list(EventKind)
    assert [r.value for r in RejectReason] == [*range(101, 119), 201, 301, 302]
    assert [r.value for r in CancelReason] == [1, 2, 3, 4, 5]  # 5: RISK (the hub's risk cancels)


def test_engine_events_use_the_same_codec(make_engine):
    engine = make_engine()
    cmd = NewOrder(1, 0, 1, 1, 1, 1, 1, 1, 190_0000, 10)
    packed = engine.process_packed(encode_command(cmd))
    assert decode_events(packed) == [
        Accepted(1, 1, 1, 1, 1, 190_0000, 10), BookDelta(1, 1, 1, 190_0000, 10), TopOfBook(1, 1, 190_0000, 10, 0, 0)]
    assert encode_events(make_engine().process(cmd)) == packed
