"""The parallel verifier: record ranges checked in forked worker processes, merged in ledger order.

Whatever the split, the report must be the one a single pass gives: the same first failure (the
earliest in ledger order when several ranges fail, and at the edges of ranges, where a range starts
from the row before it), the same counts, the same node naming. The range boundaries are pinned
here (``range_starts`` patched) so that tampering lands exactly where it is meant to.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

from ledger import verify
from ledger.merkle import CompactRange
from ledger.schema import NODE_FLOOR
from ledger.verify import VerifyReport, verify_ledger
from tests.ledger.conftest import LedgerDB, build_ledger


@pytest.fixture
def ledger(ledger_db: LedgerDB) -> LedgerDB:
    """A closed ledger of a few hundred records with a checkpoint every few dozen; triggers in place."""
    build_ledger(ledger_db, rounds=8, checkpoint_every=12)
    assert len(ledger_db.records()) > 250
    return ledger_db


_FORK_IS_SAFE = verify.fork_is_safe


@pytest.fixture(autouse=True)
def _fork_in_this_test_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process has other threads (idle ones of earlier tests' hubs), so verify would not
    fork here; these tests are about the forked workers. Journals are closed after every test
    (tests/conftest.py), so no thread of an earlier test is inside SQLite at a fork."""
    monkeypatch.setattr(verify, "fork_is_safe", lambda: True)


def test_verify_does_not_fork_beside_other_threads_and_reports_the_same(ledger: LedgerDB,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "fork_is_safe", _FORK_IS_SAFE)  # the real check, for this test
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert not verify.fork_is_safe()
        forked = []
        monkeypatch.setattr(verify, "_range_worker", lambda *args: forked.append(args))
        ranges = _split_at(monkeypatch, len(ledger.records()) // 2)
        report = _run(ledger, ranges)
        assert report.ok and report.workers == 1 and not forked, "one range checked here, none forked"
        assert report.records == _run(ledger, 1).records
    finally:
        stop.set()
        other.join(5)


def _run(db: LedgerDB, workers: int, anchors: list[str] | None = None) -> VerifyReport:
    engine = db.engine()
    try:
        return verify_ledger(engine, db.verifier, anchors, workers=workers, min_parallel=0)
    finally:
        engine.dispose()


def _split_at(monkeypatch: pytest.MonkeyPatch, *boundaries: int) -> int:
    """Make the parallel runs split at exactly these record indices; returns the number of ranges."""
    starts = [0, *boundaries]
    assert starts == sorted(set(starts))
    monkeypatch.setattr(verify, "range_starts", lambda total, workers: starts)
    return len(starts)


def _both(db: LedgerDB, ranges: int, anchors: list[str] | None = None) -> tuple[VerifyReport, VerifyReport]:
    """(one range in this process, ``ranges`` ranges in workers): the same report, apart from the split."""
    single, parallel = _run(db, 1, anchors), _run(db, ranges, anchors)
    assert single.workers == 1
    assert parallel.workers == ranges, "the parallel path did not run"
    for name in ("ok", "failure", "records", "checkpoints", "anchors", "warnings"):
        assert getattr(parallel, name) == getattr(single, name), name
    return single, parallel


def _checkpoint_sizes(db: LedgerDB) -> list[int]:
    return [r.tree_size for r in db.query("SELECT tree_size FROM ledger_checkpoint ORDER BY tree_size")]


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:]


# Tampering with one record, and the failure a single pass names for it (record index -> message).


def _alter_payload(db: LedgerDB, idx: int) -> str:
    row = db.records()[idx]
    db.execute("UPDATE ledger_record SET payload = :p WHERE idx = :i", {"p": _flip(row[3], 20), "i": idx})
    return f"record {idx} (seq {row[1]}): payload does not match its leaf hash"


