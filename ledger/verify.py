"""Independent ledger verification: re-derive everything from the raw rows and a pinned key.

Checks, over the records in index order: indices contiguous from 0; every leaf hash equals
SHA-256(0x00 || payload); the hash chain; sequence numbers gap-free (a command, reject or admin
record takes the next number, events repeat their command's); every stored tree node (the levels the
ledger's schema version stores: every level before 3, from ``NODE_FLOOR`` since); every
checkpoint's root against the recomputed tree, its fields against its signed note, and its
signature against the pinned public key; optional externally kept checkpoints (anchors) against the
tree at their size. The first failure is named by record index and sequence number or by
checkpoint size. Nothing here writes, and nothing depends on the hub's writer code.

The records are checked in ranges (:func:`_verify_range`). A range needs nothing from the ranges
before it but the last stored row before it (its chain link and sequence number): if that row is
wrong, an earlier range fails first. So with ``workers > 1`` the ranges are checked in forked
worker processes, each on its own database connection, and the results are merged in ledger order:
the checkpoints inside a range, then the range's own first failure, then the next range. The first
failure named is therefore the same as one range over the whole ledger (``workers=1``, the same
code in this process) names. A range returns its part of the Merkle tree as its aligned perfect
subtrees; merging them rebuilds the frontier at every checkpoint, and the nodes spanning ranges.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from operator import add, itemgetter, not_
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.hashing import leaves_and_links, node_level
from ledger.merkle import CompactRange
from ledger.records import RecordType, record_end_seq
from ledger.schema import LedgerCheckpoint, node_floor, stored_schema_version
from ledger.signing import Checkpoint, SignatureError, Verifier

CHAIN_TAG = b"hub-ledger/chain/v1"  # the format's constant, restated here on purpose
_HEADER = struct.Struct("<BBqq")
_FOLLOWS_COMMAND = frozenset({int(RecordType.EVENT), int(RecordType.POST_TRADE)})  # they repeat their command's seq
_LEAF_STATE, _NODE_STATE, _CHAIN_STATE = sha256(b"\x00"), sha256(b"\x01"), sha256(CHAIN_TAG)

_BATCH = 5_000  # rows per query and per fetch: small enough that freed batches are reused, not refaulted
PARALLEL_MIN_RECORDS = 50_000  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 8
DEFAULT_WORKERS: int | None = None  # verify_ledger(workers=None) uses this; None = one per CPU, up to MAX_WORKERS


@dataclass
class VerifyReport:
    ok: bool
    records: int = 0
    checkpoints: int = 0
    anchors: int = 0
    failure: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    workers: int = 1  # processes that checked record ranges (1: this one only)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class _Failure(Exception):
    def __init__(self, message: str, at: int = -1) -> None:
        super().__init__(message)
        self.at = at  # records known good before the failure (the failing record's index), -1 if not a record


class _Unmergeable(Exception):
    """The ranges do not fit together (a worker died, or the ledger changed under the workers)."""


Pieces = list[tuple[int, bytes]]  # aligned perfect subtrees (level, hash), left to right, covering a range


@dataclass
class _RangeResult:
    """What one range's check found: records [start, end) are good; ``failure`` (if any) is at ``end``."""

    start: int
    stop: int | None  # the range asked for: [start, stop), None = to the end of the ledger
    end: int = 0
    failure: str = ""
    no_start: bool = False  # the row before ``start`` is missing or unreadable: an earlier range fails on it
    marks: list[tuple[int, Pieces]] = field(default_factory=list)  # (tree size, pieces of [start, size))
    pieces: Pieces = field(default_factory=list)  # pieces of [start, end)
    nodes_ok: bool = True  # every stored node inside [start, end) present and equal (when checked)
    levels: list[list[bytes]] | None = None  # the range's tree by level (kept only in-process, for naming)


def _checkpoints(engine: Engine) -> list:
    t = LedgerCheckpoint.__table__
    with engine.connect() as conn:
        return conn.execute(sa.select(t).order_by(t.c.tree_size)).all()


def _check_checkpoint(row, root: bytes, verifier: Verifier) -> None:
    where = f"checkpoint at tree size {row.tree_size}"
    if bytes(row.root_hash) != root:
        raise _Failure(f"{where}: stored root does not match the records (records altered, or the "
                       "checkpoint rewritten)")
    try:
        signed = verifier.verify(row.note)
    except SignatureError as exc:
        raise _Failure(f"{where}: signature does not verify with the pinned key ({exc})") from None
    if (signed.tree_size, signed.root, signed.state_digest, signed.hub_time_ns) != (
            row.tree_size, bytes(row.root_hash), bytes(row.state_digest), row.hub_time_ns):
        raise _Failure(f"{where}: columns differ from the signed note")


