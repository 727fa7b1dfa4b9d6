"""The Ledger gRPC service: checkpoints, records and proofs for the regulator role. Every call
reads the database, so it runs on the gateway's worker pool."""

from __future__ import annotations

import grpc

from hub.auth import Authenticator
from hub.core import Hub
from hub.loop_bridge import Offload
from hub.service import RpcAbort, on_pool
from hub.v1 import ledger_pb2 as lpb
from hub.v1 import ledger_pb2_grpc as lpb_grpc
from ledger.store import LedgerStore, StoredCheckpoint

_INT64_MAX = 2**63 - 1


def _signed(cp: StoredCheckpoint) -> lpb.SignedCheckpoint:
    return lpb.SignedCheckpoint(tree_size=cp.tree_size, root_hash=cp.root_hash, state_digest=cp.state_digest,
                                hub_time_ns=cp.hub_time_ns, last_sequence=cp.last_seq, note=cp.note)


class LedgerService(lpb_grpc.LedgerServicer):
    def __init__(self, hub: Hub, auth: Authenticator, offload: Offload) -> None:
        self.hub = hub
        self.auth = auth
        self.offload = offload

    def _store(self) -> LedgerStore:
        store = self.hub.journal
        if not isinstance(store, LedgerStore):
            raise RpcAbort(grpc.StatusCode.FAILED_PRECONDITION, "this hub runs without a durable ledger")
        store.settle_reads()  # every acknowledged record readable (an ack log inserts them a moment later)
        return store

    def _checkpoint(self, store: LedgerStore, size: int) -> StoredCheckpoint:
        checkpoints = store.checkpoints()
        if not checkpoints:
            raise RpcAbort(grpc.StatusCode.NOT_FOUND, "no checkpoint yet")
        if size == 0:
            return checkpoints[-1]
        found = next((cp for cp in checkpoints if cp.tree_size == size), None)
        if found is None:
            raise RpcAbort(grpc.StatusCode.NOT_FOUND, f"no checkpoint at tree size {size}")
        return found

    @on_pool
    def GetCheckpoint(self, who, request):
        return _signed(self._checkpoint(self._store(), request.tree_size))

    @on_pool
    def GetRecord(self, who, request):
        store = self._store()
        found = store.leaf(request.index) if request.index <= _INT64_MAX else None
        if found is None:
            raise RpcAbort(grpc.StatusCode.NOT_FOUND, f"no record {request.index}")
        seq, payload, leaf = found
        return lpb.LedgerRecord(index=request.index, sequence=seq, payload=payload, leaf_hash=leaf)

    @on_pool
    def GetInclusionProof(self, who, request):
        store = self._store()
        checkpoint = None
        size = request.tree_size
        if size == 0:
            checkpoint = self._checkpoint(store, 0)
            size = checkpoint.tree_size
        else:
            checkpoint = next((cp for cp in store.checkpoints() if cp.tree_size == size), None)
        try:
            path = store.inclusion_proof(request.index, size)
            _, _, leaf = store.leaf(request.index)
        except LookupError as exc:
            raise RpcAbort(grpc.StatusCode.OUT_OF_RANGE, str(exc)) from None
        reply = lpb.InclusionProof(index=request.index, tree_size=size, leaf_hash=leaf, path=path)
        if checkpoint is not None:
            reply.checkpoint.CopyFrom(_signed(checkpoint))
        return reply

    @on_pool
    def GetConsistencyProof(self, who, request):
        store = self._store()
        to_size = request.to_size or self._checkpoint(store, 0).tree_size
        try:
            path = store.consistency_proof(request.from_size, to_size)
        except LookupError as exc:
            raise RpcAbort(grpc.StatusCode.OUT_OF_RANGE, str(exc)) from None
        return lpb.ConsistencyProof(from_size=request.from_size, to_size=to_size, path=path)
