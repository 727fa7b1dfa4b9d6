"""Python client SDK for the exchange hub's gRPC API (``proto/hub/v1``).

    from hub.client import HubClient, LocalBook

    with HubClient("127.0.0.1:50051", "dev-scalper-1") as client:
        client.wait_ready(5)
        ack = client.submit("AAPL", "buy", 100, 1_500_000)        # unary order entry
        with client.open_session(cancel_on_disconnect=True) as session:
            ack = session.submit("AAPL", "sell", 100, 1_500_000)  # streaming order entry
            report = session.executions.get(timeout=1)            # unsolicited fills
        with client.subscribe(["AAPL"]) as updates:
            book = LocalBook("AAPL")
            for update in updates:
                book.apply(update)

Every call carries the bearer token as ``authorization`` metadata. Transport and protocol
failures surface unchanged as ``grpc.RpcError`` (check ``.code()``); business rejects are
ordinary replies (``ack.accepted`` False with ``ack.reject_reason`` / ``ack.reject_text``).
Prices and quantities are integers in the instrument's units (see ``instruments()``).
"""

from __future__ import annotations

import itertools
import logging
import queue
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from enum import Enum
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.v1 import (
    account_pb2,
    account_pb2_grpc,
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    market_data_pb2,
    market_data_pb2_grpc,
    order_entry_pb2,
    order_entry_pb2_grpc,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "BookSet",
    "HubClient",
    "LocalBook",
    "OrderSession",
    "QuoteLike",
    "SequenceGapError",
    "SessionClosedError",
    "Stream",
    "asset_class_value",
    "order_type_value",
    "side_value",
    "stp_mode_value",
    "time_in_force_value",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Channel options applied unless overridden: replies such as a full execution history or a
#: full-depth snapshot may exceed gRPC's 4 MiB default receive limit.
DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
)

#: A mass-quote entry: a ``Quote`` message or ``(symbol, bid_price, bid_qty, ask_price, ask_qty)``.
QuoteLike = order_entry_pb2.Quote | tuple[str, int, int, int, int]

# Aliases of the order types, sides and snapshot types (convenient for annotations).
OrderAck = order_entry_pb2.OrderAck
MassCancelAck = order_entry_pb2.MassCancelAck
MassQuoteAck = order_entry_pb2.MassQuoteAck
ExecutionReport = common_pb2.ExecutionReport
BookSnapshot = market_data_pb2.BookSnapshot
MarketDataUpdate = market_data_pb2.MarketDataUpdate
InstrumentInfo = market_data_pb2.InstrumentInfo


# -- ENUM CONVERSION --------------------------------------------------------------------------


def _enum_table(descriptor: EnumDescriptor, prefix: str, aliases: Mapping[str, int]) -> dict[str, int]:
    """Lower-case names of a proto enum (with and without its prefix) plus friendly aliases."""
    table: dict[str, int] = {}
    for v in descriptor.values:
        name = v.name.lower()
        table[name] = v.number
        if prefix and name.startswith(prefix):
            table[name[len(prefix):]] = v.number
    table.update(aliases)
    return table


_SIDES = _enum_table(common_pb2.Side.DESCRIPTOR, "", {"b": common_pb2.BUY, "s": common_pb2.SELL})
_ORDER_TYPES = _enum_table(common_pb2.OrderType.DESCRIPTOR, "", {})
_TIME_IN_FORCE = _enum_table(common_pb2.TimeInForce.DESCRIPTOR, "", {})
_STP_MODES = _enum_table(common_pb2.StpMode.DESCRIPTOR, "stp_", {
    "": common_pb2.STP_MODE_UNSPECIFIED,
    "default": common_pb2.STP_MODE_UNSPECIFIED,
    "resting": common_pb2.STP_CANCEL_RESTING,
    "incoming": common_pb2.STP_CANCEL_INCOMING,
    "both": common_pb2.STP_CANCEL_BOTH,
    "none": common_pb2.STP_ALLOW,  # matching.types.StpMode.NONE: self trades allowed
})
_ASSET_CLASSES = _enum_table(common_pb2.AssetClass.DESCRIPTOR, "", {
    "": common_pb2.ASSET_CLASS_UNSPECIFIED,
    "futures": common_pb2.FUTURE,
    "equities": common_pb2.EQUITY,
})


def _enum_value(value: Any, table: Mapping[str, int], what: str) -> int:
    if type(value) is int:  # proto enum values are plain ints: the fast path
        return value
    if isinstance(value, str):
        try:
            return table[value.strip().lower().replace("-", "_").replace(" ", "_")]
        except KeyError:
            choices = ", ".join(sorted(k for k in table if k))
            raise ValueError(f"unknown {what} {value!r}; expected one of: {choices}") from None
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an enum value or a name, not a bool")
    if isinstance(value, Enum):  # e.g. matching.types enums: map by name, numbers may differ
        number = table.get(value.name.lower())
        if number is not None:
            return number
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"{what} must be an enum value or a name, got {value!r}")


def side_value(value: Any) -> int:
    """``common_pb2.Side`` from a proto value or a name: "buy"/"sell" (also "b"/"s")."""
    return _enum_value(value, _SIDES, "side")


