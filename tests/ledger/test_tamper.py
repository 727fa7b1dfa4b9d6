"""Tamper drills: an attacker with write access to the ledger database (SQLite or PostgreSQL)
drops the append-only triggers and edits rows; ``verify_ledger`` with the pinned public key (and,
where the attack is self-consistent, a checkpoint kept outside the database) must fail and name
the first bad record, checkpoint or node. An untouched ledger verifies; so does the CLI.

Every drill runs twice: with the whole ledger checked as one range in this process, and split into
three ranges checked by forked worker processes (the parallel path, forced on for these small
ledgers), which must name the same first failure."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.cli import main as cli_main
from ledger import verify
from ledger.merkle import CompactRange, leaf_hash
from ledger.records import RecordType, canonical_json, encode_detail
from ledger.schema import NODE_FLOOR
from ledger.signing import Checkpoint, Signer
from ledger.store import CHAIN_TAG
from tests.ledger.conftest import ORIGIN, LedgerDB, build_ledger

ROOT = Path(__file__).resolve().parents[2]
PARALLEL = 3  # ranges (processes) of the parallel runs


@pytest.fixture(autouse=True, params=[1, PARALLEL], ids=["one-range", "parallel"])
def workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """How ``verify_ledger`` splits the work when not told (as LedgerDB.verify and the CLI call it)."""
    monkeypatch.setattr(verify, "DEFAULT_WORKERS", request.param)
    monkeypatch.setattr(verify, "PARALLEL_MIN_RECORDS", 0)
    # The test process has other (idle) threads, so verify would not fork; journals are closed after
    # every test (tests/conftest.py), so none is inside SQLite at a fork.
    monkeypatch.setattr(verify, "fork_is_safe", lambda: True)
    return request.param


@pytest.fixture
def ledger(ledger_db: LedgerDB) -> LedgerDB:
    """A closed ledger of a few hundred records and several checkpoints; triggers still in place."""
    build_ledger(ledger_db, rounds=8, checkpoint_every=12)
    assert len(ledger_db.records()) > 250
    assert len(ledger_db.query("SELECT tree_size FROM ledger_checkpoint")) >= 5
    return ledger_db


def _checkpoint_sizes(db: LedgerDB) -> list[int]:
    return [r.tree_size for r in db.query("SELECT tree_size FROM ledger_checkpoint ORDER BY tree_size")]


def _latest_note(db: LedgerDB) -> str:
    return db.query("SELECT note FROM ledger_checkpoint ORDER BY tree_size DESC LIMIT 1")[0].note


def _middle(db: LedgerDB, rtype: RecordType) -> tuple[int, int]:
    """(index, seq) of a record of this type in the middle of the ledger, not ending a block."""
    rows = db.records()
    sizes = set(_checkpoint_sizes(db))
    for idx, seq, kind, *_ in rows[len(rows) // 2:]:
        if kind == rtype and idx + 1 not in sizes:
            return idx, seq
    raise AssertionError(f"no {rtype.name} record in the second half")


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:]


def _hub_time(payload: bytes) -> int:
    return int.from_bytes(payload[10:18], "little", signed=True)  # header: version, type, seq, hub time


def _verify(db: LedgerDB, anchors: list[str] | None = None, reads_records: bool = True) -> verify.VerifyReport:
    report = db.verify(anchors)
    if reads_records:
        assert report.workers == verify.DEFAULT_WORKERS, "the verifier did not split the work as asked"
    return report


def _failure(db: LedgerDB, anchors: list[str] | None = None, reads_records: bool = True) -> verify.VerifyReport:
    report = _verify(db, anchors, reads_records)
    assert not report.ok, "the tampered ledger verified"
    return report


def _other_signer() -> Signer:
    """The attacker's key, under the hub's key name (only the key id and the signature differ)."""
    return Signer(ed25519.Ed25519PrivateKey.generate(), "hub.local")


def _rewrite_from(db: LedgerDB, start: int, signer: Signer) -> int:
    """Change record ``start`` and rewrite everything after it so that every hash, chain link,
    tree node and checkpoint root is consistent again; re-sign the checkpoints after ``start`` with
    ``signer``. Returns the size of the first checkpoint that had to be re-signed."""
    rows = db.records()
    payloads = [r[3] for r in rows]
    payloads[start] = _flip(payloads[start], len(payloads[start]) - 1)
    chain, tree = bytes(32), CompactRange()
    records, nodes, roots = [], [], {}
    for idx, (row, payload) in enumerate(zip(rows, payloads, strict=True)):
        leaf = leaf_hash(payload)
        chain = hashlib.sha256(CHAIN_TAG + chain + leaf).digest()
        nodes += [{"level": lv, "ix": ix, "hash": h} for lv, ix, h in tree.append(leaf) if lv >= NODE_FLOOR]
        roots[idx + 1] = tree.root()
        if idx >= start:
            records.append({"idx": idx, "seq": row[1], "rt": row[2], "ts": _hub_time(payload), "payload": payload,
                            "leaf": leaf, "chain": chain})
    resigned = []
    for cp in db.query("SELECT tree_size, state_digest, hub_time_ns FROM ledger_checkpoint "
                       "WHERE tree_size > :s ORDER BY tree_size", {"s": start}):
        root = roots[cp.tree_size]
        note = signer.sign(Checkpoint(ORIGIN, cp.tree_size, root, bytes(cp.state_digest), cp.hub_time_ns)).note
        resigned.append({"size": cp.tree_size, "root": root, "note": note})
    db.drop_triggers()
    db.execute("DELETE FROM ledger_record WHERE idx >= :s", {"s": start})
    db.execute("INSERT INTO ledger_record (idx, seq, record_type, hub_time_ns, payload, leaf_hash, chain_hash) "
               "VALUES (:idx, :seq, :rt, :ts, :payload, :leaf, :chain)", records)
    db.execute("DELETE FROM ledger_node")
    db.execute("INSERT INTO ledger_node (level, node_index, hash) VALUES (:level, :ix, :hash)", nodes)
    for cp in resigned:
        db.execute("UPDATE ledger_checkpoint SET root_hash = :root, note = :note WHERE tree_size = :size", cp)
    return resigned[0]["size"]


# -- the control ------------------------------------------------------------------------------------


def test_untouched_ledger_verifies_with_the_pinned_key_and_its_own_checkpoints_as_anchors(ledger: LedgerDB) -> None:
    notes = [r.note for r in ledger.query("SELECT note FROM ledger_checkpoint")]
    report = _verify(ledger, notes)
    assert report.ok, report.failure
    assert report.records == len(ledger.records())
    assert report.checkpoints == len(notes) == report.anchors
    assert not report.warnings, "a cleanly closed ledger ends with a checkpoint"


# -- records ----------------------------------------------------------------------------------------


def test_one_altered_payload_byte_is_named_by_record_and_sequence(ledger: LedgerDB) -> None:
    idx, seq = _middle(ledger, RecordType.EVENT)
    payload = ledger.records()[idx][3]
    ledger.drop_triggers()
    ledger.execute("UPDATE ledger_record SET payload = :p WHERE idx = :i", {"p": _flip(payload, 40), "i": idx})
    report = _failure(ledger)
    assert report.failure.startswith(f"record {idx} (seq {seq}): payload does not match its leaf hash")
    assert report.records == idx, "everything before the altered record is reported good"


def test_an_altered_payload_with_its_leaf_hash_recomputed_breaks_the_chain_there(ledger: LedgerDB) -> None:
    idx, seq = _middle(ledger, RecordType.COMMAND)
    payload = _flip(ledger.records()[idx][3], 30)
    ledger.drop_triggers()
    ledger.execute("UPDATE ledger_record SET payload = :p, leaf_hash = :h WHERE idx = :i",
                   {"p": payload, "h": leaf_hash(payload), "i": idx})
    report = _failure(ledger)
    assert report.failure.startswith(f"record {idx} (seq {seq}): hash chain broken")


def test_a_deleted_record_is_named_as_missing(ledger: LedgerDB) -> None:
    idx, _ = _middle(ledger, RecordType.COMMAND)
    ledger.drop_triggers()
    ledger.execute("DELETE FROM ledger_record WHERE idx = :i", {"i": idx})
    report = _failure(ledger)
    assert report.failure == f"record {idx} is missing: the next stored record is {idx + 1}"


def test_an_inserted_record_breaks_the_chain_at_the_record_after_it(ledger: LedgerDB) -> None:
    """A forged duplicate of a fill, slipped in right after the real one with a correct leaf hash
    and chain link (and the same sequence number, as events have): the next record's link fails."""
    idx, seq = _middle(ledger, RecordType.EVENT)
    rows = ledger.records()
    _, _, rtype, payload, leaf, _ = rows[idx]
    forged = {"idx": idx + 1, "seq": seq, "rt": rtype, "ts": _hub_time(payload), "payload": payload, "leaf": leaf,
              "chain": hashlib.sha256(CHAIN_TAG + rows[idx][5] + leaf).digest()}
    ledger.drop_triggers()
    # make room: shift every later record up by one (through negative indices, so no key collides)
    ledger.execute("UPDATE ledger_record SET idx = -idx - 1 WHERE idx > :i", {"i": idx})
    ledger.execute("UPDATE ledger_record SET idx = -idx WHERE idx < 0")
    ledger.execute("INSERT INTO ledger_record (idx, seq, record_type, hub_time_ns, payload, leaf_hash, chain_hash) "
                   "VALUES (:idx, :seq, :rt, :ts, :payload, :leaf, :chain)", forged)
    report = _failure(ledger)
    assert report.failure.startswith(f"record {idx + 2} (seq {rows[idx + 1][1]}): hash chain broken")


