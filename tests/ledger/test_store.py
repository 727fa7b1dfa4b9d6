"""The ledger as written by a real hub: append-only in the database itself, gap-free records,
stored tree nodes and signed checkpoints that agree with an independent recomputation,
inclusion / consistency proofs that verify with ledger.merkle alone; and a store that fails
(SQLite disk full, PostgreSQL writes revoked) makes the hub refuse commands, acknowledge nothing
it did not record, and catch up when the store returns. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter

import grpc
import pytest
import sqlalchemy as sa

from hub.client import HubClient
from hub.config import HubConfig
from hub.core import HubUnavailableError
from hub.journal import EntryKind, JournalEntry
from hub.server import run_server
from hub.v1 import common_pb2 as cpb
from ledger.entries import decode_all
from ledger.merkle import leaf_hash, node_hash, root_of, verify_consistency, verify_inclusion
from ledger.records import RecordType
from ledger.schema import NODE_FLOOR, connect
from ledger.store import CHAIN_TAG, LedgerJournal
from matching.types import NewOrder, encode_commands
from tests.ledger.conftest import (
    LedgerDB,
    assert_seq_gap_free,
    drive_mixed,
    identities,
    new_orders_in,
    order,
    start_hub,
    stop_hub,
    wait_for,
)

# -- 1. append-only, enforced by the database -----------------------------------------------------

UPDATES = {
    "ledger_record": "UPDATE ledger_record SET payload = :junk WHERE idx = 0",
    "ledger_node": "UPDATE ledger_node SET hash = :junk",
    "ledger_checkpoint": "UPDATE ledger_checkpoint SET root_hash = :junk",
    "ledger_meta": "UPDATE ledger_meta SET value = 'x'",
}
JUNK = bytes(32)


def _table_rows(db: LedgerDB, table: str) -> list:
    return [tuple(r) for r in db.query(f"SELECT * FROM {table} ORDER BY 1, 2" if table == "ledger_node"
                                       else f"SELECT * FROM {table} ORDER BY 1")]


@pytest.fixture
def small_ledger(ledger_db: LedgerDB) -> LedgerDB:
    journal = ledger_db.journal(checkpoint_every=5)
    hub = start_hub(journal)
    drive_mixed(hub, 3)
    stop_hub(hub)
    return ledger_db


@pytest.mark.parametrize("table", list(UPDATES))
def test_database_refuses_update_delete_and_truncate_of_ledger_rows(small_ledger: LedgerDB, table: str) -> None:
    db = small_ledger
    before = _table_rows(db, table)
    assert before, f"{table} should hold rows for this test to mean anything"
    statements = [UPDATES[table], f"DELETE FROM {table}"]
    if db.is_pg:
        statements.append(f"TRUNCATE {table}")
    for sql in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only") as caught:
            db.execute(sql, {"junk": JUNK})
        assert table in str(caught.value), f"{sql!r}: the refusal should name the table"
        assert _table_rows(db, table) == before, f"{sql!r} was refused but changed rows"
    assert db.verify().ok


def test_appending_is_still_allowed_next_to_the_refusals(small_ledger: LedgerDB) -> None:
    """The triggers refuse changes, not inserts: a restarted journal keeps appending."""
    db = small_ledger
    size = len(db.records())
    hub = start_hub(db.journal())
    drive_mixed(hub, 1)
    stop_hub(hub)
    assert len(db.records()) > size
    assert db.verify().ok


# -- 2. what the journal writes --------------------------------------------------------------------


@pytest.fixture
def written(ledger_db: LedgerDB) -> tuple[LedgerDB, bytes]:
    """A closed ledger written by a hub (a few hundred records, several checkpoints); and the state
    digest the hub had when it stopped."""
    journal = ledger_db.journal(checkpoint_every=15)
    hub = start_hub(journal)
    drive_mixed(hub, 8)
    digest = hub.state_digest_bytes()
    stop_hub(hub)
    return ledger_db, digest


def _expected_nodes(leaves: list[bytes], floor: int = NODE_FLOOR) -> dict[tuple[int, int], bytes]:
    """Every complete perfect subtree of level >= ``floor``, computed level by level from the leaves."""
    nodes: dict[tuple[int, int], bytes] = {}
    level, current = 0, leaves
    while len(current) > 1:
        level += 1
        current = [node_hash(current[i], current[i + 1]) for i in range(0, len(current) - 1, 2)]
        if level >= floor:
            nodes.update({(level, i): h for i, h in enumerate(current)})
    return nodes


def test_records_are_gap_free_canonical_and_chained(written) -> None:
    db, _ = written
    rows = db.records()
    assert len(rows) > 250
    assert [r[0] for r in rows] == list(range(len(rows))), "leaf indices must be 0..n-1 without a gap"
    assert_seq_gap_free(rows)
    kinds = Counter(RecordType(r[2]) for r in rows)
    assert set(kinds) == set(RecordType), f"every record type should occur, got {kinds}"
    chain = bytes(32)
    for idx, seq, rtype, payload, leaf, link in rows:
        recs = decode_all(payload)
        assert (RecordType(payload[1]), recs[0].seq) == (rtype, seq), f"record {idx}: columns differ from the payload"
        assert leaf == leaf_hash(payload), f"record {idx}: leaf hash is not SHA-256(0x00 || payload)"
        chain = hashlib.sha256(CHAIN_TAG + chain + leaf).digest()
        assert link == chain, f"record {idx}: hash chain link is wrong"


def test_stored_nodes_are_exactly_the_complete_subtrees(written) -> None:
    db, _ = written
    leaves = [r[4] for r in db.records()]
    stored = {(r.level, r.node_index): bytes(r.hash) for r in db.query("SELECT level, node_index, hash FROM ledger_node")}
    assert len(leaves) >= 4 << NODE_FLOOR and stored == _expected_nodes(leaves)
    assert min(level for level, _ in stored) == NODE_FLOOR  # schema 3: the levels below are folded from leaves


def test_checkpoints_are_signed_and_commit_to_the_merkle_root_of_all_leaves_before_them(written) -> None:
    db, digest = written
    rows = db.records()
    leaves = [r[4] for r in rows]
    store = db.store()
    checkpoints = store.checkpoints()
    assert len(checkpoints) >= 4, "the workload should close several blocks"
    assert checkpoints[-1].tree_size == len(rows), "a clean stop closes the last block"
    assert checkpoints[-1].state_digest == digest, "the last checkpoint commits to the state at stop"
    verifier = db.verifier
    for cp in checkpoints:
        signed = verifier.verify(cp.note)
        assert signed.root == cp.root_hash == root_of(leaves[:cp.tree_size]), f"checkpoint {cp.tree_size}"
        assert (signed.tree_size, signed.state_digest, signed.hub_time_ns) == (cp.tree_size, cp.state_digest,
                                                                               cp.hub_time_ns)
        assert cp.last_seq == rows[cp.tree_size - 1][1], "last_seq is the sequence of the block's last record"


def _check_inclusion(db: LedgerDB, every_checkpoint: bool) -> None:
    store = db.store()
    leaves = [r[4] for r in db.records()]
    checkpoints = store.checkpoints()
    verifier = db.verifier
    proofs = 0
    for cp in checkpoints:
        root = verifier.verify(cp.note).root
        if every_checkpoint or cp is checkpoints[-1]:
            indices = set(range(cp.tree_size))
        else:  # the ends, and both sides of the largest power of two below the size
            split = 1 << max((cp.tree_size - 1).bit_length() - 1, 0)
            indices = {0, split - 1, split, cp.tree_size - 1}
        for index in sorted(i for i in indices if 0 <= i < cp.tree_size):
            proof = store.inclusion_proof(index, cp.tree_size)
            assert verify_inclusion(index, cp.tree_size, leaves[index], proof, root), (index, cp.tree_size)
            proofs += 1
    assert proofs > len(leaves)
    # and the check can fail: the same path for the neighbouring leaf, or against an older root
    last = checkpoints[-1]
    proof = store.inclusion_proof(3, last.tree_size)
    assert verify_inclusion(3, last.tree_size, leaves[3], proof, last.root_hash)
    assert not verify_inclusion(3, last.tree_size, leaves[2], proof, last.root_hash)
    assert not verify_inclusion(3, last.tree_size, leaves[3], proof, checkpoints[-2].root_hash)


def test_inclusion_proof_of_every_record_verifies_against_the_latest_signed_root(written) -> None:
    """Every record against the latest signed root; against each older one, its ends and both
    sides of the split where the tree's left subtree ends."""
    _check_inclusion(written[0], every_checkpoint=False)


