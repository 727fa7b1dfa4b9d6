"""Proof bundles: self-contained JSON a regulator can check with only the hub's public key.

An inclusion bundle carries the record, its audit path and the signed checkpoint of the tree it
is proven against; a consistency bundle carries the path and both signed checkpoints. Checking a
bundle verifies the signatures first, then the Merkle proof against the signed roots.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ledger.merkle import verify_consistency, verify_inclusion
from ledger.signing import SignatureError, Verifier
from ledger.store import LedgerStore


class ProofError(Exception):
    """A bundle that does not prove what it claims."""


def inclusion_bundle(store: LedgerStore, index: int, tree_size: int = 0) -> dict[str, Any]:
    checkpoints = {cp.tree_size: cp for cp in store.checkpoints()}
    if not checkpoints:
        raise LookupError("the ledger has no checkpoint yet")
    size = tree_size or max(checkpoints)
    if size not in checkpoints:
        raise LookupError(f"no signed checkpoint at tree size {size}; sizes end at {max(checkpoints)}")
    found = store.leaf(index)
    if found is None:
        raise LookupError(f"no record {index}")
    seq, payload, _ = found
    return {"type": "inclusion", "index": index, "tree_size": size, "sequence": seq, "payload": payload.hex(),
            "path": [h.hex() for h in store.inclusion_proof(index, size)], "checkpoint": checkpoints[size].note}


def consistency_bundle(store: LedgerStore, from_size: int, to_size: int = 0) -> dict[str, Any]:
    checkpoints = {cp.tree_size: cp for cp in store.checkpoints()}
    if not checkpoints:
        raise LookupError("the ledger has no checkpoint yet")
    to_size = to_size or max(checkpoints)
    for size in (from_size, to_size):
        if size not in checkpoints:
            raise LookupError(f"no signed checkpoint at tree size {size}")
    return {"type": "consistency", "from_size": from_size, "to_size": to_size,
            "path": [h.hex() for h in store.consistency_proof(from_size, to_size)],
            "from_checkpoint": checkpoints[from_size].note, "to_checkpoint": checkpoints[to_size].note}


def _signed_root(verifier: Verifier, note: str, size: int) -> bytes:
    try:
        cp = verifier.verify(note)
    except SignatureError as exc:
        raise ProofError(f"checkpoint signature does not verify: {exc}") from None
    if cp.tree_size != size:
        raise ProofError(f"the checkpoint is for tree size {cp.tree_size}, not {size}")
    return cp.root


def check_bundle(bundle: dict[str, Any], verifier: Verifier) -> str:
    """Verify a bundle; returns a one-line description, raises ProofError otherwise."""
    try:
        kind = bundle["type"]
        if kind == "inclusion":
            root = _signed_root(verifier, bundle["checkpoint"], bundle["tree_size"])
            leaf = hashlib.sha256(b"\x00" + bytes.fromhex(bundle["payload"])).digest()
            path = [bytes.fromhex(h) for h in bundle["path"]]
            if not verify_inclusion(bundle["index"], bundle["tree_size"], leaf, path, root):
                raise ProofError(f"record {bundle['index']} is NOT in the signed tree of size {bundle['tree_size']}")
            return f"record {bundle['index']} (seq {bundle['sequence']}) is in the signed tree of size {bundle['tree_size']}"
        if kind == "consistency":
            root1 = _signed_root(verifier, bundle["from_checkpoint"], bundle["from_size"])
            root2 = _signed_root(verifier, bundle["to_checkpoint"], bundle["to_size"])
            path = [bytes.fromhex(h) for h in bundle["path"]]
            if not verify_consistency(bundle["from_size"], bundle["to_size"], root1, root2, path):
                raise ProofError(f"the tree of size {bundle['to_size']} does NOT extend the one of size "
                                 f"{bundle['from_size']}")
            return f"the signed tree of size {bundle['to_size']} extends the signed tree of size {bundle['from_size']}"
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofError(f"malformed proof bundle: {exc}") from None
    raise ProofError(f"unknown proof type {bundle.get('type')!r}")
