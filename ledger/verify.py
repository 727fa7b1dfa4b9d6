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

import hashlib
import struct
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.merkle import CompactRange
from ledger.records import RecordType
from ledger.schema import LedgerCheckpoint, LedgerNode, LedgerRecord
from ledger.signing import Checkpoint, SignatureError, Verifier

CHAIN_TAG = b"hub-ledger/chain/v1"  # the format's constant, restated here on purpose
_HEADER = struct.Struct("<BBqq")
_EVENT = int(RecordType.EVENT)


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
    tree = CompactRange()
    nodes: dict[tuple[int, int], bytes] = {}
    chain = bytes(32)
    prev_seq = 0
    expected = 0
    sha256 = hashlib.sha256
    t = LedgerRecord.__table__
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(t.c.idx, t.c.seq, t.c.payload, t.c.leaf_hash, t.c.chain_hash)
                    .where(t.c.idx >= expected).order_by(t.c.idx).limit(50_000)).all()
            if not rows:
                break
            for idx, seq, payload, leaf, link in rows:
                where = f"record {idx} (seq {seq})"
                if idx != expected:
                    raise _Failure(f"record {expected} is missing: the next stored record is {idx}")
                payload = bytes(payload)
                computed = sha256(b"\x00" + payload).digest()
                if computed != leaf:
                    raise _Failure(f"{where}: payload does not match its leaf hash (altered or swapped)")
                chain = sha256(CHAIN_TAG + chain + computed).digest()
                if chain != link:
                    raise _Failure(f"{where}: hash chain broken (a record before it was removed, "
                                   "inserted or reordered)")
                try:
                    _, rtype, rseq, _ = _HEADER.unpack_from(payload)
                except struct.error:
                    raise _Failure(f"{where}: payload is not a ledger record") from None
                if rseq != seq:
                    raise _Failure(f"{where}: sequence column differs from the record's own ({rseq})")
                wanted = prev_seq if rtype == _EVENT else prev_seq + 1
                if rseq != wanted:
                    raise _Failure(f"{where}: sequence {rseq} where {wanted} was due (gap or reorder)")
                prev_seq = rseq
                completed = tree.append(computed)
                if node_check:
                    for level, index, node in completed:
                        nodes[(level, index)] = node
                expected = idx + 1
                if expected in by_size:
                    _check_checkpoint(by_size[expected], tree.root(), verifier)
                    report.checkpoints += 1
                if expected in pinned and pinned[expected].root != tree.root():
                    raise _Failure(f"external checkpoint at tree size {expected}: root differs from the "
                                   "ledger (history rewritten since it was published)")
                report.anchors += expected in pinned
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
            _check_nodes(engine, nodes)
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


def _check_nodes(engine: Engine, expected: dict[tuple[int, int], bytes]) -> None:
    t = LedgerNode.__table__
    seen = 0
    with engine.connect() as conn:
        for level, index, node in conn.execute(sa.select(t.c.level, t.c.node_index, t.c.hash)):
            want = expected.get((level, index))
            if want is None:
                raise _Failure(f"tree node (level {level}, index {index}) is not part of the ledger's tree")
            if bytes(node) != want:
                raise _Failure(f"tree node (level {level}, index {index}) is wrong: proofs would lie")
            seen += 1
    if seen != len(expected):
        raise _Failure(f"{len(expected) - seen} tree nodes are missing")
