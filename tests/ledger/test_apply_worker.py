"""The ack log's apply worker: a process of its own inserts the acknowledged batches into SQLite
(``[ledger] applier = "process"``, the default). What the thread applier guarantees must hold across
the process boundary: the database follows the acks and verifies, a worker that dies is replaced
and loses nothing, a batch the database refuses is reported and changes nothing, and a journal
never replays the ack log while a previous hub's worker may still be inserting."""

from __future__ import annotations

import fcntl
import gc
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from hub.config import ConfigError, HubConfig, LedgerConfig
from ledger import apply_worker
from ledger.acklog import AckLog, encode_batch
from ledger.apply_worker import ApplyWorker, ApplyWorkerError, wait_for_previous_worker, worker_lock_path
from ledger.store import LedgerJournal, ack_log_path, open_ledger
from tests.ledger.conftest import ORIGIN, LedgerDB, assert_complete_ledger, wait_for
from tests.ledger.test_store import _entry


def _worker_journal(db: LedgerDB) -> LedgerJournal:
    if db.is_pg:
        pytest.skip("the ack log (and its worker) is SQLite's: a PostgreSQL commit is its own ack")
    engine = db.engine()
    log_path = ack_log_path(engine)
    worker = ApplyWorker(engine.url.render_as_string(hide_password=False), "process", worker_lock_path(log_path))
    return LedgerJournal(engine, db.signer, ORIGIN, checkpoint_every=40, checkpoint_interval_s=3600.0,
                         ack_log=AckLog(log_path, sync=False), apply_worker=worker)


def test_the_worker_inserts_what_was_acknowledged_and_the_ledger_verifies(ledger_db: LedgerDB) -> None:
    journal = _worker_journal(ledger_db)
    try:
        for seq in range(1, 101):
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
        journal.settle_reads()
        assert len(ledger_db.records()) == 100 and 0 < journal.applies < 100
        assert journal._apply_worker.pid not in (None, os.getpid())  # inserted by another process
    finally:
        journal.close()
    assert journal._ack_log.path.stat().st_size == 0  # closed: everything is in the database
    assert journal._apply_worker.pid is None  # and the worker has ended
    report = ledger_db.verify()
    assert report.ok and report.records == 100, report.failure


def test_a_worker_that_dies_is_replaced_and_nothing_acknowledged_is_lost(ledger_db: LedgerDB) -> None:
    journal = _worker_journal(ledger_db)
    try:
        for seq in range(1, 31):
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
        journal.settle_reads()
        first = journal._apply_worker.pid
        os.kill(first, signal.SIGKILL)
        for seq in range(31, 61):
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)  # acked: in the log
        wait_for(lambda: journal.available and journal._apply_worker.pid not in (None, first),
                 what="a new worker to take over")
        journal.settle_reads()
        assert len(ledger_db.records()) == 60
    finally:
        journal.close()
    assert_complete_ledger(ledger_db, 60)


def test_a_batch_the_database_refuses_is_reported_and_the_worker_serves_on(ledger_db: LedgerDB) -> None:
    journal = _worker_journal(ledger_db)
    try:
        journal.wait_committed(journal.append(_entry(1)), timeout=5.0)
        journal.settle_reads()
        worker = journal._apply_worker
        pid = worker.pid
        before = ledger_db.records()
        clash = encode_batch(0, [(0, 1, 2, 3, b"p", bytes(32), bytes(32))], [], [])  # record 0 exists
        with pytest.raises(ApplyWorkerError, match="IntegrityError"):
            worker.apply([clash])
        assert ledger_db.records() == before and worker.pid == pid  # nothing changed; same worker
        journal.wait_committed(journal.append(_entry(2)), timeout=5.0)
        journal.settle_reads()
        assert len(ledger_db.records()) == 2
    finally:
        journal.close()


