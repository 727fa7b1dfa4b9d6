"""Gateway benchmark: the hub against a bare gRPC echo floor, measured in the same run.

    python -m hub.bench [--duration S] [--rate R] [--streams K] [--window W] [--quotes Q]
                        [--rounds N] [--diagnose] [--json] [--quick]

Two server processes are started: the hub as ``python -m hub serve --port 0`` runs it (embedded
defaults, durable ledger in a temporary data directory; ``python -m hub.bench --serve-hub``) with one
change: the pre-trade risk rate limits and latency kill switch are raised out of the flow's way
(``BENCH_RISK_*``; the checks still run), and an echo server (``python -m hub.bench --serve-echo``,
``hub.echo_aio``). The echo server is the floor: the same server stack as the hub's gateway
(grpc.aio, one event loop), the same options (``hub.server.server_options``),
``maximum_concurrent_rpcs`` and the hub's real ``AioAuthInterceptor`` (so every echo call pays the
same token check and request decoding). It serves the same method paths as ``hub.v1.OrderEntry``
(the interceptor authorises by path) with the same request and response types, and answers each
request with a reply shaped like the hub's answer to that request in this workload (an OrderAck
with 1 report for a resting buy, 5 for a crossing sell; a MassQuoteAck with 4 reports per quote);
mean reply sizes of both are printed. Its Session handler yields each reply as it reads the request.

``--diagnose`` adds three variants: ``gateway``, the hub's whole server with nothing behind its
order entry (``hub.gateway_floor``: answered like the echo, nothing entered; ``--serve-hub
--in-memory --gateway-only``: the gateway's share over the bare echo), ``hub_memory``, the hub
journaling in memory instead of to the ledger (``--serve-hub --in-memory``: the hub's own work over
the gateway, and the ledger's share below the hub), and ``echo_threaded``, the echo on the threaded
``grpc.server`` (a thread per call; the gateway's server model before it moved to grpc.aio).

The client runs in this process and sends serialised bytes and parses each reply once (for the
checks), with one HTTP/2 connection per stream or participant: threads for the paced latency runs
(requests serialised before the clock starts), asyncio for the closed-loop runs (the cheapest
client per message: on a 2-core machine client and servers share the CPU). The participants are
scalpers and the market maker: in the default configuration institutions wait behind a fairness
latency floor by design. Each measurement is split into ``--rounds`` segments that alternate the
order of the servers:

* unary / streaming latency: order-to-ack time of NewOrder at a fixed offered rate (open loop,
  paced from a schedule; latency runs from the moment each request is handed to gRPC to its
  reply). The flow alternates buy and sell of the minimum quantity at the reference price with
  self-trade allowed, so every sell fills the preceding buy and the book stays at most one order
  deep. ``done/s`` below the offered rate means the server could not keep up (saturated): its
  latencies then grow with the run's length.
* throughput: the same flow over ``--streams`` concurrent sessions (one instrument each), each
  keeping ``--window`` requests outstanding; orders acknowledged per second.
* mass quotes: MassQuote messages of ``--quotes`` quotes spread over the 8 instruments (several
  price levels each, bids below and asks above the reference price, never crossing) from six
  participant accounts, 4 outstanding each, over unary calls and over sessions; orders entered
  per second (quote sides given an order id). Each message first cancels the account's previous
  quotes (not counted).

The run ends with the checks: every request answered, no reject and no RPC error (requests an
overloaded server refused unprocessed, HTTP/2 REFUSED_STREAM, are counted apart), and the hub's
final sequence number (Admin.GetStatus) covering every engine command the client caused (the rest
are the hub's own records, such as session open and close); the state digest is printed. Exit
status 1 if a check fails; the targets are reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from hub.auth import Authenticator, AuthInterceptor
from hub.cli import wait_for_stop
from hub.config import HubConfig
from hub.gc_policy import GcPolicy
from hub.machine import cpu_times, describe, python_loop_ns, steal_fraction
from hub.server import server_options
from hub.v1 import admin_pb2, admin_pb2_grpc, market_data_pb2, market_data_pb2_grpc
from hub.v1 import common_pb2 as cpb
from hub.v1 import order_entry_pb2 as oepb

OPERATOR_TOKEN = "dev-operator"
#: Order-flow participants: none of them waits behind a fairness latency floor (institutions do, by
#: design, in the default configuration), so every wait measured is the hub's own.
TRADER_TOKENS = ("dev-scalper-1", "dev-scalper-2", "dev-mm-1")
#: (token, account) of each mass-quote lane: quotes are kept per participant, account and instrument.
QUOTE_ACCOUNTS = (("dev-mm-1", 3001), ("dev-inst-1", 2001), ("dev-inst-1", 2002), ("dev-inst-2", 2003),
                  ("dev-scalper-1", 1001), ("dev-scalper-2", 1002))
SERVICE = "/hub.v1.OrderEntry/"
#: Measured variant -> server process it runs against.
VARIANT_SERVER = {"hub": "hub", "echo": "echo", "gateway": "gateway", "hub_memory": "hub_memory",
                  "echo_threaded": "echo_threaded"}
#: The ``--diagnose`` variants, in the order the steps between the echo and the hub add up.
DIAGNOSTIC_VARIANTS = ["gateway", "hub_memory", "echo_threaded"]
TARGETS = {"streaming_p50_ratio": 1.3, "streaming_p99_ratio": 2.0}
MIN_THROUGHPUT_RATIO = 0.8
MIN_MASS_QUOTE_ORDERS = 50_000
_READY = re.compile(r"serving on [^\s:]+:(\d+)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- WORKLOAD ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    reference_price: int
    tick_size: int
    quantity: int  # the smallest valid order quantity


def fetch_instruments(address: str) -> list[Instrument]:
    with grpc.insecure_channel(address) as channel:
        reply = market_data_pb2_grpc.MarketDataStub(channel).ListInstruments(
            market_data_pb2.ListInstrumentsRequest(), metadata=_metadata(TRADER_TOKENS[0]), timeout=10)
    return [Instrument(i.symbol, i.reference_price, i.tick_size, max(i.min_quantity, i.lot_size))
            for i in reply.instruments]


class OrderFlow:
    """Alternating buy / sell of one instrument at its reference price: each sell fills the buy before."""

    def __init__(self, inst: Instrument, tag: str) -> None:
        self.inst = inst
        self.tag = tag

    def body(self, i: int) -> oepb.NewOrderRequest:
        return oepb.NewOrderRequest(
            client_order_id=f"{self.tag}-{i}", symbol=self.inst.symbol, side=cpb.BUY if i % 2 == 0 else cpb.SELL,
            order_type=cpb.LIMIT, time_in_force=cpb.GTC, price=self.inst.reference_price,
            quantity=self.inst.quantity, stp_mode=cpb.STP_ALLOW)

    @staticmethod
    def commands(i: int) -> int:
        return 1


class QuoteFlow:
    """Mass quotes of one account: ``quotes`` quotes per message spread over the instruments in
    turn (several price levels per instrument), bids below and asks above the reference price, so
    nothing crosses; the levels move by a tick from one message to the next."""

    def __init__(self, instruments: list[Instrument], account: int, quotes: int) -> None:
        self.instruments = instruments
        self.account = account
        self.quotes = quotes
        self.sent_before = False  # each later message first cancels the quotes the previous one left

    def body(self, i: int) -> oepb.MassQuoteRequest:
        n = len(self.instruments)
        out = []
        for j in range(self.quotes):
            q, ticks = self.instruments[j % n], 1 + j // n + i % 2
            out.append(oepb.Quote(symbol=q.symbol, bid_price=q.reference_price - ticks * q.tick_size,
                                  bid_quantity=q.quantity, ask_price=q.reference_price + ticks * q.tick_size,
                                  ask_quantity=q.quantity))
        return oepb.MassQuoteRequest(account=self.account, quotes=out)

    def commands(self, i: int) -> int:
        entered = 2 * self.quotes
        cancels = entered if self.sent_before else 0
        self.sent_before = True
        return entered + cancels


class Flow(Protocol):
    def body(self, i: int) -> Message: ...

    def commands(self, i: int) -> int: ...


# -- ECHO SERVER ------------------------------------------------------------------------------


class EchoReplies:
    """Replies shaped like the hub's answers to the benchmark's requests, without a hub behind them."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)

    def _report(self, seq: int, ts: int, symbol: str, order_id: int, client_order_id: str,
                exec_type: int, side: int, price: int, **extra: Any) -> cpb.ExecutionReport:
        return cpb.ExecutionReport(sequence=seq, hub_time_ns=ts, symbol=symbol, order_id=order_id,
                                   client_order_id=client_order_id, account=1001, exec_type=exec_type,
                                   side=side, price=price, **extra)

    def order_reports(self, client_order_id: str, symbol: str, side: int, price: int,
                      quantity: int) -> tuple[int, int, list[cpb.ExecutionReport]]:
        """(sequence, hub time, reports) of the hub's answer to a new order in this workload."""
        seq, ts = next(self._seq), time.time_ns()
        coid, sym, px = client_order_id, symbol, price
        reports = [self._report(seq, ts, sym, seq, coid, cpb.EXEC_NEW, side, px, leaves_quantity=quantity)]
        if side == cpb.SELL:  # what the hub answers when the sell fills the resting buy
            other = cpb.BUY
            reports += [
                self._report(seq, ts, sym, seq - 1, coid, cpb.EXEC_TRADE, other, px, last_price=px,
                             last_quantity=quantity, trade_id=seq),
                self._report(seq, ts, sym, seq, coid, cpb.EXEC_TRADE, side, px, last_price=px,
                             last_quantity=quantity, trade_id=seq, aggressor=True),
                self._report(seq, ts, sym, seq - 1, coid, cpb.EXEC_FILLED, other, px),
                self._report(seq, ts, sym, seq, coid, cpb.EXEC_FILLED, side, px),
            ]
        return seq, ts, reports

    def order_ack(self, req: oepb.NewOrderRequest) -> oepb.OrderAck:
        seq, ts, reports = self.order_reports(req.client_order_id, req.symbol, req.side, req.price, req.quantity)
        return oepb.OrderAck(accepted=True, order_id=seq, client_order_id=req.client_order_id, sequence=seq,
                             hub_time_ns=ts, executions=reports)

    def mass_quote_ack(self, req: oepb.MassQuoteRequest) -> oepb.MassQuoteAck:
        ts = time.time_ns()
        acks, reports = [], []
        for q in req.quotes:  # the hub cancels the previous bid and ask, then enters the new ones
            seqs = [next(self._seq) for _ in range(4)]
            reports += [
                self._report(seqs[0], ts, q.symbol, seqs[0], "", cpb.EXEC_CANCELLED, cpb.BUY, q.bid_price,
                             cancel_reason=cpb.CANCEL_USER_REQUESTED),
                self._report(seqs[1], ts, q.symbol, seqs[1], "", cpb.EXEC_CANCELLED, cpb.SELL, q.ask_price,
                             cancel_reason=cpb.CANCEL_USER_REQUESTED),
                self._report(seqs[2], ts, q.symbol, seqs[2], "", cpb.EXEC_NEW, cpb.BUY, q.bid_price,
                             leaves_quantity=q.bid_quantity),
                self._report(seqs[3], ts, q.symbol, seqs[3], "", cpb.EXEC_NEW, cpb.SELL, q.ask_price,
                             leaves_quantity=q.ask_quantity),
            ]
            acks.append(oepb.QuoteAck(symbol=q.symbol, bid_order_id=seqs[2], ask_order_id=seqs[3]))
        return oepb.MassQuoteAck(accepted=True, quotes=acks, executions=reports)

    def session_reply(self, req: oepb.SessionRequest) -> oepb.SessionResponse:
        body = req.WhichOneof("body")
        if body == "new_order":
            return oepb.SessionResponse(request_id=req.request_id, order_ack=self.order_ack(req.new_order))
        if body == "mass_quote":
            return oepb.SessionResponse(request_id=req.request_id, mass_quote_ack=self.mass_quote_ack(req.mass_quote))
        return oepb.SessionResponse(request_id=req.request_id, heartbeat=req.heartbeat)


