"""The committed generated code matches proto/, and the wire enums mirror the Python ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.risk.events import RiskReject
from hub.core import GatewayReject
from hub.fairness import FairnessReject
from hub.v1 import common_pb2 as cpb
from matching.types import AssetClass, CancelReason, OrderType, RejectReason, Side, TimeInForce

REPO = Path(__file__).resolve().parents[2]


def test_generated_code_matches_proto(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (test extra) regenerates the code")
    from hub.codegen import generate

    generated = generate(tmp_path)
    assert generated, "nothing generated"
    committed_dir = REPO / "hub" / "v1"
    names = sorted(p.name for p in generated)
    assert names == sorted(p.name for p in committed_dir.glob("*.py*")), "generated file set differs"
    for path in generated:
        assert path.read_bytes() == (committed_dir / path.name).read_bytes(), (
            f"hub/v1/{path.name} is stale or hand-edited: run python -m hub.codegen")


def _wire(enum_descriptor, prefix: str = "") -> dict[str, int]:
    return {v.name.removeprefix(prefix): v.number for v in enum_descriptor.values if v.number != 0}


def test_reject_reasons_mirror_engine_and_gateway_one_to_one():
    # Risk's UNKNOWN_INSTRUMENT (no risk reference data) is distinct from the engine's on the wire.
    risk = {("RISK_" + r.name if r.name in RejectReason.__members__ else r.name): r.value for r in RiskReject}
    expected = {r.name: r.value for r in (*RejectReason, *GatewayReject, *FairnessReject)} | risk
    assert _wire(cpb.RejectReason.DESCRIPTOR, "REJECT_") == expected


def test_cancel_reasons_and_order_enums_mirror_the_engine():
    assert _wire(cpb.CancelReason.DESCRIPTOR, "CANCEL_") == {r.name: r.value for r in CancelReason}
    assert _wire(cpb.Side.DESCRIPTOR) == {s.name: s.value for s in Side}
    assert _wire(cpb.OrderType.DESCRIPTOR) == {t.name: t.value for t in OrderType}
    assert _wire(cpb.TimeInForce.DESCRIPTOR) == {t.name: t.value for t in TimeInForce}
    assert _wire(cpb.AssetClass.DESCRIPTOR) == {a.name: a.value for a in AssetClass}