class _Reader:
    """One raw DBAPI connection: plain tuples (no SQLAlchemy Row per record: the verifier reads every
    row of the ledger); driver errors raised as SQLAlchemy's DBAPIError."""

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        self._error = engine.dialect.loaded_dbapi.Error
        self._qmark = engine.dialect.paramstyle == "qmark"
        self._raw = engine.raw_connection()

    def batches(self, sql: str, params: tuple = ()) -> Iterator[list[tuple]]:
        if not self._qmark:
            sql = sql.replace("?", "%s")
        try:
            cursor = self._raw.cursor()
            try:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(_BATCH):
                    yield rows
            finally:
                cursor.close()
        except self._error as exc:
            raise sa.exc.DBAPIError.instance(sql, params, exc, self._error, dialect=self._dialect) from exc

    def all(self, sql: str, params: tuple = ()) -> list[tuple]:
        return [row for batch in self.batches(sql, params) for row in batch]

    def close(self) -> None:
        self._raw.close()


# -- records --------------------------------------------------------------------------------------


def _first_failure(rows: list[tuple], expected: int, chain: bytes, prev_seq: int) -> NoReturn:
    """The reference rule, one row at a time: raise the failure of the first bad row of ``rows``
    (``expected``, ``chain`` and ``prev_seq`` are the state after the row before them)."""
    for idx, seq, payload, leaf, link in rows:
        if idx != expected:
            raise _Failure(f"record {expected} is missing: the next stored record is {idx}", expected)
        h = _LEAF_STATE.copy()
        h.update(payload)
        computed = h.digest()
        if computed != leaf:
            raise _Failure(f"record {idx} (seq {seq}): payload does not match its leaf hash (altered or swapped)", idx)
        h = _CHAIN_STATE.copy()
        h.update(chain)
        h.update(computed)
        chain = h.digest()
        if chain != link:
            raise _Failure(f"record {idx} (seq {seq}): hash chain broken (a record before it was removed, inserted "
                           "or reordered)", idx)
        try:
            _, rtype, rseq, _ = _HEADER.unpack_from(payload)
        except struct.error:
            raise _Failure(f"record {idx} (seq {seq}): payload is not a ledger record", idx) from None
        if rseq != seq:
            raise _Failure(f"record {idx} (seq {seq}): sequence column differs from the record's own ({rseq})", idx)
        wanted = prev_seq if rtype in _FOLLOWS_COMMAND else prev_seq + 1
        if rseq != wanted:
            raise _Failure(f"record {idx} (seq {seq}): sequence {rseq} where {wanted} was due (gap or reorder)", idx)
        try:
            prev_seq = record_end_seq(payload)  # an entry block carries seq .. its last command's
        except struct.error:
            raise _Failure(f"record {idx} (seq {seq}): entry block is cut short", idx) from None
        expected = idx + 1
    raise AssertionError("a batch failed as a whole but no row of it fails")  # the two checks disagree: a bug


_unpack_header = _HEADER.unpack_from
_rtype_of, _seq_of = itemgetter(1), itemgetter(2)  # of a header (version, type, seq, hub time)
_row_seq, _payload_of, _leaf_of, _link_of = itemgetter(1), itemgetter(2), itemgetter(3), itemgetter(4)  # of a row
_follows = _FOLLOWS_COMMAND.__contains__
_BLOCK = int(RecordType.ENTRY_BLOCK)