def order_type_value(value: Any) -> int:
    """``common_pb2.OrderType`` from a proto value or a name: "limit"/"market"."""
    return _enum_value(value, _ORDER_TYPES, "order type")


def time_in_force_value(value: Any) -> int:
    """``common_pb2.TimeInForce`` from a proto value or a name: "gtc"/"day"/"ioc"/"fok"."""
    return _enum_value(value, _TIME_IN_FORCE, "time in force")


def stp_mode_value(value: Any) -> int:
    """``common_pb2.StpMode`` from a proto value or a name: "default", "cancel_resting",
    "cancel_incoming", "cancel_both", "allow" (short forms "resting"/"incoming"/"both")."""
    return _enum_value(value, _STP_MODES, "STP mode")


def asset_class_value(value: Any) -> int:
    """``common_pb2.AssetClass`` from a proto value or a name: "equity"/"future"/"fx"/"crypto"."""
    return _enum_value(value, _ASSET_CLASSES, "asset class")


# -- REQUEST BUILDERS -------------------------------------------------------------------------


def _new_order(
    symbol: str, side: Any, quantity: int, price: int, order_type: Any, time_in_force: Any,
    display_quantity: int, post_only: bool, stp_mode: Any, account: int, client_order_id: str,
) -> order_entry_pb2.NewOrderRequest:
    if order_type is None:
        otype = common_pb2.LIMIT if price else common_pb2.MARKET
    else:
        otype = order_type_value(order_type)
    if time_in_force is None:
        tif = common_pb2.IOC if otype == common_pb2.MARKET else common_pb2.GTC
    else:
        tif = time_in_force_value(time_in_force)
    return order_entry_pb2.NewOrderRequest(
        client_order_id=client_order_id, symbol=symbol, side=side_value(side), order_type=otype,
        time_in_force=tif, price=price, quantity=quantity, display_quantity=display_quantity,
        post_only=post_only, stp_mode=stp_mode_value(stp_mode), account=account,
    )


def _quote(q: QuoteLike) -> order_entry_pb2.Quote:
    if isinstance(q, order_entry_pb2.Quote):
        return q
    symbol, bid_price, bid_qty, ask_price, ask_qty = q
    return order_entry_pb2.Quote(symbol=symbol, bid_price=bid_price, bid_quantity=bid_qty,
                                 ask_price=ask_price, ask_quantity=ask_qty)


def _mass_quote(quotes: Iterable[QuoteLike], account: int) -> order_entry_pb2.MassQuoteRequest:
    return order_entry_pb2.MassQuoteRequest(quotes=[_quote(q) for q in quotes], account=account)


def _scope(symbol: str, asset_class: Any) -> admin_pb2.TradingScope:
    return admin_pb2.TradingScope(symbol=symbol, asset_class=asset_class_value(asset_class))


# -- SERVER STREAMS ---------------------------------------------------------------------------

_END = object()