@pytest.mark.slow
def test_inclusion_proof_of_every_record_verifies_against_every_signed_root(written) -> None:
    _check_inclusion(written[0], every_checkpoint=True)


def test_consistency_proofs_between_every_pair_of_checkpoints_verify(written) -> None:
    db, _ = written
    store = db.store()
    roots = {cp.tree_size: db.verifier.verify(cp.note).root for cp in store.checkpoints()}
    sizes = sorted(roots)
    pairs = 0
    for i, small in enumerate(sizes):
        for big in sizes[i:]:
            proof = store.consistency_proof(small, big)
            assert verify_consistency(small, big, roots[small], roots[big], proof), (small, big)
            pairs += 1
    assert pairs == len(sizes) * (len(sizes) + 1) // 2
    proof = store.consistency_proof(sizes[0], sizes[-1])
    assert not verify_consistency(sizes[0], sizes[-1], roots[sizes[1]], roots[sizes[-1]], proof)


def test_a_restarted_journal_continues_the_same_tree(written) -> None:
    """The tail (chain, compact range, checkpoint size) is reloaded from the database: records
    appended after a restart extend the tree the old checkpoints signed."""
    db, _ = written
    old = db.store().checkpoints()[-1]
    hub = start_hub(db.journal(checkpoint_every=25))
    drive_mixed(hub, 4, seed=11)
    stop_hub(hub)
    store = db.store()
    new = store.checkpoints()[-1]
    assert new.tree_size > old.tree_size
    assert verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash,
                              store.consistency_proof(old.tree_size, new.tree_size))
    rows = db.records()
    assert_seq_gap_free(rows)
    assert new.root_hash == root_of([r[4] for r in rows])
    assert db.verify().ok