class EchoService:
    def __init__(self) -> None:
        self.replies = EchoReplies()

    def submit(self, request: oepb.NewOrderRequest, context: grpc.ServicerContext) -> oepb.OrderAck:
        return self.replies.order_ack(request)

    def mass_quote(self, request: oepb.MassQuoteRequest, context: grpc.ServicerContext) -> oepb.MassQuoteAck:
        return self.replies.mass_quote_ack(request)

    def session(self, request_iterator: Iterator[oepb.SessionRequest],
                context: grpc.ServicerContext) -> Iterator[oepb.SessionResponse]:
        """The bare floor: each reply is yielded by the handler thread that read the request."""
        yield oepb.SessionResponse(opened=oepb.SessionOpened(session_id="echo", participant_id="echo"))
        for req in request_iterator:
            yield self.replies.session_reply(req)


def build_echo_server(config: HubConfig) -> tuple[grpc.Server, int]:
    net = config.network
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=net.max_workers, thread_name_prefix="grpc"),
        interceptors=[AuthInterceptor(Authenticator(config))],
        options=server_options(config),
        maximum_concurrent_rpcs=net.max_concurrent_rpcs,
    )
    svc = EchoService()
    session_args = {"request_deserializer": oepb.SessionRequest.FromString,
                    "response_serializer": oepb.SessionResponse.SerializeToString}
    handlers = {
        "SubmitOrder": grpc.unary_unary_rpc_method_handler(
            svc.submit, request_deserializer=oepb.NewOrderRequest.FromString,
            response_serializer=oepb.OrderAck.SerializeToString),
        "MassQuote": grpc.unary_unary_rpc_method_handler(
            svc.mass_quote, request_deserializer=oepb.MassQuoteRequest.FromString,
            response_serializer=oepb.MassQuoteAck.SerializeToString),
        "Session": grpc.stream_stream_rpc_method_handler(svc.session, **session_args),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("hub.v1.OrderEntry", handlers),))
    port = server.add_insecure_port(f"{net.host}:{net.port}")
    if port == 0:
        raise OSError(f"cannot listen on {net.host}:{net.port}")
    return server, port