class Stream(Generic[T]):
    """A cancellable server stream (market data, drop copy).

    Iterate it (blocking), or call ``read(timeout)``. ``cancel()`` (from any thread) ends it;
    iteration then stops quietly instead of raising ``CANCELLED``. Any other failure is raised
    as ``grpc.RpcError``. Usable as a context manager (cancels on exit).
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False
        self._buffer: queue.SimpleQueue[Any] | None = None
        self._pump: threading.Thread | None = None
        self._lock = threading.Lock()
        self._done = False

    @property
    def call(self) -> Any:
        """The underlying gRPC call (``code()``, ``details()``, ``initial_metadata()``...)."""
        return self._call

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """End the stream: blocked and later reads stop (``StopIteration`` / ``None``), even
        if messages were still buffered."""
        self._cancelled = True
        self._call.cancel()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._cancelled:
            raise StopIteration
        if self._buffer is not None:
            item = self.read()
            if item is None:
                raise StopIteration
            return item
        if self._done:
            raise StopIteration
        try:
            return next(self._call)
        except StopIteration:
            self._done = True
            raise
        except grpc.RpcError as exc:
            self._done = True
            if self._cancelled and exc.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise

    def read(self, timeout: float | None = None) -> T | None:
        """The next message, or ``None`` once the stream has ended (or was cancelled).

        Raises ``TimeoutError`` if nothing arrives within ``timeout`` seconds (the stream stays
        usable), ``grpc.RpcError`` if the stream failed. The first call starts a background
        reader thread; from then on iteration reads through it too.
        """
        buf = self._start_pump()
        if self._done or self._cancelled:
            return None
        try:
            kind, value = buf.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no stream message within {timeout} s") from None
        if kind is _END:
            self._done = True
            buf.put((kind, value))  # later reads see the end too
            if value is not None:
                raise value
            return None
        return value

    def _start_pump(self) -> queue.SimpleQueue[Any]:
        with self._lock:
            if self._buffer is None:
                self._buffer = queue.SimpleQueue()
                self._pump = threading.Thread(target=self._run_pump, name="hub-stream-reader", daemon=True)
                self._pump.start()
            return self._buffer

    def _run_pump(self) -> None:
        buf = self._buffer
        assert buf is not None
        error: BaseException | None = None
        try:
            for item in self._call:
                buf.put((None, item))
        except grpc.RpcError as exc:
            if not (self._cancelled and exc.code() == grpc.StatusCode.CANCELLED):
                error = exc
        except BaseException as exc:  # pragma: no cover - unexpected, handed to the reader
            error = exc
        buf.put((_END, error))

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


# -- STREAMING ORDER SESSION ------------------------------------------------------------------


class SessionClosedError(ConnectionError):
    """The order session's stream ended (cleanly) before answering a request, or the session
    was closed before the request was sent."""


_BODY_FIELDS: dict[type, str] = {
    order_entry_pb2.NewOrderRequest: "new_order",
    order_entry_pb2.CancelRequest: "cancel",
    order_entry_pb2.ReplaceRequest: "replace",
    order_entry_pb2.MassCancelRequest: "mass_cancel",
    order_entry_pb2.MassQuoteRequest: "mass_quote",
    order_entry_pb2.Heartbeat: "heartbeat",
}


class OrderSession:
    """A bidirectional order-entry stream (``OrderEntry.Session``); obtain with
    ``HubClient.open_session``.

    Each request gets the next ``request_id``; a background reader routes every response to the
    waiting request by id. Synchronous methods (``submit``, ``cancel``...) return the reply body
    (``OrderAck`` / ``MassCancelAck`` / ``MassQuoteAck`` / ``Heartbeat``); the ``*_async``
    variants and ``send_async`` return a ``concurrent.futures.Future`` so requests can be
    pipelined. Unsolicited ``ExecutionReport``s (request_id 0: fills of this session's resting
    orders caused by others) are put on ``executions`` (a ``queue.Queue``) and passed to the
    ``on_execution`` callback, which runs on the reader thread and must not block.

    A future fails with the stream's ``grpc.RpcError`` if the stream fails, or with
    ``SessionClosedError`` if it ends before the answer. Thread-safe.
    """

    def __init__(
        self,
        client: HubClient,
        *,
        cancel_on_disconnect: bool = False,
        on_execution: Callable[[common_pb2.ExecutionReport], None] | None = None,
        collect_executions: bool = True,
        open_timeout: float | None = 10.0,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._on_execution = on_execution
        self._collect = collect_executions
        #: Unsolicited execution reports, in arrival order.
        self.executions: queue.Queue[common_pb2.ExecutionReport] = queue.Queue()
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closing = False
        self._ended: BaseException | None = None  # set when the response stream is over
        self._opened: Future[order_entry_pb2.SessionOpened] = Future()
        self.opened: order_entry_pb2.SessionOpened | None = None
        if cancel_on_disconnect:
            self._requests.put(order_entry_pb2.SessionRequest(
                request_id=0, open=order_entry_pb2.SessionOptions(cancel_on_disconnect=True)))
        self._call = client.order_entry_stub.Session(
            iter(self._requests.get, _END), metadata=client.metadata)
        self._reader = threading.Thread(target=self._read, name="hub-session-reader", daemon=True)
        self._reader.start()
        try:
            self.opened = self._opened.result(timeout=open_timeout)
        except BaseException:
            self.abort()
            raise

    # -- properties

    @property
    def session_id(self) -> str:
        """The hub's id for this session (from ``SessionOpened``)."""
        return self.opened.session_id if self.opened else ""

    @property
    def participant_id(self) -> str:
        """The authenticated participant (from ``SessionOpened``)."""
        return self.opened.participant_id if self.opened else ""

    @property
    def call(self) -> Any:
        """The underlying gRPC call (``code()``, ``details()`` once it ended)."""
        return self._call

    @property
    def closed(self) -> bool:
        """True once the response stream is over (or close/abort was called)."""
        return self._closing or self._ended is not None

    # -- sending

    def send_async(self, body: Message) -> Future[Any]:
        """Send one request and return a future of its reply body.

        ``body`` is a ``NewOrderRequest``, ``CancelRequest``, ``ReplaceRequest``,
        ``MassCancelRequest``, ``MassQuoteRequest`` or ``Heartbeat`` (or a whole
        ``SessionRequest``, copied; its request_id is replaced).
        """
        if isinstance(body, order_entry_pb2.SessionRequest):
            request = order_entry_pb2.SessionRequest()
            request.CopyFrom(body)
        else:
            try:
                field = _BODY_FIELDS[type(body)]
            except KeyError:
                raise TypeError(f"not a session request body: {type(body).__name__}") from None
            request = order_entry_pb2.SessionRequest(**{field: body})
        future: Future[Any] = Future()
        with self._lock:
            if self._closing or self._ended is not None:
                raise self._ended if isinstance(self._ended, grpc.RpcError) else \
                    SessionClosedError("order session is closed")
            request_id = next(self._ids)
            request.request_id = request_id
            self._pending[request_id] = future
            self._requests.put(request)
        return future

    def _wait(self, future: Future[Any], timeout: float | None) -> Any:
        return future.result(timeout=self._timeout if timeout is None else timeout)

    def submit_async(
        self, symbol: str, side: Any, quantity: int, price: int = 0, *, order_type: Any = None,
        time_in_force: Any = None, display_quantity: int = 0, post_only: bool = False,
        stp_mode: Any = common_pb2.STP_MODE_UNSPECIFIED, account: int = 0,
        client_order_id: str | None = None,
    ) -> Future[order_entry_pb2.OrderAck]:
        """Pipelined ``submit``: a future of the ``OrderAck``."""
        return self.send_async(_new_order(
            symbol, side, quantity, price, order_type, time_in_force, display_quantity, post_only,
            stp_mode, account,
            client_order_id if client_order_id is not None else self._client.next_client_order_id()))

    def submit(
        self, symbol: str, side: Any, quantity: int, price: int = 0, *, order_type: Any = None,
        time_in_force: Any = None, display_quantity: int = 0, post_only: bool = False,
        stp_mode: Any = common_pb2.STP_MODE_UNSPECIFIED, account: int = 0,
        client_order_id: str | None = None, timeout: float | None = None,
    ) -> order_entry_pb2.OrderAck:
        """Enter a new order on the session and wait for its ``OrderAck`` (see ``HubClient.submit``)."""
        return self._wait(self.submit_async(
            symbol, side, quantity, price, order_type=order_type, time_in_force=time_in_force,
            display_quantity=display_quantity, post_only=post_only, stp_mode=stp_mode,
            account=account, client_order_id=client_order_id), timeout)

    def cancel_async(self, symbol: str, order_id: int) -> Future[order_entry_pb2.OrderAck]:
        """Pipelined ``cancel``."""
        return self.send_async(order_entry_pb2.CancelRequest(symbol=symbol, order_id=order_id))

    def cancel(self, symbol: str, order_id: int, *, timeout: float | None = None) -> order_entry_pb2.OrderAck:
        """Cancel one order; returns its ``OrderAck``."""
        return self._wait(self.cancel_async(symbol, order_id), timeout)

    def replace_async(self, symbol: str, order_id: int, price: int,
                      quantity: int) -> Future[order_entry_pb2.OrderAck]:
        """Pipelined ``replace``."""
        return self.send_async(order_entry_pb2.ReplaceRequest(
            symbol=symbol, order_id=order_id, price=price, quantity=quantity))

    def replace(self, symbol: str, order_id: int, price: int, quantity: int, *,
                timeout: float | None = None) -> order_entry_pb2.OrderAck:
        """New price and open quantity for one order; returns its ``OrderAck``."""
        return self._wait(self.replace_async(symbol, order_id, price, quantity), timeout)

    def mass_cancel_async(self, symbol: str = "", account: int = 0) -> Future[order_entry_pb2.MassCancelAck]:
        """Pipelined ``mass_cancel``."""
        return self.send_async(order_entry_pb2.MassCancelRequest(symbol=symbol, account=account))

    def mass_cancel(self, symbol: str = "", account: int = 0, *,
                    timeout: float | None = None) -> order_entry_pb2.MassCancelAck:
        """Cancel the participant's orders (all symbols / all accounts when left empty)."""
        return self._wait(self.mass_cancel_async(symbol, account), timeout)

    def mass_quote_async(self, quotes: Iterable[QuoteLike],
                         account: int = 0) -> Future[order_entry_pb2.MassQuoteAck]:
        """Pipelined ``mass_quote``."""
        return self.send_async(_mass_quote(quotes, account))

    def mass_quote(self, quotes: Iterable[QuoteLike], account: int = 0, *,
                   timeout: float | None = None) -> order_entry_pb2.MassQuoteAck:
        """Replace the participant's quotes on each listed symbol; returns the ``MassQuoteAck``."""
        return self._wait(self.mass_quote_async(quotes, account), timeout)

    def heartbeat(self, *, timeout: float | None = None) -> order_entry_pb2.Heartbeat:
        """Round trip a ``Heartbeat`` stamped with the local time; returns the hub's answer."""
        return self._wait(self.send_async(order_entry_pb2.Heartbeat(client_time_ns=time.time_ns())), timeout)

    # -- receiving

    def _read(self) -> None:
        error: BaseException | None = None
        try:
            for response in self._call:
                request_id = response.request_id
                if request_id:
                    with self._lock:
                        future = self._pending.pop(request_id, None)
                    if future is None:
                        log.warning("order session: response to unknown request_id %d", request_id)
                    else:
                        future.set_result(getattr(response, response.WhichOneof("body") or "order_ack"))
                    continue
                kind = response.WhichOneof("body")
                if kind == "execution":
                    self._deliver(response.execution)
                elif kind == "opened":
                    if not self._opened.done():
                        self._opened.set_result(response.opened)
                elif kind != "heartbeat":
                    log.warning("order session: unexpected unsolicited %s", kind)
        except grpc.RpcError as exc:
            error = exc
        except BaseException as exc:  # pragma: no cover - a bug; never leave waiters hanging
            log.exception("order session reader failed")
            error = exc
        if error is None:
            error = SessionClosedError(f"order session ended: {self._call.code()} {self._call.details()}")
        with self._lock:
            self._ended = error
            pending, self._pending = self._pending, {}
        if not self._opened.done():
            self._opened.set_exception(error)
        for future in pending.values():
            future.set_exception(error)
        self._requests.put(_END)  # let gRPC's request-consumer thread finish

    def _deliver(self, report: common_pb2.ExecutionReport) -> None:
        if self._collect:
            self.executions.put(report)
        if self._on_execution is not None:
            try:
                self._on_execution(report)
            except Exception:
                log.exception("order session: on_execution callback failed")

    # -- ending

    def close(self, timeout: float | None = 5.0) -> None:
        """End the request stream gracefully and wait up to ``timeout`` s for the hub to finish
        answering (outstanding requests still get their replies); cancels the call if it does not.
        With ``cancel_on_disconnect`` the hub then cancels the session's DAY orders."""
        with self._lock:
            already = self._closing
            self._closing = True
        if not already:
            self._requests.put(_END)
        if self._reader is threading.current_thread():
            return  # called from on_execution: the reader finishes by itself
        self._reader.join(timeout)
        if self._reader.is_alive():
            self._call.cancel()
            self._reader.join(1.0)

    def abort(self) -> None:
        """Cancel the stream at once (like a dropped connection); outstanding requests fail."""
        with self._lock:
            self._closing = True
        self._call.cancel()
        self._requests.put(_END)
        if self._reader is not threading.current_thread():
            self._reader.join(1.0)

    def __enter__(self) -> OrderSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- THE CLIENT -------------------------------------------------------------------------------