# -- 6. storage failure: refuse, never ack what is not recorded, catch up when storage returns -----


class _SqliteDiskFull:
    """'Disk full' for the journal's own connections: PRAGMA max_page_count pinned to the current
    size on every checkout, and on the connection the journal's writer keeps between commits, so
    the next page the writer needs is refused (SQLITE_FULL)."""

    error = "database or disk is full"

    def __init__(self, db: LedgerDB) -> None:
        self.engine = db.engine()
        self._pages: int | None = None
        sa.event.listen(self.engine, "checkout", self._apply)

    def _apply(self, dbapi_conn, _record, _proxy) -> None:  # noqa: ANN001 - pool event signature
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA max_page_count = {self._pages or 2_000_000_000}")
        cur.close()

    def start(self, journal) -> None:  # noqa: ANN001
        with self.engine.connect() as conn:
            self._pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        with journal._write_lock:  # the writer's kept connection was checked out before the disk filled
            if journal._inserter._conn is not None:
                self._apply(journal._inserter._conn.dbapi_connection, None, None)

    def end(self) -> None:
        self._pages = None

    def close(self) -> None:
        pass


class _PgWritesRevoked:
    """A failing PostgreSQL store: the journal writes as its own role, whose INSERT right on the
    records table is revoked (and granted back) by the database owner."""

    error = "permission denied for table ledger_record"

    def __init__(self, db: LedgerDB) -> None:
        self.db = db
        self.role = f"ledger_writer_{uuid.uuid4().hex[:10]}"
        db.execute(f"CREATE ROLE {self.role} LOGIN")
        db.execute(f"GRANT USAGE, CREATE ON SCHEMA {db.schema} TO {self.role}")
        url = sa.engine.make_url(db.url).set(username=self.role).render_as_string(hide_password=False)
        self.engine = connect(url, schema=db.schema)

    def start(self, journal) -> None:  # noqa: ANN001, ARG002
        self.db.execute(f"REVOKE INSERT ON ledger_record FROM {self.role}")

    def end(self) -> None:
        self.db.execute(f"GRANT INSERT ON ledger_record TO {self.role}")

    def close(self) -> None:
        self.engine.dispose()
        self.db.execute(f"DROP OWNED BY {self.role}")
        self.db.execute(f"DROP ROLE {self.role}")


@pytest.fixture
def outage(ledger_db: LedgerDB):
    failure = _PgWritesRevoked(ledger_db) if ledger_db.is_pg else _SqliteDiskFull(ledger_db)
    yield failure
    failure.close()