#: Pre-trade risk thresholds the bench's flow must not trip (the checks still run, and cost what they
#: cost): the default 50 orders/s per participant and instrument and 500 messages/s per session, and
#: the kill switch after 3 acks slower than 50 ms, which an overloaded hub trips by itself.
BENCH_RISK_RATES = {"orders_per_second": 1_000_000, "order_burst": 1_000_000,
                    "session_messages_per_second": 1_000_000, "session_burst": 1_000_000}
BENCH_RISK_BREAKERS = {"latency_threshold_ns": 3_600 * 10**9}


def bench_hub_config(port: int, data_dir: str) -> HubConfig:
    """``HubConfig.default()`` (what ``hub serve`` runs without --config) with the risk limits above."""
    config = replace(HubConfig.default().with_network(port=port), data_dir=data_dir)
    risk = getattr(config, "risk", None)
    if risk is not None:
        risk = replace(risk, rates=replace(risk.rates, **BENCH_RISK_RATES),
                       breakers=replace(risk.breakers, **BENCH_RISK_BREAKERS))
        config = replace(config, risk=risk)
    return config.validated()


def serve_hub(port: int, data_dir: str, in_memory: bool, gateway_only: bool = False) -> int:
    """The hub as ``hub serve`` runs it (durable ledger in ``data_dir``), with ``bench_hub_config``;
    ``in_memory`` (diagnostic): journaling in memory instead, to tell the ledger's share of the cost;
    ``gateway_only`` (diagnostic): nothing behind order entry (``hub.gateway_floor``)."""
    from hub.core import Hub
    from hub.gateway_floor import GatewayOnlyHub
    from hub.server import open_ledger_journal, run_server

    in_memory = in_memory or gateway_only  # its orders are never entered: a ledger would hold sessions only

    config = bench_hub_config(port, data_dir)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with run_server(config, None if in_memory else open_ledger_journal(config), gc_policy=GcPolicy.of(config),
                    hub_class=GatewayOnlyHub if gateway_only else Hub) as (_, bound):
        print(f"hub serving on {config.network.host}:{bound}", flush=True)
        wait_for_stop(stop)
    return 0