def _check_rows(rows: list[tuple], expected: int, chain: bytes, prev_seq: int) -> tuple[list[bytes], bytes, int]:
    """Check a batch of (idx, seq, payload, leaf_hash, chain_hash) rows continuing at ``expected``;
    returns their leaf hashes, the chain and the sequence number after them.

    The same rule as :func:`_first_failure`, checked per column over the whole batch (one Python loop
    for the hashes, the rest list comparisons in C); only a batch that fails goes row by row, to name
    its first bad row. The batch passes here exactly when every row passes there: each comparison
    holds for every row, and a row's chain input is its predecessor's, which passed."""
    n = len(rows)
    chain0 = chain
    # The rows come ordered by a unique idx, so first and last in place means all in place.
    if rows[0][0] != expected or rows[-1][0] != expected + n - 1:
        _first_failure(rows, expected, chain, prev_seq)
    payloads = list(map(_payload_of, rows))  # column lists via itemgetter: far cheaper than zip(*rows)
    leaves, chains = leaves_and_links(payloads, chain, CHAIN_TAG)  # one batched call (ledger.hashing)
    chain = chains[-1]
    try:
        headers = list(map(_unpack_header, payloads))
    except struct.error:
        headers = []
    rseqs = list(map(_seq_of, headers))
    rtypes = list(map(_rtype_of, headers))
    ends = rseqs  # the last sequence number of each record: its own, or an entry block's last command's
    if _BLOCK in rtypes:
        try:
            ends = [record_end_seq(p) if t == _BLOCK else q for p, t, q in zip(payloads, rtypes, rseqs, strict=False)]
        except struct.error:
            _first_failure(rows, expected, chain0, prev_seq)
    # wanted[i] = end[i - 1] + (0 if record i follows a command else 1)
    wanted = list(map(add, [prev_seq, *ends[:-1]], map(not_, map(_follows, rtypes))))
    if (len(headers) != n or leaves != list(map(_leaf_of, rows)) or chains != list(map(_link_of, rows))
            or rseqs != list(map(_row_seq, rows)) or wanted != rseqs):
        _first_failure(rows, expected, chain0, prev_seq)
    return leaves, chain, ends[-1]


# -- the tree -------------------------------------------------------------------------------------


def _first_index(start: int, level: int) -> int:
    """Index of the first node of ``level`` lying wholly at or after leaf ``start``."""
    return -(-start >> level)


def _build_levels(leaves: list[bytes], start: int) -> list[list[bytes]]:
    """Every perfect subtree wholly inside leaves [start, start + len(leaves)), level by level:
    ``levels[L][j]`` is node (L, _first_index(start, L) + j); level 0 is the leaves."""
    levels = [leaves]
    first, below = start, leaves
    while True:
        skip = first & 1  # a right child whose left sibling lies before the range
        if (len(below) - skip) // 2 <= 0:
            return levels
        nodes = node_level(below, skip)
        levels.append(nodes)
        first, below = (first + 1) >> 1, nodes


def _pieces(levels: list[list[bytes]], start: int, end: int) -> Pieces:
    """Leaves [start, end) as the fewest aligned perfect subtrees, left to right (from ``levels`` of a
    range starting at ``start`` and reaching at least ``end``)."""
    out: Pieces = []
    pos = start
    while pos < end:
        level = (end - pos).bit_length() - 1
        if pos:
            level = min(level, (pos & -pos).bit_length() - 1)  # aligned: pos is a multiple of 2**level
        out.append((level, levels[level][(pos >> level) - _first_index(start, level)]))
        pos += 1 << level
    return out


def _merge(frontier: Pieces, size: int, pieces: Pieces, completed: list[tuple[int, int, bytes]] | None = None) -> int:
    """Append ``pieces`` (aligned subtrees covering [size, ...)) to ``frontier`` (the tree's right
    frontier at ``size``: (level, hash) per set bit of size, largest first), merging equal-sized
    subtrees as RFC 6962 appends do; nodes completed by a merge go to ``completed``. Returns the new size."""
    for level, node in pieces:
        pos = size
        size += 1 << level
        while (pos >> level) & 1:  # a right child: its left sibling is the frontier's last subtree
            left_level, left = frontier.pop()
            if left_level != level:
                raise AssertionError("pieces not aligned with the frontier")
            h = _NODE_STATE.copy()
            h.update(left)
            h.update(node)
            node = h.digest()
            pos -= 1 << level
            level += 1
            if completed is not None:
                completed.append((level, pos >> level, node))
        frontier.append((level, node))
    return size


# -- one range ------------------------------------------------------------------------------------