def test_a_failing_store_makes_the_hub_refuse_commands_and_catch_up_when_it_returns(
        ledger_db: LedgerDB, outage) -> None:
    config = HubConfig.default().with_network(host="127.0.0.1", port=0)
    who = identities(config)
    journal = ledger_db.journal(engine=outage.engine, commit_timeout_s=1.0)
    with run_server(config, journal, grace=0.5) as (hub, port), \
            HubClient(f"127.0.0.1:{port}", "dev-inst-2", timeout=10) as client:
        drive_mixed(hub, 2)
        acked: dict[str, int] = {}
        for i in range(3):
            acked[f"ok-{i}"] = client.submit("MSFT", "buy", 1, 419_0000, client_order_id=f"ok-{i}").order_id

        outage.start(journal)
        in_doubt = ""
        for i in range(500):  # SQLite: the first writes may still fit into pages already allocated
            cid = f"during-{i}"
            try:
                ack = client.submit("MSFT", "buy", 1, 419_0000, client_order_id=cid)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                assert "ledger" in exc.details()
                in_doubt = cid  # sequenced, then not committed in time: not acknowledged
                break
            acked[cid] = ack.order_id
        assert in_doubt, "the store never failed"
        assert not journal.available and outage.error in journal.error

        refused = []
        for i in range(3):
            with pytest.raises(grpc.RpcError) as caught:
                client.submit("MSFT", "buy", 1, 419_0000, client_order_id=f"refused-{i}")
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            refused.append(f"refused-{i}")
        with pytest.raises(HubUnavailableError, match="ledger unavailable"):
            hub.submit_order(who["inst-1"], order("AAPL", cpb.BUY, 189_0000, 1, cid="refused-inproc"))
        with pytest.raises(HubUnavailableError):
            hub.set_halted(who["operator"], "AAPL", 0, True)
        refused.append("refused-inproc")

        outage.end()
        wait_for(lambda: journal.available, timeout=15, what="the journal to write its backlog")
        ack = client.submit("MSFT", "buy", 1, 419_0000, client_order_id="after")
        assert ack.accepted
        acked["after"] = ack.order_id
        last_seq = hub.last_sequence

    found = new_orders_in(ledger_db)
    by_cid = Counter(cid for _, participant, cid in found if participant == "inst-2")
    for cid, order_id in acked.items():
        assert by_cid[cid] == 1, f"acknowledged order {cid} must be in the ledger exactly once"
        assert (order_id, "inst-2", cid) in found
    assert by_cid[in_doubt] == 1, "the order in flight when storage failed is written with the backlog"
    assert not any(by_cid[cid] for cid in refused), "refused commands were never sequenced"
    rows = ledger_db.records()
    assert_seq_gap_free(rows)
    assert rows[-1][1] == last_seq
    report = ledger_db.verify()
    assert report.ok, report.failure

    hub = start_hub(ledger_db.journal())
    assert hub.recovery.checkpoint_verified and hub.recovery.records == len(rows)
    stop_hub(hub)


# -- 5. group commit: the waiting caller leads, the writer thread sweeps --------------------------


def _entry(seq: int) -> JournalEntry:
    command = NewOrder(seq, 10**18 + seq, 1, seq, 1001, 1, 1, 1, 189_0000, 1, 0, 0, 0)
    return JournalEntry(seq, seq, command.ts, EntryKind.ENGINE, "scalper-1", 1, encode_commands([command]),
                        client_order_ids=("",), quote_flags=(False,), post_trade=(b"",))


def test_a_small_sqlite_commit_is_one_statement_and_a_larger_one_a_transaction(ledger_db: LedgerDB) -> None:
    """A batch of records alone (no tree node completed, no checkpoint) is one multi-row INSERT,
    atomic on its own; anything more is BEGIN ... COMMIT. The rows are the same either way."""
    if ledger_db.is_pg:
        pytest.skip("SQLite's statements")
    journal = LedgerJournal(ledger_db.engine(), ledger_db.signer, "test/ledger", lazy_commit_s=0.005)
    try:
        journal.wait_committed(journal.append(_entry(1)), timeout=5.0)  # the writer keeps its connection now
        seen: list[str] = []
        journal._inserter._conn.dbapi_connection.set_trace_callback(seen.append)
        for seq in range(2, 16):  # leaves 1..14: no level-4 node is complete yet
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
        assert len(seen) == 14 and all(sql.startswith("INSERT INTO ledger_record") for sql in seen), seen
        seen.clear()
        journal.wait_committed(journal.append(_entry(16)), timeout=5.0)  # leaf 15 completes node (4, 0)
        assert [sql.split(" (")[0] for sql in seen] == ["BEGIN", "INSERT INTO ledger_record",
                                                       "INSERT INTO ledger_node", "COMMIT"], seen
        # a batch that writes nothing (a checkpoint with no record since the last one) is harmless
        journal.checkpoint(bytes(32), 1)
        journal.flush(5.0)
        journal.checkpoint(bytes(32), 2)
        journal.flush(5.0)
        assert journal.error is None and len(journal.checkpoints()) == 1
    finally:
        journal.close()
    assert [r[1] for r in ledger_db.records()] == list(range(1, 17))
    assert ledger_db.verify().ok and ledger_db.verify().checkpoints == 1