def serve_echo_threaded(port: int) -> int:
    config = HubConfig.default().with_network(port=port)
    server, bound = build_echo_server(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    GcPolicy.of(config).start()  # the hub's collector policy too: the same process settings
    print(f"echo_threaded serving on {config.network.host}:{bound}", flush=True)
    wait_for_stop(stop)
    server.stop(1).wait()
    return 0


# -- SERVER PROCESSES -------------------------------------------------------------------------


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[str]
    address: str
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the whole process so far (every thread)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(name: str, args: list[str], workdir: Path, timeout: float = 30.0) -> ServerProcess:
    """Start ``python <args>`` and wait for its 'serving on HOST:PORT' line."""
    log_path = workdir / f"{name}.log"
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    with log_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=err, text=True,
                                cwd=workdir, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = _READY.search(line)
        if match:
            return ServerProcess(name, proc, f"127.0.0.1:{match.group(1)}", log_path)
    proc.kill()
    raise RuntimeError(f"{name} did not start; its log:\n{log_path.read_text()[-2000:]}")


# -- CLIENT LANES -----------------------------------------------------------------------------

#: Called with (request id, reply body or the RPC's exception, reply size in bytes, receive time ns).
OnReply = Callable[[int, Any, int, int], None]


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def open_channel(address: str) -> grpc.Channel:
    """A channel with its own connection (gRPC otherwise shares subchannels between channels)."""
    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(channel).result(timeout=10)
    return channel


def _stream_request(request_id: int, body: Message) -> bytes:
    field = "new_order" if isinstance(body, oepb.NewOrderRequest) else "mass_quote"
    return oepb.SessionRequest(request_id=request_id, **{field: body}).SerializeToString()


class Lane(Protocol):
    def encode(self, request_id: int, body: Message) -> bytes: ...

    def send(self, request_id: int, payload: bytes) -> None: ...

    def close(self) -> None: ...


class UnaryLane:
    """Unary calls of one method, sent without waiting (``future``)."""

    def __init__(self, channel: grpc.Channel, method: str, reply_type: type[Message], token: str,
                 on_reply: OnReply) -> None:
        self._call = channel.unary_unary(SERVICE + method, request_serializer=None, response_deserializer=None)
        self._parse = reply_type.FromString
        self._metadata = _metadata(token)
        self._on_reply = on_reply

    def encode(self, request_id: int, body: Message) -> bytes:
        return body.SerializeToString()

    def send(self, request_id: int, payload: bytes) -> None:
        future = self._call.future(payload, metadata=self._metadata)
        future.add_done_callback(lambda f: self._done(request_id, f))

    def _done(self, request_id: int, future: grpc.Future) -> None:
        now = time.perf_counter_ns()
        try:
            raw = future.result()
        except grpc.RpcError as exc:
            self._on_reply(request_id, exc, 0, now)
            return
        self._on_reply(request_id, self._parse(raw), len(raw), now)

    def close(self) -> None:
        return None


class StreamLane:
    """One order session: requests are queued to gRPC, a reader thread routes replies by request id."""

    def __init__(self, channel: grpc.Channel, token: str, on_reply: OnReply, method: str = "Session") -> None:
        self._requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._on_reply = on_reply
        self._opened = threading.Event()
        call = channel.stream_stream(SERVICE + method, request_serializer=None, response_deserializer=None)
        self._call = call(iter(self._requests.get, None), metadata=_metadata(token))
        self._reader = threading.Thread(target=self._read, name="bench-reader", daemon=True)
        self._reader.start()
        if not self._opened.wait(10):
            self._call.cancel()
            raise RuntimeError(f"session did not open: {self._call.code()} {self._call.details()}")

    def encode(self, request_id: int, body: Message) -> bytes:
        return _stream_request(request_id, body)

    def send(self, request_id: int, payload: bytes) -> None:
        self._requests.put(payload)

    def _read(self) -> None:
        try:
            for raw in self._call:
                now = time.perf_counter_ns()
                resp = oepb.SessionResponse.FromString(raw)
                kind = resp.WhichOneof("body")
                if resp.request_id:
                    self._on_reply(resp.request_id, getattr(resp, kind or "order_ack"), len(raw), now)
                elif kind == "opened":
                    self._opened.set()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                log(f"session failed: {exc.code()} {exc.details()}")
        finally:
            self._opened.set()

    def close(self) -> None:
        self._requests.put(None)
        self._reader.join(10)
        if self._reader.is_alive():
            self._call.cancel()


# -- COLLECTING REPLIES -----------------------------------------------------------------------


@dataclass
class Tally:
    """What the server answered; ``commands`` is what the hub must have sequenced for it."""

    sent: int = 0
    replies: int = 0
    orders: int = 0
    rejected: int = 0
    refused: int = 0  # turned away unprocessed by an overloaded server (safe to retry)
    errors: int = 0
    reply_bytes: int = 0
    commands: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        for name in ("sent", "replies", "orders", "rejected", "refused", "errors", "reply_bytes", "commands"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.update(other.problems)

    def ok(self) -> bool:
        return self.replies == self.sent and not self.rejected and not self.errors


def refused_unprocessed(error: grpc.RpcError) -> bool:
    """HTTP/2 REFUSED_STREAM (the server's concurrent-stream limit) or gRPC's concurrent-RPC limit:
    the request never reached the handler. Counted apart from errors: it is overload, not a bug."""
    details = error.details() or ""
    return (error.code() == grpc.StatusCode.UNAVAILABLE and "error code 7" in details) or \
        error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "Concurrent RPC limit" in details


class Collector:
    """Counts and checks replies (from any thread); records each reply's time if told how many."""

    def __init__(self, expected: int = 0) -> None:
        self.tally = Tally()
        self.recv_ns = [0] * expected
        self._lock = threading.Lock()
        self._all_in = threading.Condition(self._lock)

    def on_reply(self, request_id: int, body: Any, nbytes: int, now: int) -> None:
        with self._lock:
            if not isinstance(body, grpc.RpcError) and request_id <= len(self.recv_ns):
                self.recv_ns[request_id - 1] = now
            self._check(body, nbytes)
            self._all_in.notify_all()

    def _check(self, body: Any, nbytes: int) -> None:
        t = self.tally
        t.replies += 1
        t.reply_bytes += nbytes
        if isinstance(body, grpc.RpcError):
            problem = f"rpc {body.code().name}: {(body.details() or '')[:80]}"
            if refused_unprocessed(body):
                t.refused += 1
            else:
                t.errors += 1
            t.problems[problem] += 1
        elif isinstance(body, oepb.OrderAck):
            if body.accepted:
                t.orders += 1
            else:
                t.rejected += 1
                t.problems[f"reject {cpb.RejectReason.Name(body.reject_reason)}"] += 1
        elif isinstance(body, oepb.MassQuoteAck):
            self._check_quotes(body)
        else:
            t.errors += 1
            t.problems[f"unexpected {type(body).__name__}"] += 1

    def _check_quotes(self, ack: oepb.MassQuoteAck) -> None:
        t = self.tally
        if not ack.accepted:
            t.rejected += 1
            t.problems[f"reject {cpb.RejectReason.Name(ack.reject_reason)}"] += 1
        for q in ack.quotes:
            for order_id, reason in ((q.bid_order_id, q.bid_reject_reason), (q.ask_order_id, q.ask_reject_reason)):
                if order_id:
                    t.orders += 1
                elif reason:
                    t.rejected += 1
                    t.problems[f"quote reject {cpb.RejectReason.Name(reason)}"] += 1

    def count_sent(self, commands: int) -> None:
        with self._lock:
            self.tally.sent += 1
            self.tally.commands += commands

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.tally.replies, self.tally.orders

    def wait_all(self, timeout: float) -> bool:
        with self._all_in:
            return self._all_in.wait_for(lambda: self.tally.replies >= self.tally.sent, timeout)


# -- RUNNERS ----------------------------------------------------------------------------------


@dataclass
class LatencySample:
    latencies_ns: list[int]
    late_sends: int
    tally: Tally
    seconds: float  # first send to last reply


@dataclass
class RateSample:
    orders: int
    replies: int
    seconds: float
    server_cpu: float
    client_cpu: float
    tally: Tally


def run_paced(make_lane: Callable[[OnReply], Lane], flow: Flow, first: int, count: int, rate: float) -> LatencySample:
    """Open loop: request i is sent at start + i / rate, whenever the replies come back."""
    collector = Collector(count)
    lane = make_lane(collector.on_reply)
    payloads = [lane.encode(i + 1, flow.body(first + i)) for i in range(count)]
    sent_ns = [0] * count
    interval, late = 1e9 / rate, 0
    start = time.perf_counter_ns() + 2_000_000
    for i, payload in enumerate(payloads):
        delay = start + int(i * interval) - time.perf_counter_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        elif delay < -1_000_000:
            late += 1
        collector.count_sent(flow.commands(first + i))
        sent_ns[i] = time.perf_counter_ns()
        lane.send(i + 1, payload)
    collector.wait_all(120)  # a saturated server is still draining its backlog
    lane.close()
    collector.tally.commands -= collector.tally.refused  # single orders: a refused one caused nothing
    done = [r - s for s, r in zip(sent_ns, collector.recv_ns, strict=True) if r]
    return LatencySample(done, late, collector.tally, (max(collector.recv_ns) - sent_ns[0]) / 1e9)


@dataclass(frozen=True, slots=True)
class LaneSpec:
    """One closed-loop lane: a connection of its own, one participant, one flow."""

    address: str
    mode: str  # "unary" or "streaming"
    method: str  # unary method, or the session method
    reply_type: type[Message]
    token: str
    flow: Flow


async def _unary_worker(call: Any, spec: LaneSpec, ids: Iterator[int], collector: Collector,
                        stop: asyncio.Event) -> None:
    metadata = _metadata(spec.token)
    while not stop.is_set():
        i = next(ids)
        collector.count_sent(spec.flow.commands(i))
        try:
            raw = await call(spec.flow.body(i).SerializeToString(), metadata=metadata)
        except grpc.RpcError as exc:
            collector.on_reply(i + 1, exc, 0, 0)
            continue
        collector.on_reply(i + 1, spec.reply_type.FromString(raw), len(raw), 0)


async def _unary_lane(channel: grpc.aio.Channel, spec: LaneSpec, window: int, collector: Collector,
                      stop: asyncio.Event) -> None:
    call = channel.unary_unary(SERVICE + spec.method, request_serializer=None, response_deserializer=None)
    ids = itertools.count()
    await asyncio.gather(*(_unary_worker(call, spec, ids, collector, stop) for _ in range(window)))


async def _stream_lane(channel: grpc.aio.Channel, spec: LaneSpec, window: int, collector: Collector,
                       stop: asyncio.Event) -> None:
    call = channel.stream_stream(SERVICE + spec.method, request_serializer=None,
                                 response_deserializer=None)(metadata=_metadata(spec.token))
    slots = asyncio.Semaphore(window)

    async def read() -> None:
        while (raw := await call.read()) is not grpc.aio.EOF:
            resp = oepb.SessionResponse.FromString(raw)
            if resp.request_id:
                collector.on_reply(resp.request_id, getattr(resp, resp.WhichOneof("body") or "order_ack"), len(raw), 0)
                slots.release()

    reader = asyncio.create_task(read())
    for i in itertools.count():
        await slots.acquire()
        if stop.is_set():
            break
        collector.count_sent(spec.flow.commands(i))
        await call.write(_stream_request(i + 1, spec.flow.body(i)))
    await call.done_writing()
    try:
        await reader
    except grpc.RpcError as exc:
        log(f"session failed: {exc.code()} {exc.details()}")


async def _run_lane(spec: LaneSpec, window: int, collector: Collector, stop: asyncio.Event) -> None:
    channel = grpc.aio.insecure_channel(spec.address, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        await asyncio.wait_for(channel.channel_ready(), 10)
        lane = _unary_lane if spec.mode == "unary" else _stream_lane
        await lane(channel, spec, window, collector, stop)
    finally:
        await channel.close()


async def _closed_loop(lanes: list[LaneSpec], window: int, seconds: float, warmup: float,
                       server: ServerProcess) -> RateSample:
    collector = Collector()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_run_lane(spec, window, collector, stop)) for spec in lanes]
    await asyncio.sleep(warmup)
    (r0, o0), t0, s0, c0 = collector.snapshot(), time.perf_counter(), server.cpu_seconds(), time.process_time()
    await asyncio.sleep(seconds)
    (r1, o1), t1, s1, c1 = collector.snapshot(), time.perf_counter(), server.cpu_seconds(), time.process_time()
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    elapsed = t1 - t0
    return RateSample(o1 - o0, r1 - r0, elapsed, (s1 - s0) / elapsed, (c1 - c0) / elapsed, collector.tally)


def run_closed(lanes: list[LaneSpec], window: int, seconds: float, warmup: float, server: ServerProcess) -> RateSample:
    """Closed loop (asyncio client, the cheapest per message): every lane keeps ``window`` requests
    outstanding; the replies of ``seconds`` after a ``warmup`` are counted."""
    return asyncio.run(_closed_loop(lanes, window, seconds, warmup, server))


# -- THE BENCHMARK ----------------------------------------------------------------------------


@dataclass
class Settings:
    duration: float
    rate: float
    streams: int
    window: int
    quote_window: int
    quotes: int
    rounds: int
    warmup: float
    diagnose: bool  # also DIAGNOSTIC_VARIANTS: the gateway alone, the hub journaling in memory, the threaded echo


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[index])