def _alter_link(db: LedgerDB, idx: int) -> str:
    row = db.records()[idx]
    db.execute("UPDATE ledger_record SET chain_hash = :c WHERE idx = :i", {"c": _flip(row[5], 3), "i": idx})
    return f"record {idx} (seq {row[1]}): hash chain broken"


def _alter_seq(db: LedgerDB, idx: int) -> str:
    row = db.records()[idx]
    db.execute("UPDATE ledger_record SET seq = :s WHERE idx = :i", {"s": row[1] + 7, "i": idx})
    return f"record {idx} (seq {row[1] + 7}): sequence column differs from the record's own ({row[1]})"


def _delete(db: LedgerDB, idx: int) -> str:
    db.execute("DELETE FROM ledger_record WHERE idx = :i", {"i": idx})
    return f"record {idx} is missing: the next stored record is {idx + 1}"


TAMPER: dict[str, Callable[[LedgerDB, int], str]] = {
    "payload": _alter_payload, "chain-link": _alter_link, "seq-column": _alter_seq, "deleted": _delete}


# -- untouched ledgers --------------------------------------------------------------------------------


@pytest.mark.parametrize("ranges", [2, 3, 5, 8])
def test_an_untouched_ledger_gives_the_same_report_however_it_is_split(ledger: LedgerDB, ranges: int) -> None:
    single, parallel = _both(ledger, ranges)
    assert parallel.ok, parallel.failure
    assert parallel.records == len(ledger.records())
    assert parallel.checkpoints == len(_checkpoint_sizes(ledger))


