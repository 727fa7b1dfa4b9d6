"""The benchmark's echo floor on grpc.aio: the same services, messages, options and token check as
``hub.bench``'s threaded echo server, served by one asyncio event loop instead of a thread per call.

A diagnostic for choosing the gateway's server model (``python -m hub.bench --diagnose``): on this
2-core VM most of the threaded server's cost per message is waking threads (kernel task switching
was 42% of the hub's CPU samples under load), and an event loop serves every stream from one
thread. The hub itself still runs on the threaded server; this shows what the floor would be.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import grpc

from hub.auth import Authenticator, AuthError
from hub.config import HubConfig
from hub.gc_policy import GcPolicy
from hub.server import server_options
from hub.v1 import order_entry_pb2 as oepb


class _AuthInterceptor(grpc.aio.ServerInterceptor):
    """The threaded server's check (``hub.auth.AuthInterceptor``): the caller's role for the method."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001, ANN201
        try:
            self._auth.authorize(handler_call_details.method, handler_call_details.invocation_metadata)
        except AuthError as exc:
            code, message = exc.code, str(exc)

            async def deny(request, context):  # noqa: ANN001, ANN202
                await context.abort(code, message)

            return grpc.unary_unary_rpc_method_handler(deny)
        return await continuation(handler_call_details)


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
    server = grpc.aio.server(interceptors=[_AuthInterceptor(Authenticator(config))], options=server_options(config),
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
    print(f"echo_aio serving on {config.network.host}:{bound}", flush=True)
    await stop.wait()
    await server.stop(1)


def serve_echo_aio(port: int) -> int:
    asyncio.run(_serve(port))
    return 0
