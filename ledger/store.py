"""The durable journal: group commit of Merkle leaves, signed checkpoints, proofs and reads.

The sequencer appends journal entries in sequence order (cheap: a queue push). Whatever has
queued up is turned into canonical records, hashed into the tree and the hash chain and committed
in one transaction (group commit) by whoever gets there first: a caller of ``wait_committed``
whose entry is not committed yet and finds no write in progress leads the write itself
(leader/follower group commit: no hand-off to another thread on the ack path, which costs a
wake-up and a GIL transfer per order), and a writer thread commits backlogs and whatever nobody
waits for within ``lazy_commit_s``. ``wait_committed`` releases acks only after that commit.
If the database fails (unreachable, disk full), the batch stays queued and the writer thread
retries it until storage returns; meanwhile ``available`` is False and the hub refuses new
commands, so nothing is acknowledged that was not recorded and nothing recorded is lost.

With an ack log (``ledger.acklog``: SQLite in the data directory, as ``open_ledger`` opens it) the
commit that releases acks is the batch's append to that file; an applier thread inserts the logged
batches into the database shortly after, several in one transaction (itself, or through a worker
process, ``ledger.apply_worker``, so the inserts run outside this process's GIL), and a database
that fails there makes the hub refuse new commands the same way until the applier catches up.
Readers that must see everything acknowledged call ``settle_reads`` first.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from hub.journal import JournalEntry, JournalUnavailableError
from ledger.acklog import AckLog, AckLogError, decode_batch, encode_batch
from ledger.apply_worker import ApplyWorker, wait_for_previous_worker, worker_lock_path
from ledger.entries import entry_records
from ledger.hashing import append_leaves, leaves_and_links
from ledger.inserts import BatchInserter
from ledger.merkle import CompactRange, consistency_proof, inclusion_proof, root_of
from ledger.records import RecordType, record_end_seq
from ledger.schema import LedgerCheckpoint, LedgerNode, LedgerRecord, create_schema, node_floor, stored_schema_version
from ledger.signing import Checkpoint, Signer

log = logging.getLogger("ledger.store")

CHAIN_TAG = b"hub-ledger/chain/v1"
GENESIS_CHAIN = bytes(32)


def leaf_hash(payload: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + payload).digest()


def chain_link(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(CHAIN_TAG + previous + leaf).digest()


# Queued entries at which the writer thread is woken instead of waiting for a leader or its sweep.
# The gateway's event loop leads a commit every loop turn, and one turn may sequence a hundred
# requests or more: woken at 64, the writer fought the loop for the GIL and the write lock.
_WRITER_BACKLOG = 256
# Ack log: logged batches the applier lets gather (or waits for this long) before one transaction.
# Acks never wait for it (the ack log holds them; readers call settle_reads); every transaction it
# saves is CPU the next order does not share (at 1,000 orders/s a 2 ms period meant one transaction
# an order). Streaming at 1,000/s, 0.2 s against 0.02 s: p99 3.96 vs 5.08 ms, p90 1.14 vs 1.36 ms.
_APPLY_BACKLOG = 128
_LAZY_APPLY_S = 0.2
# Ack log size past which it is emptied once the database holds every batch in it.
_ACK_LOG_RESET_BYTES = 8 << 20
# Ack log: a batch of at least this many records goes straight into the database when nothing logged
# is waiting for it. A batch this large was formed under load, where the commit is spread over many
# acks; logging it first would only add the log's encoding and write to the database's work.
_DIRECT_COMMIT_ROWS = 512
# Ack log: logged batches past which the applier inserts even while an urgent step holds it back.
_URGENT_APPLY_LIMIT = 4096


def _fetchall(engine: Engine, sql: str, params: tuple) -> list[tuple]:
    """All rows of one query as plain DBAPI tuples; driver errors raised as SQLAlchemy's DBAPIError."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, dbapi_error, dialect=engine.dialect) from exc
    finally:
        raw.close()


@dataclass(slots=True)
class _Tail:
    """Where the ledger ends: everything the next record's hashes depend on."""

    size: int
    chain: bytes
    tree: CompactRange
    last_seq: int
    checkpoint_size: int

    def copy(self) -> _Tail:
        return _Tail(self.size, self.chain, self.tree.copy(), self.last_seq, self.checkpoint_size)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    state_digest: bytes
    hub_time_ns: int
    last_seq: int
    note: str


