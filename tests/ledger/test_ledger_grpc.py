"""The Ledger gRPC service, as a regulator uses it: signed checkpoints, records, inclusion and
consistency proofs that check out with nothing but the hub's exported public key; every other
role is refused, and a hub without a durable ledger says so."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest

from hub.config import HubConfig
from hub.core import Hub
from hub.server import run_server
from hub.v1 import ledger_pb2 as lpb
from hub.v1 import ledger_pb2_grpc as lpb_grpc
from ledger.merkle import verify_consistency, verify_inclusion
from ledger.proofs import ProofError, check_bundle
from ledger.records import decode
from ledger.signing import ED25519_PUB_FILE, Verifier, load_verifier
from tests.ledger.conftest import LedgerDB, drive_mixed

HOST = "127.0.0.1"
RPCS = {
    "GetCheckpoint": lpb.CheckpointRequest(),
    "GetRecord": lpb.RecordRequest(index=0),
    "GetInclusionProof": lpb.InclusionProofRequest(index=0),
    "GetConsistencyProof": lpb.ConsistencyProofRequest(from_size=1),
}


class Regulator:
    """A Ledger stub with a bearer token, and the pinned key read from the exported file only."""

    def __init__(self, port: int, token: str = "dev-regulator", public_key_file=None) -> None:
        self.port = port
        self.channel = grpc.insecure_channel(f"{HOST}:{port}")
        self.stub = lpb_grpc.LedgerStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.verifier: Verifier | None = load_verifier(public_key_file) if public_key_file else None

    def call(self, rpc: str, request):
        return getattr(self.stub, rpc)(request, metadata=self.metadata, timeout=10)

    def signed_root(self, cp: lpb.SignedCheckpoint) -> bytes:
        signed = self.verifier.verify(cp.note)  # raises unless signed by the pinned key
        assert signed.tree_size == cp.tree_size
        return signed.root

    def close(self) -> None:
        self.channel.close()


def _close_block(hub: Hub) -> None:
    with hub._lock:
        hub.journal.checkpoint(hub.state_digest_bytes(), hub.clock())
    hub.journal.flush()


@pytest.fixture
def served(ledger_db: LedgerDB) -> Iterator[tuple[LedgerDB, Hub, Regulator]]:
    config = HubConfig.default().with_network(host=HOST, port=0)
    with run_server(config, ledger_db.journal(checkpoint_every=20), grace=0.5) as (hub, port):
        drive_mixed(hub, 6)
        _close_block(hub)
        regulator = Regulator(port, public_key_file=ledger_db.data_dir / ED25519_PUB_FILE)
        yield ledger_db, hub, regulator
        regulator.close()


def _sizes(db: LedgerDB) -> list[int]:
    return [r.tree_size for r in db.query("SELECT tree_size FROM ledger_checkpoint ORDER BY tree_size")]


def test_regulator_gets_the_latest_checkpoint_signed_by_the_pinned_key(served) -> None:
    db, hub, reg = served
    cp = reg.call("GetCheckpoint", lpb.CheckpointRequest())
    signed = reg.verifier.verify(cp.note)
    assert cp.tree_size == signed.tree_size == len(db.records()) == _sizes(db)[-1]
    assert (cp.root_hash, cp.state_digest, cp.hub_time_ns) == (signed.root, signed.state_digest, signed.hub_time_ns)
    assert cp.state_digest == hub.state_digest_bytes()
    assert cp.last_sequence == hub.last_sequence
    older = reg.call("GetCheckpoint", lpb.CheckpointRequest(tree_size=_sizes(db)[1]))
    assert reg.verifier.verify(older.note).tree_size == older.tree_size == _sizes(db)[1]


def test_records_and_inclusion_proofs_verify_with_only_the_public_key(served) -> None:
    db, _, reg = served
    latest = reg.call("GetCheckpoint", lpb.CheckpointRequest())
    root = reg.signed_root(latest)
    size = latest.tree_size
    for index in sorted({0, 1, size // 3, size // 2, size - 2, size - 1} | set(range(0, size, 23))):
        record = reg.call("GetRecord", lpb.RecordRequest(index=index))
        leaf = hashlib.sha256(b"\x00" + record.payload).digest()
        assert record.leaf_hash == leaf
        assert decode(record.payload).seq == record.sequence
        proof = reg.call("GetInclusionProof", lpb.InclusionProofRequest(index=index))
        assert (proof.index, proof.tree_size, proof.leaf_hash) == (index, size, leaf)
        assert proof.checkpoint.note == latest.note, "the proof names the checkpoint it is against"
        assert verify_inclusion(index, size, leaf, list(proof.path), root), index
        assert not verify_inclusion(index, size, hashlib.sha256(b"\x00" + record.payload + b"x").digest(),
                                    list(proof.path), root)
        bundle = {"type": "inclusion", "index": index, "tree_size": size, "sequence": record.sequence,
                  "payload": record.payload.hex(), "path": [h.hex() for h in proof.path],
                  "checkpoint": proof.checkpoint.note}
        assert check_bundle(bundle, reg.verifier).startswith(f"record {index} (seq {record.sequence}) is in")
    with pytest.raises(ProofError, match="is NOT in the signed tree"):
        check_bundle(bundle | {"payload": (record.payload[:-1] + bytes([record.payload[-1] ^ 1])).hex()}, reg.verifier)
    # against an older signed tree
    older_size = _sizes(db)[2]
    proof = reg.call("GetInclusionProof", lpb.InclusionProofRequest(index=older_size - 1, tree_size=older_size))
    leaf = hashlib.sha256(b"\x00" + reg.call("GetRecord", lpb.RecordRequest(index=older_size - 1)).payload).digest()
    assert verify_inclusion(older_size - 1, older_size, leaf, list(proof.path), reg.signed_root(proof.checkpoint))


def test_consistency_proofs_show_the_signed_log_only_grew(served) -> None:
    db, hub, reg = served
    sizes = _sizes(db)
    latest = reg.call("GetCheckpoint", lpb.CheckpointRequest())
    for older_size in sizes[:-1]:
        older = reg.call("GetCheckpoint", lpb.CheckpointRequest(tree_size=older_size))
        proof = reg.call("GetConsistencyProof", lpb.ConsistencyProofRequest(from_size=older_size))
        assert (proof.from_size, proof.to_size) == (older_size, latest.tree_size)
        assert verify_consistency(older_size, latest.tree_size, reg.signed_root(older), reg.signed_root(latest),
                                  list(proof.path)), older_size
        bundle = {"type": "consistency", "from_size": older_size, "to_size": latest.tree_size,
                  "path": [h.hex() for h in proof.path], "from_checkpoint": older.note, "to_checkpoint": latest.note}
        assert check_bundle(bundle, reg.verifier).startswith(f"the signed tree of size {latest.tree_size} extends")
    with pytest.raises(ProofError, match="does NOT extend"):
        check_bundle(bundle | {"from_checkpoint": reg.call("GetCheckpoint", lpb.CheckpointRequest(
            tree_size=sizes[0])).note, "from_size": sizes[0]}, reg.verifier)
    # the regulator keeps the checkpoint it saw; later, the log it is shown must extend it
    drive_mixed(hub, 2, seed=3)
    _close_block(hub)
    newer = reg.call("GetCheckpoint", lpb.CheckpointRequest())
    assert newer.tree_size > latest.tree_size
    proof = reg.call("GetConsistencyProof", lpb.ConsistencyProofRequest(from_size=latest.tree_size,
                                                                         to_size=newer.tree_size))
    assert verify_consistency(latest.tree_size, newer.tree_size, reg.signed_root(latest), reg.signed_root(newer),
                              list(proof.path))


def test_requests_beyond_the_ledger_get_not_found_or_out_of_range(served) -> None:
    db, _, reg = served
    size = len(db.records())
    expected = [
        ("GetRecord", lpb.RecordRequest(index=size), grpc.StatusCode.NOT_FOUND),
        ("GetRecord", lpb.RecordRequest(index=2**64 - 1), grpc.StatusCode.NOT_FOUND),
        ("GetCheckpoint", lpb.CheckpointRequest(tree_size=size + 1), grpc.StatusCode.NOT_FOUND),
        ("GetInclusionProof", lpb.InclusionProofRequest(index=size), grpc.StatusCode.OUT_OF_RANGE),
        ("GetInclusionProof", lpb.InclusionProofRequest(index=0, tree_size=size + 5), grpc.StatusCode.OUT_OF_RANGE),
        ("GetConsistencyProof", lpb.ConsistencyProofRequest(from_size=0), grpc.StatusCode.OUT_OF_RANGE),
        ("GetConsistencyProof", lpb.ConsistencyProofRequest(from_size=size + 1), grpc.StatusCode.OUT_OF_RANGE),
    ]
    for rpc, request, code in expected:
        with pytest.raises(grpc.RpcError) as caught:
            reg.call(rpc, request)
        assert caught.value.code() == code, (rpc, request, caught.value.details())


@pytest.mark.parametrize("token", ["dev-scalper-1", "dev-inst-1", "dev-mm-1", "dev-operator"])
def test_participant_and_operator_tokens_get_permission_denied(served, token: str) -> None:
    _, _, reg = served
    other = Regulator(reg.port, token=token)
    try:
        for rpc, request in RPCS.items():
            with pytest.raises(grpc.RpcError) as caught:
                other.call(rpc, request)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, rpc
    finally:
        other.close()


def test_calls_without_a_valid_token_are_unauthenticated(served) -> None:
    _, _, reg = served
    for token in ("", "dev-nobody"):
        other = Regulator(reg.port, token=token)
        try:
            for rpc, request in RPCS.items():
                with pytest.raises(grpc.RpcError) as caught:
                    other.call(rpc, request)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, (token, rpc)
        finally:
            other.close()


def test_a_hub_without_a_durable_ledger_answers_failed_precondition() -> None:
    with run_server(HubConfig.default().with_network(host=HOST, port=0), grace=0.5) as (_, port):
        reg = Regulator(port)
        try:
            for rpc, request in RPCS.items():
                with pytest.raises(grpc.RpcError) as caught:
                    reg.call(rpc, request)
                assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, rpc
                assert "without a durable ledger" in caught.value.details()
        finally:
            reg.close()