def test_a_close_during_the_writer_threads_wal_checkpoint_still_writes_the_last_block(ledger_db: LedgerDB) -> None:
    """The writer thread decides it is idle, then checkpoints the WAL (milliseconds on a slow disk);
    a clean stop queues the last block's checkpoint and closes meanwhile. The writer must see the
    queued block before it returns (the crash drill's clean stop once left 677 records unsigned)."""
    journal = LedgerJournal(ledger_db.engine(), ledger_db.signer, "test/ledger", lazy_commit_s=0.001)
    journal._wal_checkpoint_every = 1  # a WAL checkpoint after every commit, when idle
    entered, release = threading.Event(), threading.Event()
    original = journal._checkpoint_wal

    def slow_wal_checkpoint() -> None:
        entered.set()
        release.wait(5)
        original()

    journal._checkpoint_wal = slow_wal_checkpoint
    journal.wait_committed(journal.append(_entry(1)), timeout=5.0)
    assert entered.wait(5), "the idle writer thread checkpoints the WAL"
    journal.checkpoint(bytes(32), 2)  # what a clean stop queues last
    closer = threading.Thread(target=journal.close)
    closer.start()
    wait_for(lambda: journal._stopping, timeout=5, what="close to begin")
    release.set()
    closer.join(10)
    assert [cp.tree_size for cp in ledger_db.store().checkpoints()] == [1], "the last block was left unsigned"


def _writer_threads(journal: LedgerJournal) -> list[str]:
    """The name of the thread that writes each batch of ``journal`` from now on, in order."""
    writers: list[str] = []
    original = journal._write

    def spy(batch):
        writers.append(threading.current_thread().name)
        return original(batch)

    journal._write = spy
    return writers


def test_a_waiting_caller_commits_its_own_entry_without_the_writer_thread(ledger_db: LedgerDB) -> None:
    # A writer thread that would only wake after an hour: every commit below is led by wait_committed.
    journal = LedgerJournal(ledger_db.engine(), ledger_db.signer, "test/ledger", lazy_commit_s=3600.0)
    try:
        writers = _writer_threads(journal)
        for seq in range(1, 6):
            ticket = journal.append(_entry(seq))
            started = time.monotonic()
            journal.wait_committed(ticket, timeout=5.0)
            assert time.monotonic() - started < 1.0
        assert set(writers) == {threading.current_thread().name}
        assert journal.tree_size == 5 and journal.commits == 5
        assert len(ledger_db.records()) == 5
    finally:
        journal.close()


def test_the_writer_thread_sweeps_only_entries_left_unwritten_for_the_lazy_period(ledger_db: LedgerDB) -> None:
    """An entry its caller waits for at once is that caller's to write: the sweep leaves entries younger
    than ``lazy_commit_s`` alone (a sweep on a fixed period wrote about one order in five here, and the
    caller then waited for the writer thread's commit instead of leading its own)."""
    lazy = 0.005
    journal = LedgerJournal(ledger_db.engine(), ledger_db.signer, "test/ledger", lazy_commit_s=lazy)
    try:
        writers = _writer_threads(journal)
        on_time: list[int] = []  # entries whose caller came to wait well inside the lazy period
        seq = 0
        while len(on_time) < 200 and seq < 1000:
            seq += 1
            appended = time.monotonic()
            ticket = journal.append(_entry(seq))
            time.sleep(0.001)  # the caller's own work between append and wait (routing, market data)
            if time.monotonic() - appended < lazy * 0.6:  # a stalled machine makes the rest fair game
                on_time.append(seq - 1)
            journal.wait_committed(ticket, timeout=5.0)
        assert journal.tree_size == seq and len(writers) == seq and len(on_time) == 200
        by_writer = sum(1 for i in on_time if writers[i] == "ledger-writer")
        assert by_writer <= 10, f"the writer thread wrote {by_writer} of 200 entries their callers were leading"
        # and an entry nobody waits for is still swept, once it is lazy_commit_s old
        appended = time.monotonic()
        journal.append(_entry(seq + 1))
        wait_for(lambda: journal.tree_size == seq + 1, timeout=5, what="the writer thread's sweep")
        assert time.monotonic() - appended >= 0.004
    finally:
        journal.close()