class LedgerStore:
    """Reads and proofs over a ledger database (no writing: see LedgerJournal)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._node_floor: int | None = None

    @property
    def node_floor(self) -> int:
        """Lowest level of the tree nodes this ledger stores (schema 3: ``NODE_FLOOR``; before it: 1)."""
        if self._node_floor is None:
            with self.engine.connect() as conn:
                self._node_floor = node_floor(stored_schema_version(conn))
        return self._node_floor

    def size(self) -> int:
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(LedgerRecord.idx))).scalar()
        return 0 if last is None else last + 1

    def iter_records(self, start: int = 0, batch: int = 20_000) -> Iterator[tuple[int, int, bytes, bytes, bytes]]:
        """(idx, seq, payload, leaf_hash, chain_hash) in index order (plain DBAPI rows: recovery and
        the projections read every record, and a SQLAlchemy Row per record costs more than the read)."""
        sql = ("SELECT idx, seq, payload, leaf_hash, chain_hash FROM ledger_record WHERE idx >= ? "
               f"ORDER BY idx LIMIT {int(batch)}")
        if self.engine.dialect.paramstyle != "qmark":
            sql = sql.replace("?", "%s")
        next_idx = start
        while True:
            rows = _fetchall(self.engine, sql, (next_idx,))
            if not rows:
                return
            if all(type(v) is bytes for v in rows[0][2:]):
                yield from rows
            else:  # a driver that returns memoryview (psycopg2) or bytearray
                for idx, seq, payload, leaf, chain in rows:
                    yield idx, seq, bytes(payload), bytes(leaf), bytes(chain)
            next_idx = rows[-1][0] + 1

    def config_records(self) -> Iterator[tuple[int, bytes]]:
        """(idx, payload) of every CONFIG record, in ledger order (there is one per start at most)."""
        start = 0
        while (found := self._next_of_type(RecordType.CONFIG, start)) is not None:
            yield found
            start = found[0] + 1

    def _next_of_type(self, record_type: int, start: int) -> tuple[int, bytes] | None:
        sql = "SELECT idx, payload FROM ledger_record WHERE record_type = ? AND idx >= ? ORDER BY idx LIMIT 1"
        if self.engine.dialect.paramstyle != "qmark":
            sql = sql.replace("?", "%s")
        rows = _fetchall(self.engine, sql, (int(record_type), start))
        return (rows[0][0], bytes(rows[0][1])) if rows else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        t = LedgerCheckpoint.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.tree_size)).all()
        return [StoredCheckpoint(r.tree_size, bytes(r.root_hash), bytes(r.state_digest), r.hub_time_ns,
                                 r.last_seq, r.note) for r in rows]

    def last_checkpoint(self) -> StoredCheckpoint | None:
        t = LedgerCheckpoint.__table__
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(t).order_by(t.c.tree_size.desc()).limit(1)).first()
        if r is None:
            return None
        return StoredCheckpoint(r.tree_size, bytes(r.root_hash), bytes(r.state_digest), r.hub_time_ns,
                                r.last_seq, r.note)

    def _perfect(self, conn: sa.Connection, level: int, index: int) -> bytes:
        if level == 0:
            found = conn.execute(sa.select(LedgerRecord.leaf_hash).where(LedgerRecord.idx == index)).scalar()
        elif level < self.node_floor:  # not stored: fold the few leaves it covers
            first, count = index << level, 1 << level
            leaves = conn.execute(sa.select(LedgerRecord.leaf_hash).where(
                LedgerRecord.idx >= first, LedgerRecord.idx < first + count).order_by(LedgerRecord.idx)).scalars().all()
            found = root_of([bytes(h) for h in leaves]) if len(leaves) == count else None
        else:
            found = conn.execute(sa.select(LedgerNode.hash).where(
                LedgerNode.level == level, LedgerNode.node_index == index)).scalar()
        if found is None:
            raise LookupError(f"no stored tree node at level {level}, index {index}")
        return bytes(found)

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        if not 0 <= index < tree_size <= self.size():
            raise LookupError(f"no record {index} in a tree of size {tree_size}")
        with self.engine.connect() as conn:
            return inclusion_proof(index, tree_size, lambda lv, i: self._perfect(conn, lv, i))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        if not 0 < size1 <= size2 <= self.size():
            raise LookupError(f"no consistency proof from {size1} to {size2}")
        with self.engine.connect() as conn:
            return consistency_proof(size1, size2, lambda lv, i: self._perfect(conn, lv, i))

    def leaf(self, index: int) -> tuple[int, bytes, bytes] | None:
        """(seq, payload, leaf hash) of one record."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(LedgerRecord.seq, LedgerRecord.payload, LedgerRecord.leaf_hash)
                             .where(LedgerRecord.idx == index)).first()
        return None if r is None else (r.seq, bytes(r.payload), bytes(r.leaf_hash))

    def settle_reads(self, timeout: float = 5.0) -> None:
        """Make every acknowledged record readable here (a journal with an ack log inserts its batches
        into the database a moment after the ack). Nothing to wait for in a plain store."""

    def load_tail(self) -> _Tail:
        size = self.size()
        last_cp = self.last_checkpoint()
        if size == 0:
            return _Tail(0, GENESIS_CHAIN, CompactRange(), 0, 0)
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(LedgerRecord.chain_hash, LedgerRecord.payload)
                                .where(LedgerRecord.idx == size - 1)).one()
            tree = CompactRange.from_perfect(size, lambda lv, i: self._perfect(conn, lv, i))
        # an entry block's row carries its first sequence number: the tail is its last
        return _Tail(size, bytes(last.chain_hash), tree, record_end_seq(bytes(last.payload)),
                     last_cp.tree_size if last_cp else 0)


