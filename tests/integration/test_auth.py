"""Item 3: no token, a bad token or the wrong role is refused with the proper status code on
unary and streaming RPCs, and nothing is booked; health and reflection need no token."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hub.v1 import account_pb2 as apb
from hub.v1 import admin_pb2 as adpb
from hub.v1 import common_pb2 as cpb
from hub.v1 import ledger_pb2 as lpb
from hub.v1 import market_data_pb2 as mdpb
from hub.v1 import order_entry_pb2 as oepb
from tests.integration.support import TICK, P, engine_digests, engine_orders

UNAUTH, DENIED = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED

NO_TOKEN: tuple = ()
BAD_TOKENS = {
    "wrong token": (("authorization", "Bearer dev-nobody"),),
    "token of another format": (("authorization", "Bearer " + "0" * 64),),
    "basic scheme": (("authorization", "Basic dev-scalper-1"),),
    "scheme only": (("authorization", "Bearer"),),
    "token without scheme": (("authorization", "dev-scalper-1"),),
    "empty": (("authorization", ""),),
    "other header": (("x-token", "Bearer dev-scalper-1"),),
}


def _md(participant: str) -> tuple:
    return (("authorization", f"Bearer dev-{participant}"),)


def _new_order(coid: str) -> oepb.NewOrderRequest:
    return oepb.NewOrderRequest(client_order_id=coid, symbol="AAPL", side=cpb.BUY, order_type=cpb.LIMIT,
                                time_in_force=cpb.GTC, price=P + 5 * TICK, quantity=10)


def _calls(resting_order_id: int) -> dict:
    """Every RPC of the contract as (kind, method path, request class, request) with requests that
    would book, cancel, halt or expire something if they were let through."""
    quote = oepb.Quote(symbol="MSFT", bid_price=419_0000, bid_quantity=5, ask_price=421_0000, ask_quantity=5)
    return {
        "SubmitOrder": ("unary", "/hub.v1.OrderEntry/SubmitOrder", _new_order("x-1"), oepb.OrderAck),
        "CancelOrder": ("unary", "/hub.v1.OrderEntry/CancelOrder",
                        oepb.CancelRequest(symbol="AAPL", order_id=resting_order_id), oepb.OrderAck),
        "ReplaceOrder": ("unary", "/hub.v1.OrderEntry/ReplaceOrder",
                         oepb.ReplaceRequest(symbol="AAPL", order_id=resting_order_id, price=P, quantity=1),
                         oepb.OrderAck),
        "MassCancel": ("unary", "/hub.v1.OrderEntry/MassCancel", oepb.MassCancelRequest(), oepb.MassCancelAck),
        "MassQuote": ("unary", "/hub.v1.OrderEntry/MassQuote", oepb.MassQuoteRequest(quotes=[quote]),
                      oepb.MassQuoteAck),
        "Session": ("bidi", "/hub.v1.OrderEntry/Session", oepb.SessionRequest(request_id=1, new_order=_new_order("x-2")),
                    oepb.SessionResponse),
        "GetOpenOrders": ("unary", "/hub.v1.Account/GetOpenOrders", apb.OpenOrdersRequest(), apb.OpenOrders),
        "GetExecutions": ("unary", "/hub.v1.Account/GetExecutions", apb.ExecutionsRequest(), apb.Executions),
        "GetPositions": ("unary", "/hub.v1.Account/GetPositions", apb.PositionsRequest(), apb.Positions),
        "DropCopy": ("server", "/hub.v1.Account/DropCopy", apb.DropCopyRequest(), cpb.ExecutionReport),
        "Halt": ("unary", "/hub.v1.Admin/Halt", adpb.TradingScope(), adpb.AdminAck),
        "Resume": ("unary", "/hub.v1.Admin/Resume", adpb.TradingScope(), adpb.AdminAck),
        "EndOfSession": ("unary", "/hub.v1.Admin/EndOfSession", adpb.TradingScope(), adpb.AdminAck),
        "GetStatus": ("unary", "/hub.v1.Admin/GetStatus", adpb.StatusRequest(), adpb.HubStatus),
        "Subscribe": ("server", "/hub.v1.MarketData/Subscribe", mdpb.SubscribeRequest(), mdpb.MarketDataUpdate),
        "GetSnapshot": ("unary", "/hub.v1.MarketData/GetSnapshot", mdpb.SnapshotRequest(symbol="AAPL"),
                        mdpb.BookSnapshot),
        "ListInstruments": ("unary", "/hub.v1.MarketData/ListInstruments", mdpb.ListInstrumentsRequest(),
                            mdpb.InstrumentList),
        "GetCheckpoint": ("unary", "/hub.v1.Ledger/GetCheckpoint", lpb.CheckpointRequest(), lpb.SignedCheckpoint),
    }


def _invoke(channel: grpc.Channel, kind: str, path: str, request, reply_cls, metadata) -> grpc.StatusCode:
    """Call one RPC; the status code it ends with (OK if it answered / streamed something)."""
    serialize, deserialize = type(request).SerializeToString, reply_cls.FromString
    try:
        if kind == "unary":
            channel.unary_unary(path, request_serializer=serialize, response_deserializer=deserialize)(
                request, metadata=metadata, timeout=5)
        elif kind == "server":
            call = channel.unary_stream(path, request_serializer=serialize, response_deserializer=deserialize)(
                request, metadata=metadata, timeout=5)
            try:
                next(call)  # an accepted stream: Subscribe sends snapshots at once
            finally:
                call.cancel()
        else:
            call = channel.stream_stream(path, request_serializer=serialize, response_deserializer=deserialize)(
                iter([request]), metadata=metadata, timeout=5)
            try:
                next(call)
            finally:
                call.cancel()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# Roles: who may call what. OrderEntry / Account: participants; Admin: operator; MarketData: anyone;
# Ledger: the regulator.
ROLE_EXPECTATIONS = {
    "operator": {"OrderEntry": DENIED, "Account": DENIED, "Admin": None, "MarketData": None, "Ledger": DENIED},
    "regulator": {"OrderEntry": DENIED, "Account": DENIED, "Admin": DENIED, "MarketData": None, "Ledger": None},
    "scalper-1": {"OrderEntry": None, "Account": None, "Admin": DENIED, "MarketData": None, "Ledger": DENIED},
    "mm-1": {"OrderEntry": None, "Account": None, "Admin": DENIED, "MarketData": None, "Ledger": DENIED},
}


@pytest.fixture
def booked(server, connect):
    """A hub with a resting order and a trade, so that a leak would change something."""
    c1, c2 = connect("scalper-1"), connect("scalper-2")
    resting = c1.submit("AAPL", "buy", 100, P)
    assert resting.accepted
    assert c2.submit("AAPL", "sell", 10, P).accepted
    return resting.order_id


def _state(hub) -> tuple:
    return (hub.state_digest(), hub.last_sequence, engine_digests(hub), engine_orders(hub, "AAPL"),
            engine_orders(hub, "MSFT"), hub.status()["sessions"])


def test_unauthenticated_and_unauthorized_calls_book_nothing(server, booked) -> None:
    hub = server.hub
    before = _state(hub)
    calls = _calls(booked)
    failures = []
    with grpc.insecure_channel(server.target) as channel:
        for name, (kind, path, request, reply) in calls.items():
            for label, metadata in [("no token", NO_TOKEN), *BAD_TOKENS.items()]:
                code = _invoke(channel, kind, path, request, reply, metadata)
                if code != UNAUTH:
                    failures.append((name, label, code))
        # a token for a non-participant role, or a participant on operator calls
        for participant, rules in ROLE_EXPECTATIONS.items():
            for name, (kind, path, request, reply) in calls.items():
                service = path.split("/")[1].split(".")[-1]
                expected = rules[service]
                if expected is None:
                    continue
                code = _invoke(channel, kind, path, request, reply, _md(participant))
                if code != expected:
                    failures.append((name, participant, code))
        # unknown methods: an unknown service is not served, with or without a token; an unknown
        # method of a known service is checked like the service (no hint without a token)
        unknown = [("/hub.v1.Secret/Do", NO_TOKEN, grpc.StatusCode.UNIMPLEMENTED),
                   ("/hub.v1.Secret/Do", _md("operator"), grpc.StatusCode.UNIMPLEMENTED),
                   ("/hub.v1.Admin/Shutdown", NO_TOKEN, UNAUTH),
                   ("/hub.v1.Admin/Shutdown", _md("scalper-1"), DENIED),
                   ("/hub.v1.Admin/Shutdown", _md("operator"), grpc.StatusCode.UNIMPLEMENTED)]
        for path, metadata, expected in unknown:
            code = _invoke(channel, "unary", path, adpb.StatusRequest(), adpb.AdminAck, metadata)
            if code != expected:
                failures.append((path, metadata, code))
    assert failures == []
    assert _state(hub) == before, "a refused call changed the hub"


def test_allowed_roles_are_served(server, booked) -> None:
    """The positive side of the role table (so the refusals above are not just a broken server)."""
    hub = server.hub
    calls = _calls(booked)
    reads = {"GetOpenOrders", "GetExecutions", "GetPositions", "DropCopy", "GetStatus", "Subscribe", "GetSnapshot",
             "ListInstruments"}
    with grpc.insecure_channel(server.target) as channel:
        for participant, rules in ROLE_EXPECTATIONS.items():
            for name in sorted(reads):
                kind, path, request, reply = calls[name]
                if rules[path.split("/")[1].split(".")[-1]] is not None:
                    continue
                if name == "DropCopy":
                    continue  # sends nothing until something happens; covered by the isolation tests
                assert _invoke(channel, kind, path, request, reply, _md(participant)) == grpc.StatusCode.OK, (
                    name, participant)
        # case-insensitive scheme and surrounding blanks are tolerated
        snap = _invoke(channel, "unary", "/hub.v1.MarketData/GetSnapshot", mdpb.SnapshotRequest(symbol="AAPL"),
                       mdpb.BookSnapshot, (("authorization", "bearer   dev-regulator  "),))
        assert snap == grpc.StatusCode.OK
    assert hub.last_sequence == 2


def test_health_and_reflection_need_no_token(server) -> None:
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "hub.v1.OrderEntry", "hub.v1.MarketData", "hub.v1.Account", "hub.v1.Admin"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as info:
            health.Check(health_pb2.HealthCheckRequest(service="hub.v1.Nope"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(reflection.ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="hub.v1.OrderEntry"),
        ]), timeout=5))
        services = {s.name for s in replies[0].list_services_response.service}
        assert {"hub.v1.OrderEntry", "hub.v1.MarketData", "hub.v1.Account", "hub.v1.Admin",
                "grpc.health.v1.Health"} <= services
        files = replies[1].file_descriptor_response.file_descriptor_proto
        assert files, replies[1]
        names = {descriptor_pb2.FileDescriptorProto.FromString(f).name for f in files}
        assert "hub/v1/order_entry.proto" in names