def test_entries_nobody_waits_for_are_committed_by_the_writer_thread_sweep(ledger_db: LedgerDB) -> None:
    journal = LedgerJournal(ledger_db.engine(), ledger_db.signer, "test/ledger", lazy_commit_s=0.01)
    try:
        for seq in range(1, 4):
            journal.append(_entry(seq))
        wait_for(lambda: journal.tree_size == 3, timeout=5, what="the writer thread's sweep")
        assert len(ledger_db.records()) == 3
    finally:
        journal.close()


def test_sqlite_commits_never_checkpoint_the_wal_the_writer_thread_does(ledger_db: LedgerDB) -> None:
    if ledger_db.is_pg:
        pytest.skip("the WAL is SQLite's")
    engine = ledger_db.engine()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    journal = LedgerJournal(engine, ledger_db.signer, "test/ledger", lazy_commit_s=3600.0)
    try:
        checkpointed = []
        original = journal._checkpoint_wal
        journal._checkpoint_wal = lambda: (checkpointed.append(journal.commits), original())[1]
        for seq in range(1, 64):
            journal.wait_committed(journal.append(_entry(seq)), timeout=5.0)
        assert checkpointed == []  # 63 commits: below the threshold, and no commit checkpointed itself
        journal.wait_committed(journal.append(_entry(64)), timeout=5.0)
        journal._work.acquire()
        journal._work.notify()  # wake the writer now instead of in an hour
        journal._work.release()
        wait_for(lambda: checkpointed == [64], timeout=5, what="the background WAL checkpoint")
        # After a complete checkpoint the next commit restarts the WAL from its beginning: it holds
        # that commit's few frames, not 65 commits' worth.
        journal.wait_committed(journal.append(_entry(65)), timeout=5.0)
        with engine.connect() as conn:
            _busy, frames, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert 0 < frames < 64
    finally:
        journal.close()
    assert [r[1] for r in ledger_db.records()] == list(range(1, 66))


# -- 6. schema versions ---------------------------------------------------------------------------

_V1_SQLITE_DDL = [
    "CREATE TABLE ledger_record (idx BIGINT NOT NULL, seq BIGINT NOT NULL, record_type SMALLINT NOT NULL, "
    "hub_time_ns BIGINT NOT NULL, payload BLOB NOT NULL, leaf_hash BLOB NOT NULL, chain_hash BLOB NOT NULL, "
    "PRIMARY KEY (idx))",
    "CREATE INDEX ix_ledger_record_seq ON ledger_record (seq)",
    "CREATE TABLE ledger_node (level SMALLINT NOT NULL, node_index BIGINT NOT NULL, hash BLOB NOT NULL, "
    "PRIMARY KEY (level, node_index))",
    "CREATE TABLE ledger_checkpoint (tree_size BIGINT NOT NULL, root_hash BLOB NOT NULL, state_digest BLOB NOT NULL, "
    "hub_time_ns BIGINT NOT NULL, last_seq BIGINT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (tree_size))",
    'CREATE TABLE ledger_meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"))',
    "INSERT INTO ledger_meta VALUES ('schema_version', '1')",
]


def _sqlite_layout(db: LedgerDB) -> dict[str, str]:
    return {name: sql for name, sql in db.query("SELECT name, sql FROM sqlite_master WHERE type = 'table'")}