def _verify_range(engine: Engine, start: int, stop: int | None, marks: list[int], nodes_from: int,
                  keep_levels: bool = False) -> _RangeResult:
    """Check records [start, stop) (to the end if ``stop`` is None), the stored tree nodes (levels
    ``nodes_from`` and up; 0: none) wholly inside them, and take the range's pieces at each of
    ``marks`` (tree sizes in (start, stop]) reached."""
    result = _RangeResult(start, stop)
    reader = _Reader(engine)
    try:
        chain, prev_seq = bytes(32), 0
        if start:
            # The state after the row before: if that row is bad, an earlier range names it first.
            before = reader.all("SELECT payload, chain_hash FROM ledger_record WHERE idx = ?", (start - 1,))
            try:
                chain, prev_seq = bytes(before[0][1]), record_end_seq(bytes(before[0][0]))
            except (IndexError, struct.error):
                result.no_start = True
                result.end = start
                return result
        select = "SELECT idx, seq, payload, leaf_hash, chain_hash FROM ledger_record WHERE idx >= ? ORDER BY idx LIMIT ?"
        leaves: list[bytes] = []
        expected = start
        while stop is None or expected < stop:
            rows = reader.all(select, (expected, _BATCH if stop is None else min(_BATCH, stop - expected)))
            if not rows:
                break
            try:
                batch, chain, prev_seq = _check_rows(rows, expected, chain, prev_seq)
            except _Failure as exc:
                result.failure = str(exc)
                good = exc.at - expected  # rows of this batch before the failing one
                leaves += _check_rows(rows[:good], expected, chain, prev_seq)[0] if good > 0 else []
                expected = exc.at
                break
            leaves += batch
            expected += len(rows)
        result.end = expected
        levels = _build_levels(leaves, start)
        result.marks = [(m, _pieces(levels, start, m)) for m in marks if start < m <= expected]
        result.pieces = _pieces(levels, start, expected)
        if nodes_from and not result.failure:
            result.nodes_ok = _nodes_match(reader, levels, start, nodes_from)
        if keep_levels:
            result.levels = levels
        return result
    finally:
        reader.close()


def _nodes_match(reader: _Reader, levels: list[list[bytes]], start: int, nodes_from: int) -> bool:
    """Whether the stored nodes of each stored level over the range are exactly the computed ones, in
    order ((level, node_index) is the table's key, so equal lists mean the same nodes)."""
    select = "SELECT hash FROM ledger_node WHERE level = ? AND node_index >= ? AND node_index < ? ORDER BY node_index"
    for level in range(nodes_from, len(levels)):
        nodes = levels[level]
        first = _first_index(start, level)
        pos = 0
        for batch in reader.batches(select, (level, first, first + len(nodes))):
            if [row[0] for row in batch] != nodes[pos:pos + len(batch)]:
                return False
            pos += len(batch)
        if pos != len(nodes):
            return False
    return True


_INHERITED_POOLS: list[Any] = []