def latency_stats(samples: list[LatencySample]) -> dict[str, float]:
    values = sorted(v for s in samples for v in s.latencies_ns)
    tally = Tally()
    for s in samples:
        tally.merge(s.tally)
    us = 1e-3
    return {
        "p50_us": percentile(values, 50) * us, "p90_us": percentile(values, 90) * us,
        "p99_us": percentile(values, 99) * us, "p999_us": percentile(values, 99.9) * us,
        "max_us": (values[-1] if values else 0) * us,
        "mean_us": (sum(values) / len(values) if values else 0) * us,
        "count": len(values), "late_sends": sum(s.late_sends for s in samples),
        "achieved_per_s": len(values) / max(1e-9, sum(s.seconds for s in samples)),
        "reply_bytes_mean": tally.reply_bytes / max(1, tally.replies - tally.refused - tally.errors),
    }


def rate_stats(samples: list[RateSample]) -> dict[str, float]:
    seconds = sum(s.seconds for s in samples)
    replies = sum(s.replies for s in samples)
    tally = Tally()
    for s in samples:
        tally.merge(s.tally)
    return {
        "orders_per_s": sum(s.orders for s in samples) / seconds,
        "messages_per_s": replies / seconds,
        "server_cpu_cores": sum(s.server_cpu * s.seconds for s in samples) / seconds,
        "client_cpu_cores": sum(s.client_cpu * s.seconds for s in samples) / seconds,
        "reply_bytes_mean": tally.reply_bytes / max(1, tally.replies - tally.refused - tally.errors),
        "seconds": seconds,
    }