def test_swapped_payloads_and_hashes_of_two_records_break_the_chain_at_the_first(ledger: LedgerDB) -> None:
    first, seq = _middle(ledger, RecordType.COMMAND)
    rows = ledger.records()
    second = next(r[0] for r in rows[first + 1:] if r[2] == RecordType.COMMAND)
    ledger.drop_triggers()
    for a, b in ((first, second), (second, first)):
        ledger.execute("UPDATE ledger_record SET payload = :p, leaf_hash = :h WHERE idx = :i",
                       {"p": rows[b][3], "h": rows[b][4], "i": a})
    report = _failure(ledger)
    assert report.failure.startswith(f"record {first} (seq {seq}): hash chain broken")


def test_swapped_sequence_numbers_are_named_at_the_first_record(ledger: LedgerDB) -> None:
    first, seq = _middle(ledger, RecordType.COMMAND)
    rows = ledger.records()
    second, seq2 = next((r[0], r[1]) for r in rows[first + 1:] if r[2] == RecordType.COMMAND)
    ledger.drop_triggers()
    ledger.execute("UPDATE ledger_record SET seq = :s WHERE idx = :i", [{"s": seq2, "i": first}, {"s": seq, "i": second}])
    report = _failure(ledger)
    assert report.failure == f"record {first} (seq {seq2}): sequence column differs from the record's own ({seq})"