def test_a_journal_does_not_replay_the_ack_log_while_a_previous_worker_holds_its_lock(tmp_path: Path) -> None:
    lock_path = str(tmp_path / "ledger.db.acklog.worker.lock")
    wait_for_previous_worker(lock_path, timeout=0.1)  # no worker: at once
    held = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # a killed hub's worker, still finishing its transaction
    try:
        with pytest.raises(ApplyWorkerError, match="still holds"):
            wait_for_previous_worker(lock_path, timeout=0.2)
    finally:
        os.close(held)
    wait_for_previous_worker(lock_path, timeout=0.1)


def test_the_hub_runs_the_worker_by_default_and_the_choice_is_validated(tmp_path: Path) -> None:
    assert HubConfig.default().ledger.applier == "process"
    with pytest.raises(ConfigError, match="ledger.applier"):
        HubConfig(ledger=LedgerConfig(applier="fork")).validated()
    journal = open_ledger(str(tmp_path), applier="process")
    try:
        journal.wait_committed(journal.append(_entry(1)), timeout=5.0)
        journal.settle_reads()
        assert journal._apply_worker is not None and journal._apply_worker.pid is not None
    finally:
        journal.close()
    threaded = open_ledger(str(tmp_path), applier="thread")
    try:
        assert threaded._apply_worker is None and threaded.tree_size == 1
    finally:
        threaded.close()