class Bench:
    def __init__(self, settings: Settings, servers: dict[str, ServerProcess], instruments: list[Instrument]) -> None:
        self.s = settings
        self.servers = servers
        self.instruments = instruments
        self.by_symbol = {i.symbol: i for i in instruments}
        self.tallies: dict[str, Tally] = {name: Tally() for name in servers}
        self._channels: dict[tuple[str, int], grpc.Channel] = {}
        self._next_flow = itertools.count()
        self.quote_flows: dict[tuple[str, str, int], QuoteFlow] = {}

    def channel(self, target: str, index: int) -> grpc.Channel:
        key = (target, index)
        if key not in self._channels:
            self._channels[key] = open_channel(self.servers[target].address)
        return self._channels[key]

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def _order_flow(self, symbol: str) -> OrderFlow:
        return OrderFlow(self.by_symbol[symbol], f"bench{next(self._next_flow)}")

    def _record(self, variant: str, tally: Tally) -> None:
        self.tallies[VARIANT_SERVER[variant]].merge(tally)

    def _rotation(self, variants: list[str], r: int) -> list[str]:
        """The round's order: the floor first in even rounds, reversed in odd ones."""
        return variants if r % 2 == 0 else variants[::-1]

    def _variants(self) -> list[str]:
        return ["echo", "hub"] + (DIAGNOSTIC_VARIANTS if self.s.diagnose else [])

    # -- latency

    def latency(self, mode: str) -> dict[str, dict[str, float]]:
        per_round = max(1, int(self.s.rate * self.s.duration / self.s.rounds))
        warm = max(50, int(self.s.rate * self.s.warmup))
        variants = self._variants()
        samples: dict[str, list[LatencySample]] = {v: [] for v in variants}
        for r in range(self.s.rounds):
            for variant in self._rotation(variants, r):
                flow = self._order_flow("AAPL")
                make_lane = self._lane_factory(mode, variant, 0, TRADER_TOKENS[0 if mode == "unary" else 1])
                self._record(variant, run_paced(make_lane, flow, 0, warm, self.s.rate).tally)
                sample = run_paced(make_lane, flow, warm, per_round, self.s.rate)
                self._record(variant, sample.tally)
                samples[variant].append(sample)
                log(f"  {mode:9} {variant:12} round {r + 1}: p50 {latency_stats([sample])['p50_us']:.0f} us"
                    f"{_trouble(sample.tally)}")
        return {v: latency_stats(s) for v, s in samples.items()}

    def _lane_factory(self, mode: str, variant: str, index: int, token: str,
                      method: str = "SubmitOrder", reply: type[Message] = oepb.OrderAck) -> Callable[[OnReply], Lane]:
        channel = self.channel(VARIANT_SERVER[variant], index)
        if mode == "unary":
            return lambda on_reply: UnaryLane(channel, method, reply, token, on_reply)
        return lambda on_reply: StreamLane(channel, token, on_reply, "Session")

    # -- throughput

    def throughput(self) -> dict[str, dict[str, float]]:
        samples: dict[str, list[RateSample]] = {v: [] for v in self._variants()}
        for r in range(self.s.rounds):
            for target in self._rotation(self._variants(), r):
                address = self.servers[target].address
                lanes = [LaneSpec(address, "streaming", "Session", oepb.OrderAck, TRADER_TOKENS[i % len(TRADER_TOKENS)],
                                  self._order_flow(self.instruments[i % len(self.instruments)].symbol))
                         for i in range(self.s.streams)]
                sample = run_closed(lanes, self.s.window, self.s.duration / self.s.rounds, self.s.warmup,
                                    self.servers[target])
                self._record(target, sample.tally)
                samples[target].append(sample)
                log(f"  throughput {target:10} round {r + 1}: {sample.orders / sample.seconds:,.0f} orders/s"
                    f"{_trouble(sample.tally)}")
        return {t: rate_stats(s) for t, s in samples.items()}

    # -- mass quotes

    def mass_quotes(self, mode: str) -> dict[str, dict[str, float]]:
        samples: dict[str, list[RateSample]] = {v: [] for v in self._variants()}
        for r in range(self.s.rounds):
            for target in self._rotation(self._variants(), r):
                address = self.servers[target].address
                method = "MassQuote" if mode == "unary" else "Session"
                lanes = [LaneSpec(address, mode, method, oepb.MassQuoteAck, token, self._quote_flow(target, token, account))
                         for token, account in QUOTE_ACCOUNTS]
                sample = run_closed(lanes, self.s.quote_window, self.s.duration / self.s.rounds, self.s.warmup,
                                    self.servers[target])
                self._record(target, sample.tally)
                samples[target].append(sample)
                log(f"  quotes {mode:9} {target:10} round {r + 1}: {sample.orders / sample.seconds:,.0f} orders/s"
                    f"{_trouble(sample.tally)}")
        return {t: rate_stats(s) for t, s in samples.items()}

    def _quote_flow(self, target: str, token: str, account: int) -> QuoteFlow:
        """One flow per account and server for the whole run: its first message replaces no quotes."""
        key = (target, token, account)
        if key not in self.quote_flows:
            self.quote_flows[key] = QuoteFlow(self.instruments, account, self.s.quotes)
        return self.quote_flows[key]