def test_a_truncated_tail_is_caught_by_the_checkpoint_that_covered_it(ledger: LedgerDB) -> None:
    size = len(ledger.records())
    ledger.drop_triggers()
    ledger.execute("DELETE FROM ledger_record WHERE idx >= :s", {"s": size - 5})
    report = _failure(ledger)
    assert report.failure == (f"checkpoint at tree size {size} covers records {size - 5}..{size - 1}, "
                              "which are missing (tail truncated)")


def _truncate_to(db: LedgerDB, size: int) -> None:
    """Cut the ledger back to ``size`` records, with everything that referred to what was cut."""
    db.drop_triggers()
    db.execute("DELETE FROM ledger_record WHERE idx >= :s", {"s": size})
    db.execute("DELETE FROM ledger_checkpoint WHERE tree_size > :s", {"s": size})
    stale = [{"lv": r.level, "ix": r.node_index} for r in db.query("SELECT level, node_index FROM ledger_node")
             if (r.node_index + 1) << r.level > size]
    if stale:  # nothing to delete when ``size`` ends on a complete subtree
        db.execute("DELETE FROM ledger_node WHERE level = :lv AND node_index = :ix", stale)


def test_a_truncated_tail_with_its_checkpoints_is_caught_only_by_an_external_anchor(ledger: LedgerDB) -> None:
    anchor = _latest_note(ledger)  # what a regulator or witness kept from before the attack
    size = len(ledger.records())
    earlier = _checkpoint_sizes(ledger)[-3]
    _truncate_to(ledger, earlier)
    alone = _verify(ledger)
    assert alone.ok and alone.records == earlier, "a clean prefix is a valid ledger on its own"
    report = _failure(ledger, [anchor])
    assert report.failure == (f"external checkpoint at tree size {size}: the ledger has only {earlier} records "
                              "(tail truncated)")