class LedgerJournal(LedgerStore):
    """The hub's durable journal (implements hub.journal.Journal)."""

    def __init__(self, engine: Engine, signer: Signer, origin: str, *, checkpoint_every: int = 4096,
                 checkpoint_interval_s: float = 0.25, commit_timeout_s: float = 5.0,
                 lazy_commit_s: float = 0.002, ack_log: AckLog | None = None,
                 apply_worker: ApplyWorker | None = None) -> None:
        super().__init__(engine)
        self._node_floor = node_floor(create_schema(engine))
        self._signer = signer
        self._origin = origin
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval = checkpoint_interval_s
        self._commit_timeout = commit_timeout_s
        self._inserter = BatchInserter(engine)  # the batch writers' inserts (connection kept between commits)
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        self._ack_log = ack_log
        # With a worker, the applier thread hands the logged batches to that process (their inserts
        # then run outside this process's GIL) and waits for its answer; without, it inserts them.
        self._apply_worker = apply_worker if ack_log is not None else None
        if ack_log is not None:  # a killed hub's worker may still be inserting its last batches
            wait_for_previous_worker(worker_lock_path(ack_log.path))
        self.recovered_from_ack_log = self._apply_ack_log() if ack_log is not None else 0
        self._tail = self.load_tail()
        self._queue: deque = deque()  # ("entry", ticket, JournalEntry) | ("checkpoint", digest, ts)
        state_lock = threading.RLock()
        self._cv = threading.Condition(state_lock)  # guards the queue and the committed state
        self._work = threading.Condition(state_lock)  # wakes the writer thread (backlog, stop)
        self._write_lock = threading.Lock()  # one batch in flight: the writer thread's or a leader's
        self._lazy_commit = lazy_commit_s
        self._queued_since = 0.0  # monotonic time the oldest queued item was queued (under _cv)
        # SQLite: commits never checkpoint the WAL (see schema.connect); the writer thread does it
        # off the ack path once this many commits have accumulated, or when it stops.
        self._wal_checkpoint_every = 64 if engine.dialect.name == "sqlite" else 0
        self._commits_at_wal_checkpoint = 0
        self._next_ticket = 0
        self._committed = 0
        self._since_checkpoint = 0
        self._last_checkpoint_at = time.monotonic()
        self._error: str | None = None
        self._stopping = False
        self.commits = 0
        # Ack log: batches logged (acknowledged) and not yet in the database, under _cv:
        # (rows, nodes, checkpoints, monotonic time logged).
        self._unapplied: deque = deque()
        self._apply_work = threading.Condition(state_lock)
        self._apply_error: str | None = None
        self._apply_waiters = 0
        self._apply_stopping = False
        self._urgent = 0  # urgent() holders: the applier waits (see there)
        self._apply_abandoned = False  # set by close() when the applier could not drain in time
        self._batches_logged = 0
        self._batches_applied = 0
        self.applies = 0
        self._writer = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._writer.start()
        self._applier = None
        if ack_log is not None:
            self._applier = threading.Thread(target=self._apply_run, name="ledger-applier", daemon=True)
            self._applier.start()

    def verifier(self):
        """The verifier of this journal's own checkpoint signatures (its public key)."""
        return self._signer.verifier()

    @property
    def tree_size(self) -> int:
        return self._tail.size

    @property
    def last_seq(self) -> int:
        return self._tail.last_seq

    # -- Journal interface ---------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self._error is None and self._apply_error is None and not self._stopping

    @property
    def error(self) -> str | None:
        return self._error or self._apply_error

    def append(self, entry: JournalEntry) -> int:
        with self._cv:
            if self._stopping:
                raise JournalUnavailableError("ledger is closed")
            self._next_ticket += 1
            if not self._queue:
                self._queued_since = time.monotonic()
            self._queue.append(("entry", self._next_ticket, entry))
            self._since_checkpoint += 1
            if len(self._queue) >= _WRITER_BACKLOG:  # nobody is leading fast enough: the writer helps
                self._work.notify()
            return self._next_ticket

    def checkpoint_due(self) -> bool:
        return self._since_checkpoint >= self._checkpoint_every or (
            self._since_checkpoint > 0 and time.monotonic() - self._last_checkpoint_at >= self._checkpoint_interval)

    def checkpoint(self, state_digest: bytes, ts: int) -> None:
        with self._cv:
            if not self._queue:
                self._queued_since = time.monotonic()
            self._queue.append(("checkpoint", state_digest, ts))
            self._since_checkpoint = 0
            self._last_checkpoint_at = time.monotonic()

    def wait_committed(self, ticket: int, timeout: float | None = None) -> None:
        if self._committed >= ticket:
            return
        # Lead the write if none is in flight and storage is healthy (after a failure the writer
        # thread retries with back-off); otherwise the write in flight or the next one covers us.
        if self._error is None and not self._stopping and self._write_lock.acquire(blocking=False):
            try:
                if self._committed < ticket:
                    self._write_queued()
            finally:
                self._write_lock.release()
        with self._cv:
            done = self._cv.wait_for(lambda: self._committed >= ticket,
                                     self._commit_timeout if timeout is None else timeout)
            if not done:
                raise JournalUnavailableError(
                    f"ledger did not commit in time: {self._error or 'storage is slow'}")

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        """Hold the ack log's applier back while the caller's step runs (a kill's cancels, a few
        ms). Its inserts are off every ack's path, but they run in another thread: started in the
        middle of the step, the two threads trade the GIL at every SQLite call, and the step's own
        ack (its log append) waited up to 7 ms for it. Readers (``settle_reads``) still go ahead."""
        with self._cv:
            self._urgent += 1
        try:
            yield
        finally:
            with self._cv:
                self._urgent -= 1
                if not self._urgent:
                    self._apply_work.notify()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything appended so far is committed (and, with an ack log, in the database)."""
        with self._cv:
            target = self._next_ticket
        self.wait_committed(target, timeout)
        with self._cv:
            self._cv.wait_for(lambda: not self._queue, timeout)
        self.settle_reads(timeout)

    def settle_reads(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout``) until every batch logged so far is in the database; raises
        JournalUnavailableError if they are not by then (a reader would otherwise answer "not found"
        for records that were acknowledged)."""
        if self._ack_log is None:
            return
        with self._cv:
            target = self._batches_logged
            if self._batches_applied >= target:
                return
            self._apply_waiters += 1
            self._apply_work.notify()
            try:
                if not self._cv.wait_for(lambda: self._batches_applied >= target, timeout):
                    raise JournalUnavailableError(
                        f"acknowledged records are not in the database yet: {self.error or 'storage is slow'}")
            finally:
                self._apply_waiters -= 1

    def close(self) -> None:
        with self._cv:
            already = self._stopping
            self._stopping = True
            self._work.notify()
            self._cv.notify_all()
        if not already:
            self._writer.join(30)
            if self._applier is not None:
                with self._cv:  # the writer has logged its last batch: the applier drains and ends
                    self._apply_stopping = True
                    self._apply_work.notify()
                self._applier.join(30)
                self._apply_abandoned = True  # a database still failing: the log keeps the batches
                if self._apply_worker is not None:
                    self._apply_worker.close()
                with self._write_lock, self._cv:
                    if not self._unapplied:
                        self._ack_log.reset()
                    self._ack_log.close()
            with self._write_lock:
                self._inserter.close()
            self.engine.dispose()

    # -- writer --------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.05
        while True:
            with self._cv:
                if not self._queue and not self._stopping:
                    self._work.wait(self._lazy_commit)  # woken early for a backlog or a stop
                # Sweep up only what has waited ``lazy_commit`` unwritten: an entry a caller is about
                # to wait for is that caller's to write (no hand-off, no collision with its write).
                while self._queue and not self._stopping and len(self._queue) < _WRITER_BACKLOG:
                    young = self._queued_since + self._lazy_commit - time.monotonic()
                    if young <= 0:
                        break
                    self._work.wait(young)
                idle = not self._queue
            if self._wal_checkpoint_every and self.commits - self._commits_at_wal_checkpoint >= (
                    1 if idle and self._stopping else self._wal_checkpoint_every):
                self._checkpoint_wal()
            if idle:
                with self._cv:  # idle was read before the WAL checkpoint: the last block may have come since
                    if self._stopping and not self._queue:
                        return
                continue
            with self._write_lock:
                ok = self._write_queued()
            if ok:
                backoff = 0.05
                continue
            if self._stopping:
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _checkpoint_wal(self) -> None:
        """Copy committed WAL frames into the database without blocking writers or readers
        (PASSIVE); concurrent commits go on appending to the WAL meanwhile."""
        self._commits_at_wal_checkpoint = self.commits
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.fetchall()
            cursor.close()
        except self._dbapi_error as exc:  # a failed checkpoint loses nothing; the next one retries
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            raw.close()

    def _write_queued(self) -> bool:
        """Write and commit everything queued now, as one batch; the caller holds ``_write_lock``.
        False (and ``error`` set) if storage failed: the batch stays queued for the retry."""
        with self._cv:
            batch = list(self._queue)
        if not batch:
            return True
        try:
            tail = self._write(batch)
        except (SQLAlchemyError, OSError) as exc:
            with self._cv:
                self._error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                self._work.notify()  # the writer thread owns the retries
                self._cv.notify_all()
            log.error("ledger write failed, will retry: %s", self._error)
            return False
        with self._cv:
            self._tail = tail
            for _ in batch:
                self._queue.popleft()
            if self._queue:  # queued while this batch was written: at most that long ago
                self._queued_since = time.monotonic()
            tickets = [item[1] for item in batch if item[0] == "entry"]
            if tickets:
                self._committed = tickets[-1]
            self._error = None
            self.commits += 1
            self._cv.notify_all()
        return True

    def _write(self, batch: list) -> _Tail:
        tail = self._tail
        start = tail.size
        size, chain, last_seq, checkpoint_size = tail.size, tail.chain, tail.last_seq, tail.checkpoint_size
        frontier = tail.tree.frontier()  # the compact range's hashes, appended to in place
        rows: list[tuple] = []
        nodes: list[tuple] = []
        checkpoints = []
        records: list[tuple[int, int, int, bytes]] = []  # (seq, type, ts, payload) not yet hashed
        floor = self._node_floor
        for item in batch:
            if item[0] == "entry":
                entry: JournalEntry = item[2]
                ts = entry.ts
                records += [(seq, rtype, ts, payload) for seq, rtype, payload in entry_records(entry)]
                last_seq = entry.seq_last
                continue
            # A checkpoint: hash what came before it (its root covers exactly that).
            size, chain = self._hash_records(records, size, chain, frontier, floor, rows, nodes)
            records = []
            if size > checkpoint_size:
                _, digest, ts = item
                root = CompactRange(size, frontier).root()
                note = self._signer.sign(Checkpoint(self._origin, size, root, digest, ts)).note
                checkpoints.append((size, root, digest, ts, last_seq, note))
                checkpoint_size = size
        size, chain = self._hash_records(records, size, chain, frontier, floor, rows, nodes)
        if self._ack_log is None or self._commits_directly(len(rows)):
            self._commit(rows, nodes, checkpoints)
        else:
            self._log(start, rows, nodes, checkpoints)
        return _Tail(size, chain, CompactRange(size, frontier), last_seq, checkpoint_size)

    def _commits_directly(self, rows: int) -> bool:
        """Whether a batch of ``rows`` records skips the ack log: a large one, with no logged batch
        waiting for the applier. The database then stays in log order, and the applier is idle, so
        it does not share the connection (it commits only while a logged batch waits)."""
        if rows < _DIRECT_COMMIT_ROWS:
            return False
        with self._cv:
            return not self._unapplied

    def _log(self, start: int, rows: list[tuple], nodes: list[tuple], checkpoints: list[tuple]) -> None:
        """Append a hashed batch to the ack log (the commit acks wait for) and hand it to the applier."""
        blob = encode_batch(start, rows, nodes, checkpoints)
        self._ack_log.append(blob)
        with self._cv:
            self._unapplied.append((rows, nodes, checkpoints, time.monotonic(), blob))
            self._batches_logged += 1
            if len(self._unapplied) in (1, _APPLY_BACKLOG, _URGENT_APPLY_LIMIT):  # start, end the lazy period
                self._apply_work.notify()

    def _apply_run(self) -> None:
        """Insert logged batches into the database, several per transaction, off the ack path. A
        failing database sets ``error`` (the hub refuses new commands) and is retried with back-off;
        the batches stay logged meanwhile, so nothing acknowledged is lost."""
        backoff = 0.05
        while True:
            with self._cv:
                while not self._unapplied and not self._apply_stopping:
                    self._apply_work.wait()
                if not self._unapplied:
                    return
                # Let a few acks' batches gather, and stand aside for an urgent step, unless someone
                # waits to read them or we stop.
                while not self._apply_waiters and not self._apply_stopping:
                    if self._urgent and len(self._unapplied) < _URGENT_APPLY_LIMIT:
                        self._apply_work.wait()  # woken when the step ends (or a reader comes)
                        continue
                    young = self._unapplied[0][3] + _LAZY_APPLY_S - time.monotonic()
                    if len(self._unapplied) >= _APPLY_BACKLOG or young <= 0:
                        break
                    self._apply_work.wait(young)
                batches = list(self._unapplied)
            try:
                self._apply(batches)
            except (SQLAlchemyError, OSError) as exc:
                if self._committed_anyway(batches):
                    log.warning("ledger apply worker failed after committing its batches (%s); they are in", exc)
                else:
                    self._apply_failed(exc, backoff)
                    if self._apply_abandoned:  # closed with the database still failing: the next start inserts them
                        return
                    backoff = min(backoff * 2, 1.0)
                    continue
            backoff = 0.05
            with self._cv:
                for _ in batches:
                    self._unapplied.popleft()
                self._batches_applied += len(batches)
                self._apply_error = None
                self.applies += 1
                self._cv.notify_all()
            if self._ack_log.size > _ACK_LOG_RESET_BYTES:
                with self._write_lock, self._cv:  # no batch is being logged meanwhile
                    if not self._unapplied:
                        self._ack_log.reset()

    def _apply_failed(self, exc: BaseException, backoff: float) -> None:
        with self._cv:
            self._apply_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            self._cv.notify_all()
        if not self._apply_abandoned:
            log.error("ledger database write failed, will retry (acknowledged batches stay in the ack log): %s",
                      self._apply_error)
            time.sleep(backoff)

    def _committed_anyway(self, batches: list[tuple]) -> bool:
        """After a failed apply through the worker: did its transaction commit all the same? (It
        died between its commit and its answer.) Retrying would then fail on every record forever,
        the hub refusing commands until a restart. One transaction: all of the batches or none."""
        if self._apply_worker is None:
            return False  # an in-process commit that raised did not commit
        end = max((b_rows[-1][0] + 1 for b_rows, *_ in batches if b_rows), default=0)
        top = max((cp[0] for _, _, b_checkpoints, *_ in batches for cp in b_checkpoints), default=0)
        try:
            if end and self.size() < end:
                return False
            last = self.last_checkpoint()
            return top <= (last.tree_size if last is not None else 0)
        except SQLAlchemyError:
            return False  # cannot tell: retry (a duplicate is refused, and then told apart again)

    def _apply(self, batches: list[tuple]) -> None:
        """Insert logged batches (rows, nodes, checkpoints, logged at, ack log bytes) in one transaction."""
        if self._apply_worker is not None:
            self._apply_worker.apply([batch[4] for batch in batches])
            return
        rows, nodes, checkpoints = [], [], []
        for b_rows, b_nodes, b_checkpoints, *_ in batches:
            rows += b_rows
            nodes += b_nodes
            checkpoints += b_checkpoints
        self._commit(rows, nodes, checkpoints)

    def _apply_ack_log(self) -> int:
        """At open: insert every batch of the ack log the database lacks (the process stopped between
        an ack and its insert), in one transaction, then empty the log. Returns the records inserted."""
        size = self.size()
        last = self.last_checkpoint()
        checkpoint_size = last.tree_size if last is not None else 0
        rows, nodes, checkpoints = [], [], []
        for blob in self._ack_log.read():
            start, b_rows, b_nodes, b_checkpoints = decode_batch(blob)
            end = start + len(b_rows)
            if end <= size and all(cp[0] <= checkpoint_size for cp in b_checkpoints):
                continue  # already in the database
            if start != size + len(rows):
                raise AckLogError(f"ack log batch at tree size {start} does not follow the database's "
                                  f"{size + len(rows)} records")
            rows += b_rows
            nodes += b_nodes
            checkpoints += b_checkpoints
        if rows or checkpoints:
            self._commit(rows, nodes, checkpoints)
            log.info("inserted %d acknowledged records from the ack log", len(rows))
        self._ack_log.reset()
        return len(rows)

    @staticmethod
    def _hash_records(records: list[tuple[int, int, int, bytes]], size: int, chain: bytes, frontier: list[bytes],
                      floor: int, rows: list[tuple], nodes: list[tuple]) -> tuple[int, bytes]:
        """Leaf hashes, chain links and tree nodes (of level >= ``floor``) of ``records`` appended at
        ``size``, in one batched call each (``ledger.hashing``); their rows go to ``rows``, the nodes
        to ``nodes``. Returns the new size and chain."""
        if not records:
            return size, chain
        leaves, links = leaves_and_links([r[3] for r in records], chain, CHAIN_TAG)
        nodes += append_leaves(frontier, size, leaves, floor)
        rows += [(size + i, seq, rtype, ts, payload, leaf, link)
                 for i, ((seq, rtype, ts, payload), leaf, link) in enumerate(zip(records, leaves, links, strict=True))]
        return size + len(records), links[-1]

    def _commit(self, rows: list[tuple], nodes: list[tuple], checkpoints: list[tuple]) -> None:
        """Insert one batch in one transaction, on this process's connection (``BatchInserter``)."""
        self._inserter.commit(rows, nodes, checkpoints)


