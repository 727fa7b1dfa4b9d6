"""The ack log in front of a SQLite ledger: where an ack becomes durable, and what a restart, a torn
write or a failing database do with it."""

from __future__ import annotations

import time
from collections import Counter

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.client import HubClient
from hub.config import HubConfig
from hub.journal import JournalUnavailableError
from hub.server import run_server
from ledger.acklog import AckLog, AckLogError, decode_batch, encode_batch, pending_records
from ledger.store import LedgerJournal, ack_log_path
from tests.ledger.conftest import ORIGIN, LedgerDB, assert_complete_ledger, assert_seq_gap_free, new_orders_in, wait_for
from tests.ledger.test_store import _entry, _SqliteDiskFull

hashes = st.binary(min_size=32, max_size=32)
ints = st.integers(-(2**63), 2**63 - 1)
rows = st.tuples(ints, ints, st.integers(0, 2**31 - 1), ints, st.binary(max_size=300), hashes, hashes)
nodes = st.tuples(st.integers(0, 63), ints, hashes)
checkpoints = st.tuples(ints, hashes, hashes, ints, ints, st.text(max_size=200))


@settings(max_examples=200)
@given(st.integers(0, 2**62), st.lists(rows, max_size=20), st.lists(nodes, max_size=5), st.lists(checkpoints, max_size=2))
def test_a_batch_decodes_to_exactly_what_was_encoded(start, rows_, nodes_, checkpoints_) -> None:
    assert decode_batch(encode_batch(start, rows_, nodes_, checkpoints_)) == (start, rows_, nodes_, checkpoints_)


def test_a_torn_or_corrupt_tail_is_cut_off_and_the_frames_before_it_kept(tmp_path) -> None:
    path = tmp_path / "x.acklog"
    log = AckLog(path, sync=True)
    first, second = encode_batch(0, [], [], []), encode_batch(0, [(0, 1, 2, 3, b"p", bytes(32), bytes(32))], [], [])
    log.append(first)
    log.append(second)
    whole = path.read_bytes()
    log.close()
    cases = [(whole[:-1], [first]), (whole[:-40], [first]), (whole[:-1] + bytes([whole[-1] ^ 1]), [first]),
             (whole + bytes(7), [first, second])]  # a header cut short after two whole frames
    for damaged, kept in cases:
        path.write_bytes(damaged)
        log = AckLog(path, sync=False)
        assert log.read() == kept
        assert path.stat().st_size == log.size < len(damaged)
        log.close()


def _sqlite_only(db: LedgerDB) -> None:
    if db.is_pg:
        pytest.skip("the ack log is SQLite's: a PostgreSQL commit is its own ack")


def _journal(db: LedgerDB, engine=None, **kwargs) -> LedgerJournal:  # noqa: ANN001
    engine = engine or db.engine()
    return LedgerJournal(engine, db.signer, ORIGIN, checkpoint_every=40, checkpoint_interval_s=3600.0,
                         ack_log=AckLog(ack_log_path(engine), sync=False), **kwargs)


def test_an_ack_is_in_the_log_and_the_database_follows_it(ledger_db: LedgerDB) -> None:
    _sqlite_only(ledger_db)
    journal = _journal(ledger_db)
    try:
        for seq in range(1, 101):
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
            # acknowledged: the ledger on disk (database and log) holds it
            in_db = len(ledger_db.records())
            assert in_db + pending_records(journal._ack_log.path, in_db) == seq
        journal.settle_reads()
        assert len(ledger_db.records()) == 100 and journal.applies < 100  # batches gathered per transaction
    finally:
        journal.close()
    assert journal._ack_log.path.stat().st_size == 0  # closed: everything is in the database
    report = ledger_db.verify()
    assert report.ok and report.records == 100, report.failure