def test_ranges_split_exactly_at_checkpoints_and_next_to_them_verify(ledger: LedgerDB,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _checkpoint_sizes(ledger)
    notes = [r.note for r in ledger.query("SELECT note FROM ledger_checkpoint")]
    ranges = _split_at(monkeypatch, sizes[1] - 1, sizes[2], sizes[3] + 1, sizes[3] + 2)
    _, parallel = _both(ledger, ranges, notes)
    assert parallel.ok, parallel.failure
    assert parallel.checkpoints == parallel.anchors == len(sizes)


# -- several ranges fail: the earliest failure in ledger order is named -------------------------------


@pytest.mark.parametrize(("early", "late"), [("payload", "payload"), ("seq-column", "deleted"),
                                             ("deleted", "chain-link"), ("chain-link", "seq-column")])
def test_failures_in_an_early_and_a_late_range_name_the_early_one(ledger: LedgerDB, monkeypatch: pytest.MonkeyPatch,
                                                                  early: str, late: str) -> None:
    n = len(ledger.records())
    ranges = _split_at(monkeypatch, n // 3, 2 * n // 3)
    ledger.drop_triggers()
    late_message = TAMPER[late](ledger, 2 * n // 3 + 17)  # the later one first: the earlier one's row stays put
    early_message = TAMPER[early](ledger, n // 3 + 5)
    _, parallel = _both(ledger, ranges)
    assert parallel.failure.startswith(early_message)
    assert parallel.records == n // 3 + 5
    assert not parallel.failure.startswith(late_message)


def test_a_failure_in_the_first_range_beats_one_in_every_later_range(ledger: LedgerDB,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The first range is checked in this process while workers check the rest: its failure still wins."""
    n = len(ledger.records())
    ranges = _split_at(monkeypatch, n // 4, n // 2, 3 * n // 4)
    ledger.drop_triggers()
    for idx in (3 * n // 4 + 2, n // 2 + 2, n // 4 + 2):
        _alter_payload(ledger, idx)
    message = _alter_seq(ledger, 9)
    _, parallel = _both(ledger, ranges)
    assert parallel.failure == message
    assert parallel.records == 9


def test_a_bad_checkpoint_in_an_early_range_beats_a_bad_record_in_a_later_one(ledger: LedgerDB,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _checkpoint_sizes(ledger)
    n = len(ledger.records())
    ranges = _split_at(monkeypatch, sizes[1] + 3, sizes[3] + 3)
    ledger.drop_triggers()
    _alter_payload(ledger, sizes[3] + 10)
    root = ledger.query("SELECT root_hash FROM ledger_checkpoint WHERE tree_size = :s", {"s": sizes[2]})[0].root_hash
    ledger.execute("UPDATE ledger_checkpoint SET root_hash = :r WHERE tree_size = :s",
                   {"r": _flip(bytes(root), 5), "s": sizes[2]})
    _, parallel = _both(ledger, ranges)
    assert parallel.failure.startswith(f"checkpoint at tree size {sizes[2]}: stored root does not match the records")
    assert parallel.records == sizes[2] < n


# -- at the edges of ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TAMPER))
@pytest.mark.parametrize("offset", [-2, -1, 0, 1])
def test_tampering_next_to_a_range_boundary_is_named_as_one_pass_names_it(
        ledger: LedgerDB, monkeypatch: pytest.MonkeyPatch, kind: str, offset: int) -> None:
    """-1 is the last record of the earlier range, which the later range starts from (its chain link and
    sequence): a bad one there fails both ranges, and the earlier range's failure is the one named."""
    n = len(ledger.records())
    boundary = n // 2
    ranges = _split_at(monkeypatch, n // 4, boundary)
    ledger.drop_triggers()
    message = TAMPER[kind](ledger, boundary + offset)
    _, parallel = _both(ledger, ranges)
    assert parallel.failure.startswith(message)
    assert parallel.records == boundary + offset


def test_a_bad_checkpoint_at_a_range_boundary_comes_before_the_bad_record_after_it(
        ledger: LedgerDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint of size s is checked once record s - 1 is in, before record s: with the ranges split
    at s, the earlier range carries the checkpoint and the later one the record."""
    size = _checkpoint_sizes(ledger)[2]
    ranges = _split_at(monkeypatch, size)
    cp = ledger.query("SELECT note FROM ledger_checkpoint WHERE tree_size = :s", {"s": size})[0]
    body, sig_line = cp.note.split("\n\n")
    prefix, sig = sig_line.rsplit(" ", 1)
    altered = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    ledger.drop_triggers()
    _alter_payload(ledger, size)
    ledger.execute("UPDATE ledger_checkpoint SET note = :n WHERE tree_size = :s",
                   {"n": f"{body}\n\n{prefix} {altered}", "s": size})
    _, parallel = _both(ledger, ranges)
    assert parallel.failure.startswith(f"checkpoint at tree size {size}: signature does not verify with the pinned key")
    assert parallel.records == size
    _alter_payload(ledger, size - 1)  # and a bad record just before the checkpoint comes first of all
    _, parallel = _both(ledger, ranges)
    assert parallel.failure.startswith(f"record {size - 1} ")


def test_a_range_split_beyond_the_real_end_verifies_what_is_there(ledger: LedgerDB,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges are split by the highest index at the start; a ledger found shorter (its last ranges
    empty, their starting row absent) is checked up to its real end, not failed and not skipped."""
    n = len(ledger.records())
    ranges = _split_at(monkeypatch, n // 2, n + 100, n + 200)
    _, parallel = _both(ledger, ranges)
    assert parallel.ok, parallel.failure
    assert parallel.records == n


# -- tree nodes ---------------------------------------------------------------------------------------


def _spanning_node(boundary: int, size: int) -> tuple[int, int]:
    """The highest complete tree node with leaves on both sides of ``boundary``."""
    for level in range(size.bit_length(), 0, -1):
        index = boundary >> level
        if index << level < boundary and (index + 1) << level <= size:
            return level, index
    raise AssertionError("no node spans the boundary")


def _alter_node(db: LedgerDB, level: int, index: int) -> None:
    node = db.query("SELECT hash FROM ledger_node WHERE level = :lv AND node_index = :ix", {"lv": level, "ix": index})[0]
    db.execute("UPDATE ledger_node SET hash = :h WHERE level = :lv AND node_index = :ix",
               {"h": _flip(bytes(node.hash), 0), "lv": level, "ix": index})


def test_a_node_spanning_two_ranges_is_checked_and_named(ledger: LedgerDB, monkeypatch: pytest.MonkeyPatch) -> None:
    n = len(ledger.records())
    boundary = n // 2 + 1  # odd: even the level-1 node there spans the two ranges
    ranges = _split_at(monkeypatch, boundary)
    level, index = _spanning_node(boundary, n)
    assert level >= NODE_FLOOR
    ledger.drop_triggers()
    _alter_node(ledger, level, index)
    _, parallel = _both(ledger, ranges)
    assert parallel.failure == f"tree node (level {level}, index {index}) is wrong: proofs would lie"
    assert parallel.records == n


def test_a_deleted_spanning_node_is_reported_missing(ledger: LedgerDB, monkeypatch: pytest.MonkeyPatch) -> None:
    n = len(ledger.records())
    boundary = (n // 2 >> NODE_FLOOR << NODE_FLOOR) + 9  # inside the lowest stored node there: it spans the ranges
    assert (boundary >> NODE_FLOOR) + 1 << NODE_FLOOR <= n
    ranges = _split_at(monkeypatch, n // 3, boundary)
    ledger.drop_triggers()
    ledger.execute("DELETE FROM ledger_node WHERE level = :lv AND node_index = :ix",
                   {"lv": NODE_FLOOR, "ix": boundary >> NODE_FLOOR})
    _, parallel = _both(ledger, ranges)
    assert parallel.failure == "1 tree nodes are missing"


def test_an_extra_node_beyond_the_tree_is_reported(ledger: LedgerDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """No range covers a node past the end of the tree: only the count of stored nodes shows it."""
    n = len(ledger.records())
    ranges = _split_at(monkeypatch, n // 3, 2 * n // 3)
    tree = CompactRange()  # a node of the tree the ledger would have with more leaves: not part of this one
    tree.extend(r[4] for r in ledger.records())
    completed = tree.append(bytes(32))
    while not completed or completed[-1][0] < NODE_FLOOR:
        completed = tree.append(bytes(32))
    level, index, node = completed[-1]
    ledger.execute("INSERT INTO ledger_node (level, node_index, hash) VALUES (:lv, :ix, :h)",
                   {"lv": level, "ix": index, "h": node})
    _, parallel = _both(ledger, ranges)
    assert parallel.failure == f"tree node (level {level}, index {index}) is not part of the ledger's tree"


def test_nodes_altered_in_two_ranges_are_named_as_one_pass_names_them(ledger: LedgerDB,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    n = len(ledger.records())
    ranges = _split_at(monkeypatch, n // 3, 2 * n // 3)
    ledger.drop_triggers()
    late, early = (NODE_FLOOR, (2 * n // 3 + 10) >> NODE_FLOOR), (NODE_FLOOR + 1, (n // 3 + 8) >> NODE_FLOOR + 1)
    _alter_node(ledger, *late)
    _alter_node(ledger, *early)
    _, parallel = _both(ledger, ranges)  # the first in the table's order (PostgreSQL: its heap order)
    assert parallel.failure in {f"tree node (level {lv}, index {ix}) is wrong: proofs would lie" for lv, ix in (late, early)}


# -- a worker that cannot finish ----------------------------------------------------------------------


def test_a_worker_that_fails_leaves_the_check_to_one_range_in_this_process(ledger: LedgerDB,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    real = verify._verify_range

    def broken_in_workers(*args, **kwargs) -> verify._RangeResult:  # noqa: ANN002, ANN003
        if os.getpid() != parent:
            raise OSError("disk went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(verify, "_verify_range", broken_in_workers)
    ledger.drop_triggers()
    message = _alter_payload(ledger, len(ledger.records()) - 3)
    report = _run(ledger, 3)
    assert report.workers == 1, "the result of a failed worker was used"
    assert report.failure.startswith(message)
