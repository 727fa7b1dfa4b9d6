"""Independent ledger verification: re-derive everything from the raw rows and a pinned key.

Checks, in one pass over the records in index order: indices contiguous from 0; every leaf hash
equals SHA-256(0x00 || payload); the hash chain; sequence numbers gap-free (a command, reject or
admin record takes the next number, events repeat their command's); every stored tree node;
every checkpoint's root against the recomputed tree, its fields against its signed note, and
its signature against the pinned public key; optional externally kept checkpoints (anchors)
against the tree at their size. The first failure is named by record index and sequence number
or by checkpoint size. Nothing here writes, and nothing depends on the hub's writer code.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import sha256

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.merkle import CompactRange
from ledger.records import RecordType
from ledger.schema import LedgerCheckpoint
from ledger.signing import Checkpoint, SignatureError, Verifier

CHAIN_TAG = b"hub-ledger/chain/v1"  # the format's constant, restated here on purpose
_HEADER = struct.Struct("<BBqq")
_FOLLOWS_COMMAND = {int(RecordType.EVENT), int(RecordType.POST_TRADE)}  # they repeat their command's seq


@dataclass
class VerifyReport:
    ok: bool
    records: int = 0
    checkpoints: int = 0
    anchors: int = 0
    failure: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class _Failure(Exception):
    pass


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


_BATCH = 5_000  # rows per query and per fetch: small enough that freed batches are reused, not refaulted
_MAX_LEVEL = 64  # a tree of fewer than 2**63 leaves has no node above this


def _raw_rows(engine: Engine, sql: str, params: tuple = ()) -> Iterator[list[tuple]]:
    """The rows of one query as plain DBAPI tuples, in batches (no SQLAlchemy Row per record: the
    verifier reads every row of the ledger); driver errors raised as SQLAlchemy's DBAPIError."""
    if engine.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    dbapi_error = engine.dialect.loaded_dbapi.Error
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(_BATCH):
                yield rows
        finally:
            cursor.close()
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, dbapi_error, dialect=engine.dialect) from exc
    finally:
        raw.close()