def test_a_record_appended_after_the_last_checkpoint_is_reported_as_unsigned(ledger: LedgerDB) -> None:
    """The limit of what the database alone can show: records after the last checkpoint carry no
    signature yet (after a crash that is normal), so a well-formed forged tail (here a halt that
    never happened) verifies, with a warning that it is not covered by a signature; only the next
    checkpoint or an anchor can speak for it."""
    rows = ledger.records()
    size, last_seq, last_link = len(rows), rows[-1][1], rows[-1][5]
    ts = _hub_time(rows[-1][3]) + 1
    payload = encode_detail(RecordType.ADMIN, last_seq + 1, ts, ts, "operator", "", canonical_json(
        {"action": "halt", "scope": "AAPL", "symbol": "AAPL", "asset_class": 0}))
    leaf = leaf_hash(payload)
    tree = CompactRange()
    for r in rows:
        tree.append(r[4])
    nodes = [{"lv": lv, "ix": ix, "h": h} for lv, ix, h in tree.append(leaf) if lv >= NODE_FLOOR]
    ledger.drop_triggers()
    ledger.execute("INSERT INTO ledger_record (idx, seq, record_type, hub_time_ns, payload, leaf_hash, chain_hash) "
                   "VALUES (:i, :s, :t, :ts, :p, :l, :c)",
                   {"i": size, "s": last_seq + 1, "t": RecordType.ADMIN, "ts": ts, "p": payload, "l": leaf,
                    "c": hashlib.sha256(CHAIN_TAG + last_link + leaf).digest()})
    if nodes:
        ledger.execute("INSERT INTO ledger_node (level, node_index, hash) VALUES (:lv, :ix, :h)", nodes)
    report = _verify(ledger)
    assert report.ok, report.failure
    assert report.records == size + 1
    assert report.warnings == ["1 records after the last checkpoint are not yet covered by a signature"]


# -- self-consistent rewrites: only keys and anchors can tell ---------------------------------------


def test_a_rewritten_suffix_resigned_with_another_key_fails_on_the_pinned_key(ledger: LedgerDB) -> None:
    start, _ = _middle(ledger, RecordType.COMMAND)
    first_resigned = _rewrite_from(ledger, start, _other_signer())
    report = _failure(ledger)
    assert report.failure.startswith(f"checkpoint at tree size {first_resigned}: signature does not verify "
                                     "with the pinned key")
    assert report.records == first_resigned, "the records themselves are consistent: hashes, chain, nodes"


def test_a_rewritten_suffix_resigned_with_the_hub_key_fails_on_an_anchor_kept_earlier(ledger: LedgerDB) -> None:
    anchor = _latest_note(ledger)
    size = len(ledger.records())
    start, _ = _middle(ledger, RecordType.COMMAND)
    _rewrite_from(ledger, start, ledger.signer)  # the attacker holds the hub's signing key
    alone = _verify(ledger)
    assert alone.ok, "with the key stolen, the rewrite is consistent: this is what anchors are for"
    report = _failure(ledger, [anchor])
    assert report.failure == (f"external checkpoint at tree size {size}: root differs from the ledger "
                              "(history rewritten since it was published)")


def test_an_anchor_signed_by_another_key_is_refused(ledger: LedgerDB) -> None:
    row = ledger.query("SELECT tree_size, root_hash, state_digest, hub_time_ns FROM ledger_checkpoint "
                       "ORDER BY tree_size DESC LIMIT 1")[0]
    forged = _other_signer().sign(Checkpoint(ORIGIN, row.tree_size, bytes(row.root_hash), bytes(row.state_digest),
                                             row.hub_time_ns)).note
    report = _failure(ledger, [forged], reads_records=False)  # refused before any record is read
    assert report.failure.startswith("external checkpoint does not verify with the pinned key")


# -- checkpoints and nodes --------------------------------------------------------------------------