class HubClient:
    """A connection to the hub, authenticated as one caller by its bearer token.

    Insecure channel unless certificates are given: ``root_certificates`` (PEM of the CA that
    signed the hub's certificate; None with a client certificate = system roots) enables TLS,
    ``private_key`` + ``certificate_chain`` add a client certificate (mutual TLS). ``options``
    are extra gRPC channel options (merged over ``DEFAULT_OPTIONS``); ``timeout`` is the default
    deadline in seconds of the unary calls (None: no deadline).
    """

    def __init__(
        self,
        target: str,
        token: str,
        *,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
        timeout: float | None = None,
        client_order_id_prefix: str | None = None,
    ) -> None:
        if (private_key is None) != (certificate_chain is None):
            raise ValueError("private_key and certificate_chain must be given together (mutual TLS)")
        merged = dict(DEFAULT_OPTIONS)
        merged.update(options or ())
        channel_options = list(merged.items())
        self.target = target
        if root_certificates is not None or certificate_chain is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=root_certificates, private_key=private_key,
                certificate_chain=certificate_chain)
            self.channel: grpc.Channel = grpc.secure_channel(target, credentials, channel_options)
        else:
            self.channel = grpc.insecure_channel(target, channel_options)
        bearer = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        #: Call metadata sent with every call: the bearer token.
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", bearer),)
        self.timeout = timeout
        #: What the last ``wait_ready`` poll saw (a serving status or a gRPC status code name).
        self.last_health = ""
        self._prefix = client_order_id_prefix if client_order_id_prefix is not None \
            else f"{secrets.token_hex(4)}-"
        self._order_ids = itertools.count(1)
        self._sessions: weakref.WeakSet[OrderSession] = weakref.WeakSet()
        self.order_entry_stub = order_entry_pb2_grpc.OrderEntryStub(self.channel)
        self.market_data_stub = market_data_pb2_grpc.MarketDataStub(self.channel)
        self.account_stub = account_pb2_grpc.AccountStub(self.channel)
        self.admin_stub = admin_pb2_grpc.AdminStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    # -- lifecycle

    def close(self) -> None:
        """Close open sessions gracefully, then the channel (cancelling any other active call)."""
        for session in list(self._sessions):
            try:
                session.close(timeout=2.0)
            except Exception:  # pragma: no cover - best effort
                log.exception("closing order session failed")
        self.channel.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_client_order_id(self) -> str:
        """A client order id unique to this client: random prefix + counter."""
        return f"{self._prefix}{next(self._order_ids)}"

    def health(self, service: str = "", *, timeout: float | None = None) -> int:
        """The health status (``health_pb2.HealthCheckResponse.SERVING``...) of ``service``."""
        reply = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service),
                                       metadata=self.metadata, timeout=self._deadline(timeout))
        return reply.status

    def wait_ready(self, timeout: float = 10.0, service: str = "") -> bool:
        """Poll the health service until ``service`` is SERVING: True, or False after ``timeout`` s
        (``last_health`` then says what was seen last).

        UNAVAILABLE (not listening yet) and NOT_SERVING are retried; other errors are raised."""
        deadline = time.monotonic() + timeout
        self.last_health = "no answer"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.info("hub at %s not SERVING within %s s (%s)", self.target, timeout, self.last_health)
                return False
            try:
                status = self.health_stub.Check(
                    health_pb2.HealthCheckRequest(service=service), metadata=self.metadata,
                    timeout=min(remaining, 2.0), wait_for_ready=True)
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
                self.last_health = health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                self.last_health = exc.code().name
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _deadline(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    # -- order entry (unary)

    def submit(
        self, symbol: str, side: Any, quantity: int, price: int = 0, *, order_type: Any = None,
        time_in_force: Any = None, display_quantity: int = 0, post_only: bool = False,
        stp_mode: Any = common_pb2.STP_MODE_UNSPECIFIED, account: int = 0,
        client_order_id: str | None = None, timeout: float | None = None,
    ) -> order_entry_pb2.OrderAck:
        """Enter a new order; returns its ``OrderAck`` (check ``accepted``).

        Enums take proto values or names: side "buy"/"sell"; order_type "limit"/"market"
        (default: limit if a price is given, else market); time_in_force "gtc"/"day"/"ioc"/"fok"
        (default: gtc for limit, ioc for market); stp_mode "default"/"cancel_resting"/
        "cancel_incoming"/"cancel_both"/"allow". ``client_order_id`` defaults to a fresh one.
        """
        request = _new_order(
            symbol, side, quantity, price, order_type, time_in_force, display_quantity, post_only,
            stp_mode, account,
            client_order_id if client_order_id is not None else self.next_client_order_id())
        return self.order_entry_stub.SubmitOrder(request, metadata=self.metadata,
                                                 timeout=self._deadline(timeout))

    def cancel(self, symbol: str, order_id: int, *, timeout: float | None = None) -> order_entry_pb2.OrderAck:
        """Cancel one order."""
        return self.order_entry_stub.CancelOrder(
            order_entry_pb2.CancelRequest(symbol=symbol, order_id=order_id),
            metadata=self.metadata, timeout=self._deadline(timeout))

    def replace(self, symbol: str, order_id: int, price: int, quantity: int, *,
                timeout: float | None = None) -> order_entry_pb2.OrderAck:
        """New price and open quantity (same price, less quantity keeps time priority)."""
        return self.order_entry_stub.ReplaceOrder(
            order_entry_pb2.ReplaceRequest(symbol=symbol, order_id=order_id, price=price, quantity=quantity),
            metadata=self.metadata, timeout=self._deadline(timeout))

    def mass_cancel(self, symbol: str = "", account: int = 0, *,
                    timeout: float | None = None) -> order_entry_pb2.MassCancelAck:
        """Cancel the participant's orders ("" = every symbol, 0 = every account)."""
        return self.order_entry_stub.MassCancel(
            order_entry_pb2.MassCancelRequest(symbol=symbol, account=account),
            metadata=self.metadata, timeout=self._deadline(timeout))

    def mass_quote(self, quotes: Iterable[QuoteLike], account: int = 0, *,
                   timeout: float | None = None) -> order_entry_pb2.MassQuoteAck:
        """Replace the participant's quotes on each listed symbol. ``quotes``: ``Quote`` messages
        or ``(symbol, bid_price, bid_qty, ask_price, ask_qty)`` tuples (quantity 0 = no side)."""
        return self.order_entry_stub.MassQuote(_mass_quote(quotes, account), metadata=self.metadata,
                                               timeout=self._deadline(timeout))

    # -- order entry (streaming)

    def open_session(
        self,
        cancel_on_disconnect: bool = False,
        *,
        on_execution: Callable[[common_pb2.ExecutionReport], None] | None = None,
        collect_executions: bool = True,
        open_timeout: float | None = 10.0,
        timeout: float | None = None,
    ) -> OrderSession:
        """Open a streaming order session and wait (up to ``open_timeout`` s) for ``SessionOpened``.

        ``timeout`` is the default wait of the session's synchronous methods (None: forever).
        Raises the ``grpc.RpcError`` if the hub refuses the stream (e.g. UNAUTHENTICATED),
        ``TimeoutError`` if it does not open in time."""
        session = OrderSession(self, cancel_on_disconnect=cancel_on_disconnect, on_execution=on_execution,
                               collect_executions=collect_executions, open_timeout=open_timeout,
                               timeout=timeout)
        self._sessions.add(session)
        return session

    # -- market data

    def snapshot(self, symbol: str, depth: int = 0, *,
                 timeout: float | None = None) -> market_data_pb2.BookSnapshot:
        """The instrument's book now (``depth`` levels per side; 0 = full depth)."""
        return self.market_data_stub.GetSnapshot(
            market_data_pb2.SnapshotRequest(symbol=symbol, depth=depth),
            metadata=self.metadata, timeout=self._deadline(timeout))

    def instruments(self, *, timeout: float | None = None) -> list[market_data_pb2.InstrumentInfo]:
        """Every listed instrument."""
        reply = self.market_data_stub.ListInstruments(
            market_data_pb2.ListInstrumentsRequest(), metadata=self.metadata,
            timeout=self._deadline(timeout))
        return list(reply.instruments)

    def subscribe(self, symbols: str | Iterable[str] | None = None) -> Stream[market_data_pb2.MarketDataUpdate]:
        """Stream of ``MarketDataUpdate``s: a snapshot per symbol, then increments.
        ``symbols``: one symbol, several, or None / empty for every instrument."""
        if symbols is None:
            names: list[str] = []
        elif isinstance(symbols, str):
            names = [symbols] if symbols else []
        else:
            names = list(symbols)
        return Stream(self.market_data_stub.Subscribe(
            market_data_pb2.SubscribeRequest(symbols=names), metadata=self.metadata))

    # -- account

    def open_orders(self, symbol: str = "", *, page_size: int = 0,
                    timeout: float | None = None) -> list[account_pb2.OpenOrder]:
        """The participant's resting orders ("" = every symbol), in order id order: every page
        (``page_size`` orders each; 0 = the server's maximum), each call with its own deadline."""
        orders: list[account_pb2.OpenOrder] = []
        after = 0
        while True:
            reply = self.account_stub.GetOpenOrders(
                account_pb2.OpenOrdersRequest(symbol=symbol, after_order_id=after, limit=page_size),
                metadata=self.metadata, timeout=self._deadline(timeout))
            orders.extend(reply.orders)
            if not reply.more or not reply.orders:
                return orders
            after = reply.orders[-1].order_id

    def executions(self, after_sequence: int = 0, limit: int = 0, *,
                   timeout: float | None = None) -> list[common_pb2.ExecutionReport]:
        """The participant's execution reports of commands after ``after_sequence``
        (at most ``limit``; 0 = the server's maximum)."""
        reply = self.account_stub.GetExecutions(
            account_pb2.ExecutionsRequest(after_sequence=after_sequence, limit=limit),
            metadata=self.metadata, timeout=self._deadline(timeout))
        return list(reply.executions)

    def all_executions(self, after_sequence: int = 0, *, page_size: int = 0,
                       timeout: float | None = None) -> list[common_pb2.ExecutionReport]:
        """Every execution report of commands after ``after_sequence``, page by page (``page_size``
        each; 0 = the server's maximum), never losing the rest of a command whose many reports a
        page cut (the ``skip`` cursor)."""
        reports: list[common_pb2.ExecutionReport] = []
        after, skip = after_sequence, 0
        while True:
            reply = self.account_stub.GetExecutions(
                account_pb2.ExecutionsRequest(after_sequence=after, limit=page_size, skip=skip),
                metadata=self.metadata, timeout=self._deadline(timeout))
            reports.extend(reply.executions)
            if not reply.more or not reply.executions:
                return reports
            last = reply.executions[-1].sequence
            same = sum(1 for r in reply.executions if r.sequence == last)
            skip = (skip if last == after else 0) + same
            after = last

    def positions(self, *, timeout: float | None = None) -> list[account_pb2.Position]:
        """The participant's positions per symbol and account."""
        reply = self.account_stub.GetPositions(account_pb2.PositionsRequest(), metadata=self.metadata,
                                               timeout=self._deadline(timeout))
        return list(reply.positions)

    def drop_copy(self) -> Stream[common_pb2.ExecutionReport]:
        """Stream of every execution report of the participant's orders, whichever session."""
        return Stream(self.account_stub.DropCopy(account_pb2.DropCopyRequest(), metadata=self.metadata))

    # -- admin (operator role)

    def halt(self, symbol: str = "", asset_class: Any = 0, *,
             timeout: float | None = None) -> admin_pb2.AdminAck:
        """Halt one symbol, one asset class ("equity"...), or (neither) the whole hub."""
        return self.admin_stub.Halt(_scope(symbol, asset_class), metadata=self.metadata,
                                    timeout=self._deadline(timeout))

    def resume(self, symbol: str = "", asset_class: Any = 0, *,
               timeout: float | None = None) -> admin_pb2.AdminAck:
        """Resume trading in a scope (as ``halt``)."""
        return self.admin_stub.Resume(_scope(symbol, asset_class), metadata=self.metadata,
                                      timeout=self._deadline(timeout))

    def end_of_session(self, symbol: str = "", asset_class: Any = 0, *,
                       timeout: float | None = None) -> admin_pb2.AdminAck:
        """End the trading session in a scope (as ``halt``): DAY orders expire."""
        return self.admin_stub.EndOfSession(_scope(symbol, asset_class), metadata=self.metadata,
                                            timeout=self._deadline(timeout))

    def status(self, *, timeout: float | None = None) -> admin_pb2.HubStatus:
        """The hub's status: last sequence, state digests, engines, connection counts."""
        return self.admin_stub.GetStatus(admin_pb2.StatusRequest(), metadata=self.metadata,
                                         timeout=self._deadline(timeout))


# -- LOCAL ORDER BOOK -------------------------------------------------------------------------


class SequenceGapError(RuntimeError):
    """A market data update skipped md_sequence numbers: the local book is no longer reliable."""

    def __init__(self, symbol: str, expected: int, received: int) -> None:
        super().__init__(f"{symbol}: md_sequence gap: expected {expected}, received {received}")
        self.symbol = symbol
        self.expected = expected
        self.received = received


Levels = list[tuple[int, int]]


class LocalBook:
    """An L2 book of one instrument rebuilt from a snapshot plus incremental updates.

    ``apply(update)`` takes the ``MarketDataUpdate``s of a subscription: a snapshot resets the
    book; a delta sets a level's quantity (0 removes it); trade / top / status updates only
    advance the sequence (status sets ``halted``, top sets ``top``). Every increment must carry
    md_sequence = previous + 1: older ones are ignored (already in the snapshot), a gap sets
    ``gap`` and ``needs_snapshot`` and, if ``strict``, raises ``SequenceGapError``. A
    ``ResyncNotice`` sets ``needs_snapshot``; increments are ignored until the next snapshot.
    ``bids`` / ``asks`` are ``[(price, quantity), ...]``, best first.
    """

    def __init__(self, symbol: str = "", *, strict: bool = True) -> None:
        self.symbol = symbol
        self.strict = strict
        self.md_sequence = 0
        self.halted = False
        self.needs_snapshot = True
        self.gap = False
        self.gaps = 0
        self.resyncs = 0
        self.top: market_data_pb2.TopOfBookUpdate | None = None
        self.last_trade: market_data_pb2.TradeUpdate | None = None
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}

    @classmethod
    def from_snapshot(cls, snapshot: market_data_pb2.BookSnapshot, *, strict: bool = True) -> LocalBook:
        """A book initialised from a ``BookSnapshot`` (e.g. ``HubClient.snapshot``)."""
        book = cls(snapshot.symbol, strict=strict)
        book.apply_snapshot(snapshot)
        return book

    def apply_snapshot(self, snapshot: market_data_pb2.BookSnapshot, md_sequence: int | None = None) -> None:
        """Replace the book by ``snapshot`` (which includes every update up to its md_sequence)."""
        self._check_symbol(snapshot.symbol)
        self._bids = {lvl.price: lvl.quantity for lvl in snapshot.bids if lvl.quantity}
        self._asks = {lvl.price: lvl.quantity for lvl in snapshot.asks if lvl.quantity}
        self.md_sequence = snapshot.md_sequence or (md_sequence or 0)
        self.halted = snapshot.halted
        self.needs_snapshot = False
        self.gap = False

    def apply(self, update: market_data_pb2.MarketDataUpdate) -> bool:
        """Apply one update; True if it changed the book state, False if ignored."""
        kind = update.WhichOneof("body")
        if kind == "snapshot":
            self.apply_snapshot(update.snapshot, update.md_sequence)
            return True
        self._check_symbol(update.symbol)
        if kind == "resync":
            self.needs_snapshot = True
            self.resyncs += 1
            return False
        if self.needs_snapshot:
            return False
        seq = update.md_sequence
        if seq <= self.md_sequence:
            return False  # already included in the snapshot
        if seq != self.md_sequence + 1:
            expected = self.md_sequence + 1
            self.gap = True
            self.needs_snapshot = True
            self.gaps += 1
            if self.strict:
                raise SequenceGapError(self.symbol or update.symbol, expected, seq)
            return False
        self.md_sequence = seq
        if kind == "delta":
            d = update.delta
            if d.side == common_pb2.BUY:
                levels = self._bids
            elif d.side == common_pb2.SELL:
                levels = self._asks
            else:
                raise ValueError(f"{update.symbol}: delta with side {d.side}")
            if d.quantity:
                levels[d.price] = d.quantity
            else:
                levels.pop(d.price, None)
        elif kind == "status":
            self.halted = update.status.halted
        elif kind == "top":
            self.top = update.top
        elif kind == "trade":
            self.last_trade = update.trade
        return True

    def _check_symbol(self, symbol: str) -> None:
        if not self.symbol:
            self.symbol = symbol
        elif symbol and symbol != self.symbol:
            raise ValueError(f"update for {symbol!r} applied to the book of {self.symbol!r}")

    @property
    def bids(self) -> Levels:
        """Bid levels ``(price, quantity)``, highest price first."""
        return sorted(self._bids.items(), reverse=True)

    @property
    def asks(self) -> Levels:
        """Ask levels ``(price, quantity)``, lowest price first."""
        return sorted(self._asks.items())

    def best_bid(self) -> tuple[int, int] | None:
        """The best bid ``(price, quantity)`` or None."""
        return (p := max(self._bids), self._bids[p]) if self._bids else None

    def best_ask(self) -> tuple[int, int] | None:
        """The best ask ``(price, quantity)`` or None."""
        return (p := min(self._asks), self._asks[p]) if self._asks else None

    @staticmethod
    def snapshot_levels(snapshot: market_data_pb2.BookSnapshot) -> tuple[Levels, Levels]:
        """``(bids, asks)`` of a ``BookSnapshot`` in the same form as ``bids`` / ``asks``."""
        return ([(lvl.price, lvl.quantity) for lvl in snapshot.bids],
                [(lvl.price, lvl.quantity) for lvl in snapshot.asks])

    def matches(self, snapshot: market_data_pb2.BookSnapshot, depth: int = 0) -> bool:
        """True if this book has exactly the levels of ``snapshot``; with ``depth`` > 0 only the
        best ``depth`` levels per side are compared (for a depth-limited snapshot)."""
        bids, asks = self.snapshot_levels(snapshot)
        if depth > 0:
            return self.bids[:depth] == bids[:depth] and self.asks[:depth] == asks[:depth]
        return self.bids == bids and self.asks == asks

    def __repr__(self) -> str:
        return (f"LocalBook({self.symbol!r}, md_sequence={self.md_sequence}, bids={self.bids[:5]}, "
                f"asks={self.asks[:5]}{', halted' if self.halted else ''}"
                f"{', needs snapshot' if self.needs_snapshot else ''})")


class BookSet:
    """``LocalBook``s of every symbol of a subscription: ``books.apply(update)`` routes by symbol."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self.books: dict[str, LocalBook] = {}

    def apply(self, update: market_data_pb2.MarketDataUpdate) -> bool:
        """Apply one update to its symbol's book (created on first sight)."""
        book = self.books.get(update.symbol)
        if book is None:
            book = self.books[update.symbol] = LocalBook(update.symbol, strict=self.strict)
        return book.apply(update)

    def __getitem__(self, symbol: str) -> LocalBook:
        return self.books[symbol]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.books

    def __iter__(self) -> Iterator[str]:
        return iter(self.books)

    def __len__(self) -> int:
        return len(self.books)