def test_new_sqlite_ledgers_store_records_by_rowid_and_nodes_without_rowid(ledger_db: LedgerDB) -> None:
    if ledger_db.is_pg:
        pytest.skip("a SQLite layout")
    ledger_db.journal().close()
    layout = _sqlite_layout(ledger_db)
    assert "idx INTEGER NOT NULL" in layout["ledger_record"]  # the rowid alias
    assert "WITHOUT ROWID" in layout["ledger_node"]
    assert ledger_db.query("SELECT value FROM ledger_meta WHERE key = 'schema_version'") == [("3",)]
    # schema 3: a record is one b-tree insert (no index on seq)
    assert ledger_db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger_record'") == []


def test_a_version_1_sqlite_ledger_is_appended_to_as_it_is_and_verifies(ledger_db: LedgerDB) -> None:
    if ledger_db.is_pg:
        pytest.skip("a SQLite layout")
    for stmt in _V1_SQLITE_DDL:
        ledger_db.execute(stmt)
    journal = ledger_db.journal(checkpoint_every=5)
    hub = start_hub(journal)
    drive_mixed(hub, 2)
    stop_hub(hub)
    layout = _sqlite_layout(ledger_db)
    assert "idx BIGINT NOT NULL" in layout["ledger_record"] and "WITHOUT ROWID" not in layout["ledger_node"]
    assert ledger_db.query("SELECT value FROM ledger_meta WHERE key = 'schema_version'") == [("1",)]
    assert ("ix_ledger_record_seq",) in ledger_db.query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger_record'")
    report = ledger_db.verify()
    assert report.ok and report.records == len(ledger_db.records()) > 0 and report.checkpoints > 0
    # before schema 3 every level is stored, and appending to such a ledger goes on storing them all
    stored = {(r.level, r.node_index): bytes(r.hash) for r in ledger_db.query("SELECT level, node_index, hash FROM ledger_node")}
    assert stored == _expected_nodes([r[4] for r in ledger_db.records()], floor=1)


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_pre_3_ledger_keeps_every_level_and_a_bad_low_node_in_it_still_fails_verify(
        ledger_db: LedgerDB, version: str) -> None:
    """A ledger created before schema 3 says so in ledger_meta: the writer keeps storing every level
    there, proofs read them, and the verifier checks them, level 1 included."""
    ledger_db.journal().close()
    ledger_db.drop_triggers()
    ledger_db.execute("UPDATE ledger_meta SET value = :v WHERE key = 'schema_version'", {"v": version})
    journal = ledger_db.journal(checkpoint_every=7)
    hub = start_hub(journal)
    drive_mixed(hub, 2)
    stop_hub(hub)
    leaves = [r[4] for r in ledger_db.records()]
    stored = {(r.level, r.node_index): bytes(r.hash) for r in ledger_db.query("SELECT level, node_index, hash FROM ledger_node")}
    assert stored == _expected_nodes(leaves, floor=1)
    store = ledger_db.store()
    last = store.checkpoints()[-1]
    for index in (0, 5, last.tree_size - 1):
        assert verify_inclusion(index, last.tree_size, leaves[index], store.inclusion_proof(index, last.tree_size),
                                last.root_hash)
    assert ledger_db.verify().ok
    ledger_db.drop_triggers()
    ledger_db.execute("UPDATE ledger_node SET hash = :h WHERE level = 1 AND node_index = 2", {"h": bytes(32)})
    assert ledger_db.verify().failure == "tree node (level 1, index 2) is wrong: proofs would lie"


def test_a_schema_3_ledger_stores_no_node_below_the_floor_and_refuses_one_inserted(ledger_db: LedgerDB) -> None:
    journal = ledger_db.journal(checkpoint_every=7)
    hub = start_hub(journal)
    drive_mixed(hub, 2)
    stop_hub(hub)
    assert ledger_db.query(f"SELECT count(*) FROM ledger_node WHERE level < {NODE_FLOOR}") == [(0,)]
    leaves = [r[4] for r in ledger_db.records()]
    assert ledger_db.verify().ok
    ledger_db.execute("INSERT INTO ledger_node (level, node_index, hash) VALUES (1, 0, :h)",
                      {"h": node_hash(leaves[0], leaves[1])})  # even the right hash does not belong there
    assert ledger_db.verify().failure == "tree node (level 1, index 0) is not part of the ledger's tree"


def test_an_unknown_schema_version_is_refused(ledger_db: LedgerDB) -> None:
    ledger_db.journal().close()
    ledger_db.drop_triggers()
    ledger_db.execute("UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="schema version 99"):
        ledger_db.journal()