def _middle_checkpoint(db: LedgerDB):
    sizes = _checkpoint_sizes(db)
    size = sizes[len(sizes) // 2]
    return db.query("SELECT * FROM ledger_checkpoint WHERE tree_size = :s", {"s": size})[0]


def test_an_altered_signature_is_named_by_checkpoint(ledger: LedgerDB) -> None:
    cp = _middle_checkpoint(ledger)
    body, sig_line = cp.note.split("\n\n")
    prefix, sig = sig_line.rsplit(" ", 1)
    pos = len(sig) // 2
    altered = sig[:pos] + ("A" if sig[pos] != "A" else "B") + sig[pos + 1:]
    ledger.drop_triggers()
    ledger.execute("UPDATE ledger_checkpoint SET note = :n WHERE tree_size = :s",
                   {"n": f"{body}\n\n{prefix} {altered}", "s": cp.tree_size})
    report = _failure(ledger)
    assert report.failure.startswith(f"checkpoint at tree size {cp.tree_size}: signature does not verify "
                                     "with the pinned key")
    assert report.records == cp.tree_size


def test_a_signature_replaced_by_another_keys_is_named_by_checkpoint(ledger: LedgerDB) -> None:
    cp = _middle_checkpoint(ledger)
    body = cp.note.split("\n\n")[0] + "\n"
    assert Checkpoint.parse(body).tree_size == cp.tree_size
    ledger.drop_triggers()
    ledger.execute("UPDATE ledger_checkpoint SET note = :n WHERE tree_size = :s",
                   {"n": body + "\n" + _other_signer().signature_line(body), "s": cp.tree_size})
    report = _failure(ledger)
    assert report.failure.startswith(f"checkpoint at tree size {cp.tree_size}: signature does not verify "
                                     "with the pinned key")


@pytest.mark.parametrize(("column", "message"), [
    ("root_hash", "stored root does not match the records"),
    ("state_digest", "columns differ from the signed note"),
])
def test_an_altered_checkpoint_column_is_named_by_checkpoint(ledger: LedgerDB, column: str, message: str) -> None:
    cp = _middle_checkpoint(ledger)
    ledger.drop_triggers()
    ledger.execute(f"UPDATE ledger_checkpoint SET {column} = :v WHERE tree_size = :s",
                   {"v": _flip(bytes(getattr(cp, column)), 0), "s": cp.tree_size})
    report = _failure(ledger)
    assert report.failure.startswith(f"checkpoint at tree size {cp.tree_size}: {message}")


def test_an_altered_tree_node_is_named_by_level_and_index(ledger: LedgerDB) -> None:
    node = ledger.query("SELECT level, node_index, hash FROM ledger_node WHERE level = 4 ORDER BY node_index")[2]
    ledger.drop_triggers()
    ledger.execute("UPDATE ledger_node SET hash = :h WHERE level = :lv AND node_index = :ix",
                   {"h": _flip(bytes(node.hash), 7), "lv": node.level, "ix": node.node_index})
    report = _failure(ledger)
    assert report.failure == f"tree node (level {node.level}, index {node.node_index}) is wrong: proofs would lie"


def test_a_deleted_tree_node_is_reported_missing(ledger: LedgerDB) -> None:
    ledger.drop_triggers()
    ledger.execute("DELETE FROM ledger_node WHERE level = 4 AND node_index = 5")
    report = _failure(ledger)
    assert report.failure == "1 tree nodes are missing"


# -- the CLI ----------------------------------------------------------------------------------------


def _hub(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def _ledger_args(db: LedgerDB) -> list[str]:
    return ["--data-dir", str(db.data_dir)] + (["--url", db.cli_url] if db.is_pg else [])


def test_cli_verify_passes_an_untouched_ledger_and_fails_an_altered_one(ledger: LedgerDB) -> None:
    size = len(ledger.records())
    checkpoints = len(_checkpoint_sizes(ledger))
    ok = _hub("ledger", "verify", *_ledger_args(ledger))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"ledger OK: {size} records, {checkpoints} signed checkpoints, 0 external anchors")

    idx, seq = _middle(ledger, RecordType.EVENT)
    ledger.drop_triggers()
    ledger.execute("UPDATE ledger_record SET payload = :p WHERE idx = :i",
                   {"p": _flip(ledger.records()[idx][3], 50), "i": idx})
    bad = _hub("ledger", "verify", *_ledger_args(ledger))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad.stderr.startswith(f"LEDGER VERIFICATION FAILED after {idx} good records: record {idx} (seq {seq}): "
                                 "payload does not match its leaf hash")


def _hub_main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """The same CLI, in this process (no interpreter start-up)."""
    capsys.readouterr()
    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_verify_with_an_exported_anchor_fails_a_ledger_cut_back_to_an_earlier_checkpoint(
        ledger: LedgerDB, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, note, err = _hub_main(capsys, "ledger", "checkpoint", *_ledger_args(ledger))
    assert code == 0, err
    assert note == _latest_note(ledger)
    anchor = tmp_path / "anchor.note"
    anchor.write_text(note)
    size = len(ledger.records())
    earlier = _checkpoint_sizes(ledger)[-2]
    _truncate_to(ledger, earlier)
    code, out, err = _hub_main(capsys, "ledger", "verify", *_ledger_args(ledger))
    assert code == 0 and out.startswith(f"ledger OK: {earlier} records"), err
    code, out, err = _hub_main(capsys, "ledger", "verify", *_ledger_args(ledger), "--anchor", str(anchor))
    assert code == 1, out + err
    assert err.startswith(f"LEDGER VERIFICATION FAILED after {earlier} good records: external checkpoint at tree "
                          f"size {size}: the ledger has only {earlier} records (tail truncated)")
