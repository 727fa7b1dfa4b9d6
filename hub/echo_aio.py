"""The benchmark's echo floor (``python -m hub.bench``): the gateway's server stack without the hub.

grpc.aio on one event loop, the hub's server options and its real ``AioAuthInterceptor`` (token
check and request decoding), the same method paths, request and response types as
``hub.v1.OrderEntry``, and replies shaped like the hub's (``hub.bench.EchoReplies``).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import grpc

from hub.auth import AioAuthInterceptor, Authenticator
from hub.config import HubConfig
from hub.gc_policy import GcPolicy
from hub.server import server_options
from hub.v1 import order_entry_pb2 as oepb


class AioEchoService:
    def __init__(self) -> None:
        from hub.bench import EchoReplies  # the same replies as the threaded floor

        self.replies = EchoReplies()

    async def submit(self, request: oepb.NewOrderRequest, context: grpc.aio.ServicerContext) -> oepb.OrderAck:
        return self.replies.order_ack(request)

    async def mass_quote(self, request: oepb.MassQuoteRequest,
                         context: grpc.aio.ServicerContext) -> oepb.MassQuoteAck:
        return self.replies.mass_quote_ack(request)

    async def session(self, request_iterator: AsyncIterator[oepb.SessionRequest],
                      context: grpc.aio.ServicerContext) -> AsyncIterator[oepb.SessionResponse]:
        yield oepb.SessionResponse(opened=oepb.SessionOpened(session_id="echo", participant_id="echo"))
        async for req in request_iterator:
            yield self.replies.session_reply(req)


def build_aio_echo_server(config: HubConfig) -> tuple[grpc.aio.Server, int]:
    net = config.network
    server = grpc.aio.server(interceptors=[AioAuthInterceptor(Authenticator(config))], options=server_options(config),
                             maximum_concurrent_rpcs=net.max_concurrent_rpcs)
    svc = AioEchoService()
    handlers = {
        "SubmitOrder": grpc.unary_unary_rpc_method_handler(
            svc.submit, request_deserializer=oepb.NewOrderRequest.FromString,
            response_serializer=oepb.OrderAck.SerializeToString),
        "MassQuote": grpc.unary_unary_rpc_method_handler(
            svc.mass_quote, request_deserializer=oepb.MassQuoteRequest.FromString,
            response_serializer=oepb.MassQuoteAck.SerializeToString),
        "Session": grpc.stream_stream_rpc_method_handler(
            svc.session, request_deserializer=oepb.SessionRequest.FromString,
            response_serializer=oepb.SessionResponse.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("hub.v1.OrderEntry", handlers),))
    port = server.add_insecure_port(f"{net.host}:{net.port}")
    if port == 0:
        raise OSError(f"cannot listen on {net.host}:{net.port}")
    return server, port


async def _serve(port: int) -> None:
    config = HubConfig.default().with_network(port=port)
    server, bound = build_aio_echo_server(config)
    await server.start()
    GcPolicy.of(config).start()  # the hub's collector policy too: the same process settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo serving on {config.network.host}:{bound}", flush=True)
    await stop.wait()
    await server.stop(1)


def serve_echo_aio(port: int) -> int:
    asyncio.run(_serve(port))
    return 0
