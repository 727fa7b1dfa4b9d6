"""Who is calling, and may they call this method: bearer tokens checked by one interceptor.

Tokens travel as ``authorization: Bearer <token>`` metadata and are compared by SHA-256 only.
The interceptor aborts before any handler runs; handlers then resolve the same identity with
``Authenticator.identify`` (a dict lookup) to scope what the caller may see.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc

from hub.config import HubConfig, ParticipantClass, ParticipantConfig, Role
from matching.types import StpMode

_ANY = frozenset(Role)
#: Required roles per RPC, by full method name prefix. Methods not listed are refused.
METHOD_ROLES: dict[str, frozenset[Role]] = {
    "/hub.v1.OrderEntry/": frozenset({Role.PARTICIPANT}),
    "/hub.v1.Account/": frozenset({Role.PARTICIPANT}),
    "/hub.v1.MarketData/": _ANY,
    "/hub.v1.Admin/": frozenset({Role.OPERATOR}),
    "/hub.v1.Ledger/": frozenset({Role.REGULATOR}),
}
#: Served without a token: health checks and reflection carry no trading data.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True, slots=True)
class Identity:
    participant_id: str
    role: Role
    participant_class: ParticipantClass
    accounts: tuple[int, ...]
    default_stp: StpMode

    @staticmethod
    def of(p: ParticipantConfig) -> Identity:
        return Identity(p.id, p.role, p.participant_class, p.accounts, p.stp_mode)


class AuthError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class Authenticator:
    def __init__(self, config: HubConfig) -> None:
        self._by_hash = {h: Identity.of(p) for h, p in config.participant_by_token_hash().items()}

    def identify(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Identity:
        token = _bearer(metadata)
        if token is None:
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        digest = hashlib.sha256(token.encode()).hexdigest()
        # Looking up the SHA-256 digest (not the token) leaks nothing useful through timing.
        identity = self._by_hash.get(digest)
        if identity is None:
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        return identity

    def authorize(self, method: str, metadata) -> Identity | None:
        """The caller's identity, None for public methods; raises AuthError otherwise."""
        if method.startswith(PUBLIC_PREFIXES):
            return None
        roles = next((r for prefix, r in METHOD_ROLES.items() if method.startswith(prefix)), None)
        if roles is None:
            raise AuthError(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method}")
        identity = self.identify(metadata)
        if identity.role not in roles:
            raise AuthError(grpc.StatusCode.PERMISSION_DENIED,
                            f"role {identity.role.value} may not call {method}")
        return identity


def _denier(code: grpc.StatusCode, message: str) -> Callable:
    def deny(request_or_iterator, context: grpc.ServicerContext):
        context.abort(code, message)

    return deny


class _Undecodable:
    """Stands in for request bytes that did not deserialise (see ``_decode_in_handler``)."""


UNDECODABLE = _Undecodable()


def _lenient(deserialize: Callable[[bytes], object]) -> Callable[[bytes], object]:
    """``deserialize`` that cannot fail: bytes it refuses come back as ``UNDECODABLE``."""

    def lenient(data: bytes):
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - whatever the deserializer raises, the bytes are bad
            return UNDECODABLE

    return lenient


def _stream_with(handler: grpc.RpcMethodHandler, deserializer: Callable[[bytes], object]) -> grpc.RpcMethodHandler:
    """A request-streaming handler, unchanged but for its request deserializer (the handler itself
    answers ``UNDECODABLE`` items)."""
    factory = (grpc.stream_stream_rpc_method_handler if handler.response_streaming
               else grpc.stream_unary_rpc_method_handler)
    behavior = handler.stream_stream if handler.response_streaming else handler.stream_unary
    return factory(behavior, request_deserializer=deserializer, response_serializer=handler.response_serializer)