def test_a_restart_inserts_the_acknowledged_batches_the_database_lacks(ledger_db: LedgerDB) -> None:
    """The process stopped between acks and their insert (the database refused them here, which
    stands in for a kill): the next open inserts them, and the ledger verifies."""
    _sqlite_only(ledger_db)
    failing = _journal(ledger_db)
    failing.wait_committed(failing.append(_entry(1)), timeout=5.0)
    failing.settle_reads()

    def refuse(*_args) -> None:
        raise OSError("disk went away")

    failing._commit = refuse
    for seq in range(2, 51):
        failing.wait_committed(failing.append(_entry(seq)), timeout=5.0)  # acked: in the log
    failing.checkpoint(bytes(32), 10**18 + 50)
    with pytest.raises(JournalUnavailableError):  # committed to the log, but never in the database
        failing.flush(timeout=0.2)
    wait_for(lambda: not failing.available, what="the applier to report the failing database")
    assert "disk went away" in failing.error and len(ledger_db.records()) == 1
    # abandoned, as a killed process would be: the log is never emptied
    failing._stopping = failing._apply_abandoned = True

    journal = _journal(ledger_db)
    try:
        assert journal.recovered_from_ack_log == 49 and journal.tree_size == 50
        assert len(ledger_db.records()) == 50 and [cp.tree_size for cp in journal.checkpoints()] == [50]
        journal.wait_committed(journal.append(_entry(51)), timeout=5.0)
    finally:
        journal.close()
    rows = ledger_db.records()
    assert len(rows) == 51
    assert_seq_gap_free(rows)
    report = ledger_db.verify()
    assert report.ok, report.failure


def _append_as_one_batch(journal: LedgerJournal, seqs: range) -> int:
    """Queue ``seqs`` while the writer is held, so they are hashed and written as one batch."""
    with journal._write_lock:
        tickets = [journal.append(_entry(seq)) for seq in seqs]
    return tickets[-1]


def test_a_large_batch_with_nothing_logged_before_it_goes_straight_into_the_database(ledger_db: LedgerDB) -> None:
    """Under load a batch is large and its commit is shared by many acks: it skips the log. A small
    batch is logged; the database stays in log order either way."""
    _sqlite_only(ledger_db)
    journal = _journal(ledger_db)
    try:
        journal.wait_committed(_append_as_one_batch(journal, range(1, 601)), timeout=10.0)
        # acked and in the database at once: no applier pass, nothing in the log
        assert len(ledger_db.records()) == 600 and journal.applies == 0
        assert journal._ack_log.size == 0
        journal.wait_committed(journal.append(_entry(601)), timeout=5.0)
        assert journal._ack_log.size > 0  # a single order's batch is logged
        journal.settle_reads()
        assert len(ledger_db.records()) == 601 and journal.applies == 1
    finally:
        journal.close()
    assert_complete_ledger(ledger_db, 601)


def test_a_large_batch_behind_a_logged_one_is_logged_too_and_recovered_in_order(ledger_db: LedgerDB) -> None:
    """A large batch may not overtake a logged batch the database lacks: with the database refusing
    writes, both are acked from the log, and a restart inserts them in order."""
    _sqlite_only(ledger_db)
    failing = _journal(ledger_db)

    def refuse(*_args) -> None:
        raise OSError("disk went away")

    failing._commit = refuse
    failing.wait_committed(failing.append(_entry(1)), timeout=5.0)  # logged, never applied
    failing.wait_committed(_append_as_one_batch(failing, range(2, 602)), timeout=10.0)  # acked: logged too
    assert ledger_db.records() == []
    failing._stopping = failing._apply_abandoned = True  # killed: the log is never emptied

    journal = _journal(ledger_db)
    try:
        assert journal.recovered_from_ack_log == 601 and journal.tree_size == 601
        journal.wait_committed(_append_as_one_batch(journal, range(602, 1202)), timeout=10.0)  # now direct
        assert len(ledger_db.records()) == 1201
    finally:
        journal.close()
    assert_complete_ledger(ledger_db, 1201)


def test_a_log_that_does_not_follow_the_database_is_refused(ledger_db: LedgerDB) -> None:
    _sqlite_only(ledger_db)
    engine = ledger_db.engine()
    log = AckLog(ack_log_path(engine), sync=False)
    log.append(encode_batch(5, [(5, 6, 1, 7, b"x", bytes(32), bytes(32))], [], []))  # the database has 0 records
    with pytest.raises(AckLogError, match="does not follow"):
        LedgerJournal(engine, ledger_db.signer, ORIGIN, ack_log=log)
    assert ledger_db.records() == []