def test_opening_a_ledger_waits_until_a_previous_worker_has_finished(tmp_path: Path) -> None:
    first = open_ledger(str(tmp_path), applier="process")
    log_path = first._ack_log.path
    first.close()
    held = os.open(worker_lock_path(log_path), os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # a killed hub's worker, finishing its last transaction
    released_at = []

    def finish() -> None:
        released_at.append(time.monotonic())
        os.close(held)

    timer = threading.Timer(0.3, finish)
    timer.start()
    try:
        journal = open_ledger(str(tmp_path), applier="thread")  # whichever applier the new hub runs
        opened_at = time.monotonic()
        journal.close()
    finally:
        timer.join()
    assert released_at and opened_at >= released_at[0]


def test_workers_that_die_between_requests_leave_no_pipes_behind(ledger_db: LedgerDB) -> None:
    journal = _worker_journal(ledger_db)
    try:
        journal.wait_committed(journal.append(_entry(1)), timeout=5.0)
        journal.settle_reads()
        assert len(ledger_db.records()) == 1  # (the test's own reading connection is open from here on)
        # Earlier tests' garbage holds descriptors the collector would close at any moment: collect
        # it now, and no collection from here on, so the count sees only this journal's doing.
        gc.collect()
        gc.disable()
        fds = len(os.listdir("/proc/self/fd"))
        for seq in range(2, 6):
            dead = journal._apply_worker.pid
            os.kill(dead, signal.SIGKILL)  # found dead at the next request, or dying during it
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
            wait_for(lambda n=seq: journal.available and len(ledger_db.records()) == n, what="the batch to be inserted")
            assert journal._apply_worker.pid != dead
        assert len(os.listdir("/proc/self/fd")) == fds  # no pipe of a dead worker is left open
        assert len(ledger_db.records()) == 5
    finally:
        gc.enable()
        journal.close()


def test_a_worker_that_dies_between_its_commit_and_its_answer_leaves_the_ledger_available(
        ledger_db: LedgerDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its batches are in the database: retrying them would fail on every record (duplicate index)
    and the hub would refuse commands until a restart. The applier tells them apart as applied."""
    marker = tmp_path / "die-after-next-commit"
    monkeypatch.setenv("FAULTY_WORKER_MARKER", str(marker))
    journal = _worker_journal(ledger_db)
    worker = journal._apply_worker
    worker._args[1:3] = [str(Path(__file__).with_name("faulty_apply_worker.py"))]  # python FILE URL DUR LOCK
    try:
        for seq in range(1, 11):
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
        journal.settle_reads()
        first = worker.pid
        marker.touch()
        for seq in range(11, 21):
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
        journal.settle_reads()  # returns once the batches are in, whoever inserted them
        assert not marker.exists()  # the worker did die after a commit
        for seq in range(21, 31):  # and the hub goes on: accepting, acknowledging, inserting
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
        journal.settle_reads()
        assert journal.available and journal.error is None
        assert worker.pid not in (None, first)
    finally:
        journal.close()
    assert_complete_ledger(ledger_db, 30)


def test_a_worker_is_handed_no_request_before_it_holds_its_lock(tmp_path: Path) -> None:
    """A hub killed right after handing its worker a request must leave a worker that holds the
    lock, or the next hub replays the ack log while that worker inserts the same batches."""
    lock_path = str(tmp_path / "ledger.db.acklog.worker.lock")
    worker = ApplyWorker(f"sqlite:///{tmp_path / 'ledger.db'}", "process", lock_path)
    held = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # another worker, still finishing
    requests: list[list[bytes]] = []
    real_encode = apply_worker.encode_request

    def recording_encode(blobs: list[bytes]) -> bytes:
        requests.append(blobs)  # what apply() writes to the worker, and when
        return real_encode(blobs)

    apply_worker.encode_request = recording_encode
    errors: list[BaseException] = []

    def apply_one() -> None:
        try:
            worker.apply([])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    applying = threading.Thread(target=apply_one)
    applying.start()
    try:
        time.sleep(1.0)  # ample for the worker to start and connect
        assert worker.pid is not None and not requests  # started, but handed nothing while it cannot hold the lock
    finally:
        os.close(held)
        applying.join(30)
        apply_worker.encode_request = real_encode
    assert requests == [[]] and not errors
    worker.close()


def test_closing_a_worker_that_never_gets_ready_does_not_hang(tmp_path: Path) -> None:
    """A new worker waiting for the lock behind a predecessor that will not exit: close() must
    stop it (the journal's close, and the hub's shutdown, wait for this)."""
    lock_path = str(tmp_path / "ledger.db.acklog.worker.lock")
    worker = ApplyWorker(f"sqlite:///{tmp_path / 'ledger.db'}", "process", lock_path)
    held = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    failed: list[BaseException] = []
    applying = threading.Thread(target=lambda: _catch(failed, worker.apply, []))
    applying.start()
    try:
        wait_for(lambda: worker.pid is not None, what="the worker to be started")
        closing = threading.Thread(target=worker.close)
        closing.start()
        closing.join(30)
        assert not closing.is_alive()
        applying.join(30)
        assert not applying.is_alive() and isinstance(failed[0], ApplyWorkerError)
    finally:
        os.close(held)


def _catch(into: list[BaseException], fn, *args) -> None:  # noqa: ANN001
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        into.append(exc)


def test_a_closed_worker_is_never_started_again(tmp_path: Path) -> None:
    """An applier still retrying after the journal closed must not leave a worker (and its lock)
    behind: a request to a closed worker fails."""
    worker = ApplyWorker(f"sqlite:///{tmp_path / 'ledger.db'}", "process", str(tmp_path / "w.lock"))
    worker.close()
    with pytest.raises(ApplyWorkerError, match="closed"):
        worker.apply([])
    assert worker.pid is None


def test_a_request_that_does_not_decode_is_answered_and_the_worker_serves_on(ledger_db: LedgerDB) -> None:
    """A worker must not die on a request it cannot read: the hub would restart it and retry the
    same request in a loop. It answers ``err`` and serves the next request."""
    journal = _worker_journal(ledger_db)
    try:
        journal.wait_committed(journal.append(_entry(1)), timeout=5.0)
        journal.settle_reads()
        worker = journal._apply_worker
        pid = worker.pid
        with pytest.raises(ApplyWorkerError, match="unpack"):  # struct.error, answered as err
            worker.apply([b"not a batch"])
        assert worker.pid == pid
        journal.wait_committed(journal.append(_entry(2)), timeout=5.0)
        journal.settle_reads()
        assert worker.pid == pid and len(ledger_db.records()) == 2
    finally:
        journal.close()