def verify_ledger(engine: Engine, verifier: Verifier, anchors: list[str] | None = None,
                  node_check: bool = True) -> VerifyReport:
    """Verify the whole ledger; ``anchors`` are signed checkpoint notes kept outside the database."""
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
    # Tree sizes where a checkpoint or an anchor is checked, in order; the loop compares with the next one.
    marks = sorted(size for size in set(by_size) | set(pinned) if size > 0)
    mark_at = 0
    next_mark = marks[0] if marks else -1
    # The tree's right frontier (one hash per set bit of the size, largest subtree first) and, for the
    # node check, every completed node (level, index, hash) in completion order.
    frontier: list[bytes] = []
    pop, push = frontier.pop, frontier.append
    completed: list[tuple[int, int, bytes]] = []
    add_node = completed.append
    chain = bytes(32)
    prev_seq = 0
    expected = 0
    leaf_state, node_state, chain_state = sha256(b"\x00"), sha256(b"\x01"), sha256(CHAIN_TAG)
    unpack = _HEADER.unpack_from
    select = ("SELECT idx, seq, payload, leaf_hash, chain_hash FROM ledger_record WHERE idx >= ? "
              f"ORDER BY idx LIMIT {_BATCH}")
    idx = seq = 0
    try:
        while True:
            rows = [row for batch in _raw_rows(engine, select, (expected,)) for row in batch]
            if not rows:
                break
            for idx, seq, payload, leaf, link in rows:
                if idx != expected:
                    raise _Failure(f"record {expected} is missing: the next stored record is {idx}")
                h = leaf_state.copy()
                h.update(payload)
                computed = h.digest()
                if computed != leaf:
                    raise _Failure(f"record {idx} (seq {seq}): payload does not match its leaf hash (altered or "
                                   "swapped)")
                h = chain_state.copy()
                h.update(chain)
                h.update(computed)
                chain = h.digest()
                if chain != link:
                    raise _Failure(f"record {idx} (seq {seq}): hash chain broken (a record before it was removed, "
                                   "inserted or reordered)")
                try:
                    _, rtype, rseq, _ = unpack(payload)
                except struct.error:
                    raise _Failure(f"record {idx} (seq {seq}): payload is not a ledger record") from None
                if rseq != seq:
                    raise _Failure(f"record {idx} (seq {seq}): sequence column differs from the record's own "
                                   f"({rseq})")
                wanted = prev_seq if rtype in _FOLLOWS_COMMAND else prev_seq + 1
                if rseq != wanted:
                    raise _Failure(f"record {idx} (seq {seq}): sequence {rseq} where {wanted} was due (gap or "
                                   "reorder)")
                prev_seq = rseq
                # Append the leaf to the tree (RFC 6962): merge equal-sized subtrees at the frontier.
                node, s, level = computed, expected, 0
                while s & 1:
                    h = node_state.copy()
                    h.update(pop())
                    h.update(node)
                    node = h.digest()
                    s >>= 1
                    level += 1
                    if node_check:
                        add_node((level, s, node))
                push(node)
                expected = idx + 1
                if expected == next_mark:
                    root = CompactRange(expected, frontier).root()
                    if expected in by_size:
                        _check_checkpoint(by_size[expected], root, verifier)
                        report.checkpoints += 1
                    if expected in pinned:
                        if pinned[expected].root != root:
                            raise _Failure(f"external checkpoint at tree size {expected}: root differs from the "
                                           "ledger (history rewritten since it was published)")
                        report.anchors += 1
                    mark_at += 1
                    next_mark = marks[mark_at] if mark_at < len(marks) else -1
        report.records = expected
        beyond = [size for size in by_size if size > expected]
        if beyond:
            raise _Failure(f"checkpoint at tree size {min(beyond)} covers records {expected}.."
                           f"{min(beyond) - 1}, which are missing (tail truncated)")
        beyond = [size for size in pinned if size > expected]
        if beyond:
            raise _Failure(f"external checkpoint at tree size {min(beyond)}: the ledger has only {expected} "
                           "records (tail truncated)")
        if node_check:
            _check_nodes(engine, completed)
        if stored and stored[-1].tree_size != expected:
            report.warnings.append(f"{expected - stored[-1].tree_size} records after the last checkpoint "
                                   "are not yet covered by a signature")
    except _Failure as exc:
        report.failure = str(exc)
        report.records = expected
        report.seconds = time.perf_counter() - started
        return report
    report.ok = True
    report.seconds = time.perf_counter() - started
    return report


def _check_nodes(engine: Engine, completed: list[tuple[int, int, bytes]]) -> None:
    """Every stored tree node equals the node recomputed from the records, and none is missing or extra.

    The writer stores nodes as they complete, so the table read in storage order is normally exactly
    ``completed``: that is compared a batch at a time, as whole lists. Only if it differs is each stored
    node looked up on its own, which names the first bad one (in the table's order) or counts the missing."""
    select = "SELECT level, node_index, hash FROM ledger_node" + (
        " ORDER BY rowid" if engine.dialect.name == "sqlite" else "")
    pos = 0
    for batch in _raw_rows(engine, select):
        if batch != completed[pos:pos + len(batch)]:
            break
        pos += len(batch)
    else:
        if pos == len(completed):
            return
    levels: list[list[bytes]] = [[] for _ in range(_MAX_LEVEL + 1)]
    for level, _index, node in completed:  # node (L, i) is levels[L][i]: a level completes in index order
        levels[level].append(node)
    seen = 0
    for batch in _raw_rows(engine, select):
        for level, index, node in batch:
            want = levels[level][index] if 0 < level <= _MAX_LEVEL and 0 <= index < len(levels[level]) else None
            if want is None:
                raise _Failure(f"tree node (level {level}, index {index}) is not part of the ledger's tree")
            if node != want:
                raise _Failure(f"tree node (level {level}, index {index}) is wrong: proofs would lie")
            seen += 1
    if seen != len(completed):
        raise _Failure(f"{len(completed) - seen} tree nodes are missing")