def test_with_an_ack_log_a_failing_database_stops_new_commands_and_loses_no_ack(ledger_db: LedgerDB) -> None:
    """Over gRPC: the database fills; what was acked before the applier noticed is in the log, every
    later command is refused UNAVAILABLE, and once the database returns the backlog goes in and the
    hub takes orders again. Every ack is in the ledger exactly once, nothing refused is."""
    _sqlite_only(ledger_db)
    outage = _SqliteDiskFull(ledger_db)
    journal = _journal(ledger_db, engine=outage.engine, commit_timeout_s=1.0)
    config = HubConfig.default().with_network(host="127.0.0.1", port=0)
    acked: dict[str, int] = {}
    refused: list[str] = []
    with run_server(config, journal, grace=0.5) as (hub, port), \
            HubClient(f"127.0.0.1:{port}", "dev-inst-2", timeout=10) as client:
        for i in range(3):
            acked[f"ok-{i}"] = client.submit("MSFT", "buy", 1, 419_0000, client_order_id=f"ok-{i}").order_id
        journal.settle_reads()
        outage.start(journal)
        for i in range(2000):
            cid = f"during-{i}"
            try:
                ack = client.submit("MSFT", "buy", 1, 419_0000, client_order_id=cid)
                if ack.accepted:  # past the default 50 orders/s the rate limit refuses some (a typed reject)
                    acked[cid] = ack.order_id
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE and "ledger" in exc.details(), exc.details()
                refused.append(cid)
                break
        assert refused, "the database never failed"
        assert not journal.available and outage.error in journal.error
        with pytest.raises(grpc.RpcError) as caught:
            client.submit("MSFT", "buy", 1, 419_0000, client_order_id="refused-again")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        refused.append("refused-again")

        outage.end()
        wait_for(lambda: journal.available, timeout=15, what="the applier to write its backlog")
        acked["after"] = client.submit("MSFT", "buy", 1, 419_0000, client_order_id="after").order_id

    by_cid = Counter(cid for _, participant, cid in new_orders_in(ledger_db) if participant == "inst-2")
    for cid in acked:
        assert by_cid[cid] == 1, f"acknowledged order {cid} must be in the ledger exactly once"
    assert not any(by_cid[cid] for cid in refused), "refused commands were never sequenced"
    assert_seq_gap_free(ledger_db.records())
    report = ledger_db.verify()
    assert report.ok, report.failure


def test_an_urgent_step_holds_the_applier_back_but_not_acks_or_readers(ledger_db: LedgerDB) -> None:
    """While a kill's step holds ``urgent``, acks still come from the log and the database waits;
    a reader that must see the records still gets them; the step's end lets the applier go."""
    _sqlite_only(ledger_db)
    journal = _journal(ledger_db)
    try:
        with journal.urgent():
            for seq in range(1, 6):
                journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
            time.sleep(0.05)  # 25 times the applier's lazy period
            assert ledger_db.records() == [] and journal.applies == 0
            journal.wait_committed(journal.append(_entry(6)), timeout=5.0)
            journal.settle_reads()  # a reader goes ahead of the step
            assert len(ledger_db.records()) == 6
            journal.wait_committed(journal.append(_entry(7)), timeout=5.0)
            time.sleep(0.05)
            assert len(ledger_db.records()) == 6
        wait_for(lambda: len(ledger_db.records()) == 7, what="the applier after the urgent step")
    finally:
        journal.close()
    report = ledger_db.verify()
    assert report.ok and report.records == 7, report.failure


def test_a_reader_that_cannot_see_every_acknowledged_record_is_told_so(ledger_db: LedgerDB) -> None:
    """``settle_reads`` returned quietly when the database could not take the backlog in time, and
    the regulator's ledger service then answered NOT_FOUND for acknowledged records. It raises
    (UNAVAILABLE over gRPC) instead, and returns once the backlog is in."""
    _sqlite_only(ledger_db)
    outage = _SqliteDiskFull(ledger_db)
    journal = _journal(ledger_db, engine=outage.engine)
    try:
        journal.wait_committed(journal.append(_entry(1)), timeout=5.0)
        journal.settle_reads()
        outage.start(journal)
        seq = 1
        while journal.available and seq < 5_000:  # acknowledged (in the log) until the applier fails
            seq += 1
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
            if seq % 100 == 0:
                time.sleep(0.3)  # the applier's lazy period: let it try
        assert not journal.available, "the database never failed"
        with pytest.raises(JournalUnavailableError, match="not in the database"):
            journal.settle_reads(timeout=0.5)
        outage.end()
        wait_for(lambda: journal.available, timeout=15, what="the applier to write its backlog")
        journal.settle_reads(timeout=15)
        assert len(ledger_db.records()) == seq
    finally:
        journal.close()