def _range_worker(send: Any, engine: Engine, args: tuple) -> None:
    """A forked worker: check one range on a connection of its own and send the result back."""
    gc.disable()  # the worker makes no cycles; a collection would scan (and copy) the parent's objects too
    # New connections for this process. The parent's pooled ones are left alone and kept referenced
    # until the worker's os._exit, so that no driver cleanup here touches the parent's sessions.
    _INHERITED_POOLS.append(engine.pool)
    engine.dispose(close=False)
    try:
        send.send(("ok", _verify_range(engine, *args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which re-checks on its own
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


def range_starts(total: int, workers: int) -> list[int]:
    """Where the ranges of ``workers`` processes over ``total`` records begin (the last runs to the end)."""
    workers = max(1, min(workers, total))
    return [total * k // workers for k in range(workers)]


def fork_is_safe() -> bool:
    """Whether worker processes may be forked from this one: the platform forks, and no other thread
    runs here. A thread inside SQLite (or libpq) at the fork leaves its locks held for ever in the
    child, whose first allocation then waits on them: a verify started from a process with other
    threads (an embedded hub, a test run) checks its ranges here instead, with the same result."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _run_ranges(engine: Engine, starts: list[int], marks: list[int], nodes_from: int) -> list[_RangeResult]:
    """Check the ranges beginning at ``starts``: the first in this process, the others in forked workers."""
    bounds = [*starts[1:], None]

    def args(k: int) -> tuple:
        stop = bounds[k]
        return (starts[k], stop, [m for m in marks if m > starts[k] and (stop is None or m <= stop)], nodes_from)

    if len(starts) == 1:
        return [_verify_range(engine, *args(0), keep_levels=True)]
    if not fork_is_safe():
        return [_verify_range(engine, *args(k)) for k in range(len(starts))]  # same result, one process
    ctx = multiprocessing.get_context("fork")
    workers = []
    try:
        for k in range(1, len(starts)):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_range_worker, args=(send, engine, args(k)), daemon=True)
            try:
                proc.start()
            except (AssertionError, OSError) as exc:  # e.g. called in a daemonic process, or out of processes
                receive.close()
                raise _Unmergeable(f"no verify worker could be started ({exc})") from None
            finally:
                send.close()
            workers.append((proc, receive))
        results = [_verify_range(engine, *args(0))]
        for _proc, receive in workers:
            try:
                kind, value = receive.recv()
            except EOFError:
                raise _Unmergeable("a verify worker exited without a result") from None
            if kind != "ok":
                raise _Unmergeable(f"a verify worker failed: {value}")
            results.append(value)
        return results
    finally:
        for proc, receive in workers:
            receive.close()
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _default_workers() -> int:
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # workers inherit the engine and need no import: without fork they would cost more than they save
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else
                      os.cpu_count() or 1))


# -- the whole ledger -----------------------------------------------------------------------------


def verify_ledger(engine: Engine, verifier: Verifier, anchors: list[str] | None = None, node_check: bool = True,
                  workers: int | None = None, min_parallel: int | None = None) -> VerifyReport:
    """Verify the whole ledger; ``anchors`` are signed checkpoint notes kept outside the database.

    ``workers``: processes checking record ranges (None: ``DEFAULT_WORKERS``, normally one per CPU up
    to ``MAX_WORKERS``; 1: all in this process). Ledgers under ``min_parallel`` records (default
    ``PARALLEL_MIN_RECORDS``) are checked in this process. Either way the same first failure is named."""
    started = time.perf_counter()
    report = VerifyReport(ok=False)
    pinned: dict[int, Checkpoint] = {}
    for note in anchors or ():
        try:
            cp = verifier.verify(note)
        except SignatureError as exc:
            report.failure = f"external checkpoint does not verify with the pinned key ({exc})"
            return report
        pinned[cp.tree_size] = cp
    stored = _checkpoints(engine)
    by_size = {row.tree_size: row for row in stored}
    marks = sorted(size for size in set(by_size) | set(pinned) if size > 0)
    if workers is None:
        workers = _default_workers() if DEFAULT_WORKERS is None else DEFAULT_WORKERS
    wanted = max(1, workers) if fork_is_safe() else 1  # ranges in turn here would only cost more
    total = 0
    if wanted > 1:
        with engine.connect() as conn:  # where to split; the last range reads on to the real end
            total = (conn.exec_driver_sql("SELECT max(idx) FROM ledger_record").scalar() or 0) + 1
    floor = PARALLEL_MIN_RECORDS if min_parallel is None else min_parallel
    starts = range_starts(total, wanted) if wanted > 1 and total >= max(floor, 2) else [0]
    nodes_from = 0
    if node_check:  # which levels this ledger stores (schema 3: from NODE_FLOOR; earlier: all)
        with engine.connect() as conn:
            nodes_from = node_floor(stored_schema_version(conn))
    collecting = gc.isenabled()
    gc.disable()  # millions of short-lived row tuples and no cycles: collections would only rescan them (~7 %)
    try:
        results = _run_ranges(engine, starts, marks, nodes_from)
        report.workers = len(starts)
        _merge_results(engine, results, by_size, pinned, verifier, nodes_from, report)
    except _Unmergeable:
        # Only a crashed worker or a ledger changing under the workers gets here: check it in one range.
        report = verify_ledger(engine, verifier, anchors, node_check, workers=1)
    finally:
        if collecting:
            gc.enable()
    report.seconds = time.perf_counter() - started
    return report


def _merge_results(engine: Engine, results: list[_RangeResult], by_size: dict, pinned: dict[int, Checkpoint],
                   verifier: Verifier, nodes_from: int, report: VerifyReport) -> None:
    """Walk the ranges in ledger order, as one pass over the ledger would, and fill in ``report``."""
    frontier: Pieces = []
    spanning: list[tuple[int, int, bytes]] = []  # nodes no single range holds wholly
    used: list[_RangeResult] = []
    expected = 0
    try:
        for res in results:
            if res.start != expected:
                break  # the ledger ended before this range (it was shorter than when it was split)
            if res.no_start:
                raise _Unmergeable(f"the record before {res.start} vanished between two reads")
            used.append(res)
            for size, pieces in res.marks:  # marks first: one pass checks a checkpoint before the next record
                front = frontier.copy()
                _merge(front, expected, pieces)
                _check_mark(size, CompactRange(size, [h for _, h in front]).root(), by_size, pinned, verifier, report)
            if res.failure:
                raise _Failure(res.failure, res.end)
            expected = _merge(frontier, expected, res.pieces, spanning)
            if res.stop is not None and res.end < res.stop:
                break
        report.records = expected
        beyond = [size for size in by_size if size > expected]
        if beyond:
            raise _Failure(f"checkpoint at tree size {min(beyond)} covers records {expected}.."
                           f"{min(beyond) - 1}, which are missing (tail truncated)")
        beyond = [size for size in pinned if size > expected]
        if beyond:
            raise _Failure(f"external checkpoint at tree size {min(beyond)}: the ledger has only {expected} "
                           "records (tail truncated)")
        if nodes_from:
            _check_nodes(engine, used, spanning, expected, nodes_from)
        last = max(by_size, default=None)
        if last is not None and last != expected:
            report.warnings.append(f"{expected - last} records after the last checkpoint are not yet covered "
                                   "by a signature")
    except _Failure as exc:
        report.failure = str(exc)
        report.records = exc.at if exc.at >= 0 else expected
        return
    report.ok = True


def _check_mark(size: int, root: bytes, by_size: dict, pinned: dict[int, Checkpoint], verifier: Verifier,
                report: VerifyReport) -> None:
    """The stored checkpoint and the anchor at tree size ``size`` against the recomputed root."""
    try:
        if size in by_size:
            _check_checkpoint(by_size[size], root, verifier)
            report.checkpoints += 1
        if size in pinned:
            if pinned[size].root != root:
                raise _Failure(f"external checkpoint at tree size {size}: root differs from the ledger (history "
                               "rewritten since it was published)")
            report.anchors += 1
    except _Failure as exc:
        raise _Failure(str(exc), size) from None


def _check_nodes(engine: Engine, used: list[_RangeResult], spanning: list[tuple[int, int, bytes]], size: int,
                 nodes_from: int) -> None:
    """Every stored tree node equals the node recomputed from the records, and none is missing or extra
    (the ledger stores the nodes of levels ``nodes_from`` and up).

    The ranges compared the nodes wholly inside them; the nodes spanning ranges are looked up here, and
    the count of stored nodes must be that of a tree of ``size`` leaves. Only if something differs is
    each stored node looked up on its own, in the table's order, which names the first bad one or counts
    the missing (the same naming however the ranges were split)."""
    reader = _Reader(engine)
    try:
        ok = all(res.nodes_ok for res in used)
        select = "SELECT hash FROM ledger_node WHERE level = ? AND node_index = ?"
        for level, index, node in spanning if ok else ():
            if level < nodes_from:
                continue
            if [row[0] for row in reader.all(select, (level, index))] != [node]:
                ok = False
                break
        # nodes of the stored levels completed by `size` appends (from level 1: size - popcount(size))
        expected_nodes = sum(size >> level for level in range(nodes_from, size.bit_length()))
        if ok and reader.all("SELECT count(*) FROM ledger_node")[0][0] == expected_nodes:
            return
        if len(used) == 1 and used[0].levels is not None:
            levels = used[0].levels
        else:  # every stored leaf hash below `size` was just checked against its payload
            leaves = [bytes(row[0]) for row in reader.all("SELECT leaf_hash FROM ledger_record WHERE idx < ? "
                                                          "ORDER BY idx", (size,))]
            levels = _build_levels(leaves, 0)
        select = "SELECT level, node_index, hash FROM ledger_node" + _storage_order(reader, engine)
        seen = 0
        for batch in reader.batches(select):
            for level, index, node in batch:  # node (L, i) is levels[L][i]
                want = (levels[level][index] if nodes_from <= level < len(levels) and 0 <= index < len(levels[level])
                        else None)
                if want is None:
                    raise _Failure(f"tree node (level {level}, index {index}) is not part of the ledger's tree")
                if node != want:
                    raise _Failure(f"tree node (level {level}, index {index}) is wrong: proofs would lie")
                seen += 1
        if seen != expected_nodes:
            raise _Failure(f"{expected_nodes - seen} tree nodes are missing")
    finally:
        reader.close()


def _storage_order(reader: _Reader, engine: Engine) -> str:
    """ORDER BY giving ``ledger_node`` in the order it is stored: insertion (rowid) order on SQLite,
    key order for a WITHOUT ROWID table (schema 2), and the heap's order on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return ""
    found = reader.all("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ledger_node'")
    return " ORDER BY level, node_index" if found and "WITHOUT ROWID" in found[0][0].upper() else " ORDER BY rowid"