def _decode_in_handler(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """Make a request's deserialisation failure the handler's business.

    grpcio (1.85) leaks the server call when a request's deserializer raises: about 19 KB that
    are never freed (not even when the connection closes) plus one HTTP/2 stream slot, so after
    ``max_concurrent_streams`` such requests the connection refuses every RPC (REFUSED_STREAM),
    valid ones included. It happens for unary requests and, under concurrency, for a bad message
    in the middle of a request stream. With a deserializer that cannot fail, unary handlers answer
    INVALID_ARGUMENT and streaming handlers receive ``UNDECODABLE`` items they answer as they see
    fit (the order session replies with a typed reject and carries on)."""
    if handler is None or handler.request_deserializer is None:
        return handler
    lenient = _lenient(handler.request_deserializer)
    if handler.request_streaming:
        return _stream_with(handler, lenient)

    def checked(behavior: Callable) -> Callable:
        def run(request, context: grpc.ServicerContext):
            if request is UNDECODABLE:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request does not deserialise")
            return behavior(request, context)

        return run

    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(checked(handler.unary_stream), request_deserializer=lenient,
                                                    response_serializer=handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(checked(handler.unary_unary), request_deserializer=lenient,
                                               response_serializer=handler.response_serializer)


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def intercept_service(self, continuation, handler_call_details):
        try:
            self._auth.authorize(handler_call_details.method, handler_call_details.invocation_metadata)
        except AuthError as exc:
            handler = continuation(handler_call_details)
            deny = _denier(exc.code, str(exc))
            if handler is None:
                return grpc.unary_unary_rpc_method_handler(deny)
            if handler.request_streaming and handler.response_streaming:
                return grpc.stream_stream_rpc_method_handler(deny)
            if handler.request_streaming:
                return grpc.stream_unary_rpc_method_handler(deny)
            if handler.response_streaming:
                return grpc.unary_stream_rpc_method_handler(deny)
            return grpc.unary_unary_rpc_method_handler(deny)
        return _decode_in_handler(continuation(handler_call_details))


# -- the gateway's interceptor (grpc.aio) ------------------------------------------------------


def _aio_denier(handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the method's own shape that ends the call with ``code``."""

    async def deny(request_or_iterator, context: grpc.aio.ServicerContext):
        await context.abort(code, message)

    async def deny_stream(request_or_iterator, context: grpc.aio.ServicerContext):
        await context.abort(code, message)
        yield  # never reached: makes this an async generator (a response stream)

    if handler is None:
        return grpc.unary_unary_rpc_method_handler(deny)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny_stream)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny_stream)
    return grpc.unary_unary_rpc_method_handler(deny)


def _decode_in_aio_handler(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """``_decode_in_handler`` for async handlers: bytes that do not deserialise reach the handler as
    ``UNDECODABLE``; unary requests are then answered INVALID_ARGUMENT, streams decide themselves."""
    if handler is None or handler.request_deserializer is None:
        return handler
    lenient = _lenient(handler.request_deserializer)
    if handler.request_streaming:
        return _stream_with(handler, lenient)
    serialize = handler.response_serializer

    async def refuse(context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request does not deserialise")

    behavior = handler.unary_stream if handler.response_streaming else handler.unary_unary
    factory = grpc.unary_stream_rpc_method_handler if handler.response_streaming else grpc.unary_unary_rpc_method_handler
    if inspect.isasyncgenfunction(behavior):  # a response stream that yields

        async def run_stream(request, context: grpc.aio.ServicerContext):
            if request is UNDECODABLE:
                await refuse(context)
            async for item in behavior(request, context):
                yield item

        return factory(run_stream, request_deserializer=lenient, response_serializer=serialize)
    if not inspect.iscoroutinefunction(behavior):  # a sync handler would block the event loop
        raise TypeError(f"{behavior!r}: the gateway serves calls from coroutines and async generators")

    async def run(request, context: grpc.aio.ServicerContext):  # a unary call, or a stream that writes
        if request is UNDECODABLE:
            await refuse(context)
        return await behavior(request, context)

    return factory(run, request_deserializer=lenient, response_serializer=serialize)


class AioAuthInterceptor(grpc.aio.ServerInterceptor):
    """``AuthInterceptor`` for the gateway's grpc.aio server: the same check, before any handler."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def intercept_service(self, continuation, handler_call_details):
        try:
            self._auth.authorize(handler_call_details.method, handler_call_details.invocation_metadata)
        except AuthError as exc:
            return _aio_denier(await continuation(handler_call_details), exc.code, str(exc))
        return _decode_in_aio_handler(await continuation(handler_call_details))