def open_ledger(data_dir: str, url: str = "", durability: str = "process", *, key_name: str = "hub.local",
                origin: str = "hub.local/ledger/v1", checkpoint_every: int = 4096,
                checkpoint_interval_s: float = 0.25, post_quantum: bool = False,
                applier: str = "thread") -> LedgerJournal:
    """The ledger of a data directory: SQLite there unless ``url`` names another database; the
    signing keys always live in the data directory (the public keys are exported beside them).
    ``post_quantum``: every checkpoint is signed with ML-DSA-65 too. ``applier``: where the ack
    log's batches are inserted into SQLite, a ``"thread"`` of this process or a ``"process"`` of
    their own (``ledger.apply_worker``)."""
    from pathlib import Path

    from ledger.schema import Durability, connect, sqlite_url
    from ledger.signing import load_or_create_signer

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    engine = connect(url or sqlite_url(data_dir), Durability(durability))
    signer = load_or_create_signer(data_dir, key_name, post_quantum=post_quantum)
    log_path = ack_log_path(engine)
    ack_log = AckLog(log_path, sync=Durability(durability) == Durability.POWER) if log_path else None
    worker = None
    if ack_log is not None and applier == "process":
        worker = ApplyWorker(engine.url.render_as_string(hide_password=False), durability, worker_lock_path(log_path))
    try:
        return LedgerJournal(engine, signer, origin, checkpoint_every=checkpoint_every,
                             checkpoint_interval_s=checkpoint_interval_s, ack_log=ack_log, apply_worker=worker)
    except BaseException:
        if ack_log is not None:
            ack_log.close()
        engine.dispose()
        raise


def ack_log_path(engine: Engine) -> str | None:
    """The ack log of a SQLite ledger file: beside it, in the same failure domain. None for
    PostgreSQL (a database elsewhere: its own commit is the ack) and in-memory SQLite."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}.acklog"
