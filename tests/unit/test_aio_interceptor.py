"""The gateway's interceptor wraps only async handlers: a sync one would block the event loop that
serves every call, so building the server with one fails loudly instead."""

from __future__ import annotations

import grpc
import pytest

from hub.auth import UNDECODABLE, _decode_in_aio_handler


def test_a_sync_handler_is_refused_when_the_server_is_built() -> None:
    def blocking(request, context):  # noqa: ANN001, ANN202
        return request

    with pytest.raises(TypeError, match="coroutines"):
        _decode_in_aio_handler(grpc.unary_unary_rpc_method_handler(blocking, request_deserializer=bytes))


def test_bytes_that_do_not_deserialise_reach_the_handler_as_undecodable() -> None:
    def strict(data: bytes) -> str:
        return data.decode("ascii")

    async def handler(request, context):  # noqa: ANN001, ANN202
        return request

    wrapped = _decode_in_aio_handler(grpc.unary_unary_rpc_method_handler(handler, request_deserializer=strict))
    assert wrapped.request_deserializer(b"ok") == "ok"
    assert wrapped.request_deserializer(b"\xff") is UNDECODABLE