def _trouble(tally: Tally) -> str:
    return f" ({dict(tally.problems)})" if tally.problems else ""


def hub_status(address: str) -> admin_pb2.HubStatus:
    with grpc.insecure_channel(address) as channel:
        return admin_pb2_grpc.AdminStub(channel).GetStatus(admin_pb2.StatusRequest(),
                                                           metadata=_metadata(OPERATOR_TOKEN), timeout=10)


def ratio(hub: float, floor: float) -> float:
    return hub / floor if floor else 0.0


def summarise(results: dict[str, Any], bench: Bench, status: admin_pb2.HubStatus) -> dict[str, Any]:
    uni, stream, tput = results["unary"], results["streaming"], results["throughput"]
    mq_unary = results["mass_quote_unary"]["hub"]["orders_per_s"]
    mq_session = results["mass_quote_session"]["hub"]["orders_per_s"]
    hub_t, echo_t = bench.tallies["hub"], bench.tallies["echo"]
    checks = {  # refusals (overload, never processed) are answers but not acks: reported, not failures
        "hub_every_request_answered": hub_t.replies == hub_t.sent,
        "hub_no_rejects_or_errors": not hub_t.rejected and not hub_t.errors,
        "echo_all_acknowledged": echo_t.ok(),
        "hub_sequenced_every_command": status.last_sequence >= hub_t.commands,
    }
    for variant in DIAGNOSTIC_VARIANTS:
        if variant in bench.tallies:
            checks[f"{variant}_all_acknowledged"] = bench.tallies[variant].ok()
    summary = {
        "unary_p50_ratio": ratio(uni["hub"]["p50_us"], uni["echo"]["p50_us"]),
        "unary_p99_ratio": ratio(uni["hub"]["p99_us"], uni["echo"]["p99_us"]),
        "streaming_p50_ratio": ratio(stream["hub"]["p50_us"], stream["echo"]["p50_us"]),
        "streaming_p99_ratio": ratio(stream["hub"]["p99_us"], stream["echo"]["p99_us"]),
        "throughput_ratio": ratio(tput["hub"]["orders_per_s"], tput["echo"]["orders_per_s"]),
        "mass_quote_orders_per_s": max(mq_unary, mq_session),
        "mass_quote_unary_orders_per_s": mq_unary,
        "mass_quote_session_orders_per_s": mq_session,
    }
    summary["targets_met"] = {
        "streaming_p50_ratio<=1.3": summary["streaming_p50_ratio"] <= TARGETS["streaming_p50_ratio"],
        "streaming_p99_ratio<=2": summary["streaming_p99_ratio"] <= TARGETS["streaming_p99_ratio"],
        "throughput_ratio>=0.8": summary["throughput_ratio"] >= MIN_THROUGHPUT_RATIO,
        "mass_quote_orders_per_s>=50000": summary["mass_quote_orders_per_s"] >= MIN_MASS_QUOTE_ORDERS,
    }
    summary["correctness"] = {
        "ok": all(checks.values()), **checks,
        "hub_requests": hub_t.sent, "hub_replies": hub_t.replies, "hub_orders_entered": hub_t.orders,
        "hub_acks": hub_t.replies - hub_t.refused - hub_t.errors, "hub_refused_overload": hub_t.refused,
        "hub_rejected": hub_t.rejected, "hub_rpc_errors": hub_t.errors, "problems": dict(hub_t.problems + echo_t.problems),
        "echo_requests": echo_t.sent, "echo_replies": echo_t.replies,
        "commands_caused": hub_t.commands, "last_sequence": status.last_sequence,
        "other_sequenced_records": status.last_sequence - hub_t.commands,
        "state_digest": status.state_digest,
        "resting_orders": sum(e.resting_orders for e in status.engines),
    }
    return summary


