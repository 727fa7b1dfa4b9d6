"""A bad message inside a request stream neither kills the session nor leaks a stream slot."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from hub.v1 import common_pb2 as cpb
from hub.v1 import market_data_pb2 as mdpb
from hub.v1 import market_data_pb2_grpc as mdpb_grpc
from hub.v1 import order_entry_pb2 as oepb

META = (("authorization", "Bearer dev-scalper-1"),)


def test_garbage_in_a_session_is_rejected_and_the_session_continues(server):
    first = oepb.SessionRequest(request_id=1, new_order=oepb.NewOrderRequest(symbol="NOPE")).SerializeToString()
    last = oepb.SessionRequest(request_id=3, heartbeat=oepb.Heartbeat(client_time_ns=7)).SerializeToString()
    with grpc.insecure_channel(server.target) as channel:
        replies = [oepb.SessionResponse.FromString(r) for r in channel.stream_stream("/hub.v1.OrderEntry/Session")(
            iter([first, b"\xff\xff\xff", last]), metadata=META, timeout=10)]
    assert [r.WhichOneof("body") for r in replies] == ["opened", "order_ack", "order_ack", "heartbeat"]
    assert replies[1].order_ack.reject_reason == cpb.REJECT_UNKNOWN_INSTRUMENT
    assert replies[2].order_ack.reject_reason == cpb.REJECT_MISSING_FIELD and not replies[2].order_ack.accepted
    assert replies[3].request_id == 3 and replies[3].heartbeat.client_time_ns == 7


def test_concurrent_sessions_with_garbage_do_not_exhaust_the_connection(server):
    first = oepb.SessionRequest(request_id=1, new_order=oepb.NewOrderRequest(symbol="NOPE")).SerializeToString()
    with grpc.insecure_channel(server.target) as channel:
        def run(_: int) -> grpc.StatusCode:
            try:
                for _reply in channel.stream_stream("/hub.v1.OrderEntry/Session")(
                        iter([first, b"\xff\xff\xff"]), metadata=META, timeout=10):
                    pass
                return grpc.StatusCode.OK
            except grpc.RpcError as exc:
                return exc.code()

        with ThreadPoolExecutor(32) as pool:
            codes = list(pool.map(run, range(600)))  # more than max_concurrent_streams (256)
        assert set(codes) == {grpc.StatusCode.OK}
        snapshot = mdpb_grpc.MarketDataStub(channel).GetSnapshot(mdpb.SnapshotRequest(symbol="AAPL"),
                                                                 metadata=META, timeout=10)
        assert snapshot.symbol == "AAPL"