def run(settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        workdir = Path(tmp)
        servers: dict[str, ServerProcess] = {}
        try:
            servers["hub"] = start_server("hub", ["-m", "hub.bench", "--serve-hub", "--data-dir", str(workdir / "data")],
                                          workdir)
            servers["echo"] = start_server("echo", ["-m", "hub.bench", "--serve-echo"], workdir)
            if settings.diagnose:
                servers["gateway"] = start_server("gateway", ["-m", "hub.bench", "--serve-hub", "--in-memory",
                                                              "--gateway-only"], workdir)
                servers["hub_memory"] = start_server("hub_memory", ["-m", "hub.bench", "--serve-hub", "--in-memory"],
                                                     workdir)
                servers["echo_threaded"] = start_server("echo_threaded", ["-m", "hub.bench", "--serve-echo-threaded"],
                                                        workdir)
            log(", ".join(f"{name} on {p.address} (pid {p.proc.pid})" for name, p in servers.items()))
            result = _measure(settings, servers)
        finally:
            for server in servers.values():
                server.stop()
        if not result["correctness"]["ok"]:
            log(f"hub log (tail):\n{servers['hub'].log_path.read_text()[-4000:]}")
        return result


def _measure(settings: Settings, servers: dict[str, ServerProcess]) -> dict[str, Any]:
    bench = Bench(settings, servers, fetch_instruments(servers["hub"].address))
    cpu_before = cpu_times()
    gc.collect()
    gc.disable()  # the client's own collector pauses would land in the latencies of both sides
    try:
        results: dict[str, Any] = {}
        for name, measure in (("unary", lambda: bench.latency("unary")),
                              ("streaming", lambda: bench.latency("streaming")),
                              ("throughput", bench.throughput),
                              ("mass_quote_unary", lambda: bench.mass_quotes("unary")),
                              ("mass_quote_session", lambda: bench.mass_quotes("streaming"))):
            log(f"{name} ...")
            results[name] = measure()
            gc.collect()
    finally:
        gc.enable()
        bench.close()
    stolen = steal_fraction(cpu_before, cpu_times())
    status = hub_status(servers["hub"].address)
    settings_dict = {k: getattr(settings, k) for k in Settings.__dataclass_fields__}
    return {**summarise(results, bench, status), **results,
            "settings": {**settings_dict, "cpus": os.cpu_count(), "python_loop_ns": python_loop_ns(),
                         "cpu_steal_fraction": stolen}}


# -- REPORT -----------------------------------------------------------------------------------


def format_report(r: dict[str, Any]) -> str:
    offered = r["settings"]["rate"]
    lines = [f"order-to-ack latency at {offered:,.0f} orders/s offered, open loop (us; done/s below the offered rate: saturated)",
             f"  {'':22}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'max':>9}{'count':>8}{'done/s':>8}{'late':>6}"
             f"{'bytes':>7}"]
    for mode in ("unary", "streaming"):
        for variant, s in r[mode].items():
            lines.append(f"  {mode + ' ' + variant:22}{s['p50_us']:9.0f}{s['p90_us']:9.0f}{s['p99_us']:9.0f}"
                         f"{s['p999_us']:9.0f}{s['max_us']:9.0f}{s['count']:8d}{s['achieved_per_s']:8.0f}"
                         f"{s['late_sends']:6d}{s['reply_bytes_mean']:7.0f}")
    lines += ["", "sustained rate (closed loop)",
              f"  {'':28}{'orders/s':>11}{'msgs/s':>10}{'srv cpu':>9}{'cli cpu':>9}{'bytes':>7}"]
    for name in ("throughput", "mass_quote_unary", "mass_quote_session"):
        for target, s in r[name].items():
            lines.append(f"  {name + ' ' + target:28}{s['orders_per_s']:11,.0f}{s['messages_per_s']:10,.0f}"
                         f"{s['server_cpu_cores']:9.2f}{s['client_cpu_cores']:9.2f}{s['reply_bytes_mean']:7.0f}")
    lines += ["", "hub / echo floor"]
    for key in ("unary_p50_ratio", "unary_p99_ratio", "streaming_p50_ratio", "streaming_p99_ratio", "throughput_ratio"):
        lines.append(f"  {key:28}{r[key]:8.2f}")
    lines.append(f"  {'mass_quote_orders_per_s':28}{r['mass_quote_orders_per_s']:8,.0f}")
    lines += ["", "targets"] + [f"  {k:34}{'met' if v else 'MISSED'}" for k, v in r["targets_met"].items()]
    c = r["correctness"]
    lines += ["", f"correctness: {'ok' if c['ok'] else 'FAILED'}",
              f"  hub: {c['hub_requests']} requests, {c['hub_acks']} acks, {c['hub_orders_entered']} orders entered, "
              f"{c['hub_rejected']} rejected, {c['hub_rpc_errors']} RPC errors, {c['hub_refused_overload']} refused "
              f"unprocessed (overload); echo: {c['echo_requests']} requests, {c['echo_replies']} replies",
              f"  final sequence {c['last_sequence']}: {c['commands_caused']} engine commands caused by the bench, "
              f"{c['other_sequenced_records']} other records (session open/close...)",
              f"  {c['resting_orders']} resting orders, state digest {c['state_digest']}"]
    if c["problems"]:
        lines.append(f"  problems: {c['problems']}")
    lines += ["", describe(r["settings"]["python_loop_ns"], r["settings"]["cpu_steal_fraction"])]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hub.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per server and measurement")
    p.add_argument("--rate", type=float, default=1000.0, help="offered orders/s of the latency runs")
    p.add_argument("--streams", type=int, default=4, help="concurrent sessions of the throughput run")
    p.add_argument("--window", type=int, default=32, help="outstanding orders per throughput session")
    p.add_argument("--quote-window", type=int, default=4, help="outstanding mass quotes per account")
    p.add_argument("--quotes", type=int, default=100, help="quotes per MassQuote message (2 orders each)")
    p.add_argument("--rounds", type=int, default=4, help="alternating hub / echo segments per measurement")
    p.add_argument("--diagnose", action="store_true",
                   help="also measure gateway (the hub's server with nothing behind order entry), hub_memory "
                        "(the hub with an in-memory journal instead of the ledger) and echo_threaded (the echo "
                        "on the threaded grpc.server, the gateway's earlier server model)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quick", action="store_true", help="a few seconds in all (smoke test)")
    p.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve-echo-threaded", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve-hub", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--gateway-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", default="hub-data", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(duration=0.6, rate=min(args.rate, 200.0), streams=min(args.streams, 2), window=args.window,
                        quote_window=args.quote_window, quotes=min(args.quotes, 16), rounds=1, warmup=0.2,
                        diagnose=False)
    return Settings(duration=args.duration, rate=args.rate, streams=args.streams, window=args.window,
                    quote_window=args.quote_window, quotes=args.quotes, rounds=max(1, args.rounds), warmup=0.5,
                    diagnose=args.diagnose)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_echo:
        from hub.echo_aio import serve_echo_aio

        return serve_echo_aio(args.port)
    if args.serve_echo_threaded:
        return serve_echo_threaded(args.port)
    if args.serve_hub:
        return serve_hub(args.port, args.data_dir, args.in_memory, args.gateway_only)
    result = run(settings_from(args))
    print(json.dumps(result, sort_keys=True) if args.json else format_report(result), flush=True)
    return 0 if result["correctness"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
