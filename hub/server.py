"""Build and run the gRPC server: services, auth interceptor, limits, TLS, health, reflection.

The server is grpc.aio, on one event loop in its own thread (``GatewayLoop``): the threaded
server woke four to six threads per order, and on this 2-core VM a wake-up costs more than the
hub's own work for an order (see ``hub.service`` for what runs where)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hub.auth import AioAuthInterceptor, Authenticator
from hub.config import HubConfig
from hub.core import Hub
from hub.gc_policy import GcPolicy
from hub.journal import Journal
from hub.ledger_service import LedgerService
from hub.loop_bridge import LoopCommitter, Offload
from hub.service import AccountService, AdminService, MarketDataService, OrderEntryService
from hub.v1 import (
    account_pb2,
    account_pb2_grpc,
    admin_pb2,
    admin_pb2_grpc,
    ledger_pb2,
    ledger_pb2_grpc,
    market_data_pb2,
    market_data_pb2_grpc,
    order_entry_pb2,
    order_entry_pb2_grpc,
)

log = logging.getLogger("hub.server")
T = TypeVar("T")

SERVICE_NAMES = (
    order_entry_pb2.DESCRIPTOR.services_by_name["OrderEntry"].full_name,
    market_data_pb2.DESCRIPTOR.services_by_name["MarketData"].full_name,
    account_pb2.DESCRIPTOR.services_by_name["Account"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    ledger_pb2.DESCRIPTOR.services_by_name["Ledger"].full_name,
)


def server_options(config: HubConfig) -> list[tuple[str, int]]:
    """Explicit limits: message size, HTTP/2 streams, keepalive enforcement."""
    net = config.network
    return [
        ("grpc.max_receive_message_length", net.max_message_bytes),
        ("grpc.max_send_message_length", net.max_message_bytes),
        ("grpc.max_concurrent_streams", net.max_concurrent_streams),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", net.keepalive_min_ping_interval_ms),
        ("grpc.http2.max_ping_strikes", net.keepalive_max_ping_strikes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.so_reuseport", 0),
    ]


def _credentials(config: HubConfig) -> grpc.ServerCredentials | None:
    net = config.network
    if not net.tls_cert:
        return None
    pair = [(Path(net.tls_key).read_bytes(), Path(net.tls_cert).read_bytes())]
    if net.tls_client_ca:
        return grpc.ssl_server_credentials(pair, root_certificates=Path(net.tls_client_ca).read_bytes(),
                                           require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


class GatewayLoop:
    """The gateway's asyncio event loop on its own thread: it serves every gRPC call (grpc.aio) and
    runs the hub's order-entry hot path inline. Blocking work goes to the worker pool."""

    def __init__(self, workers: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway-pool")
        self._thread = threading.Thread(target=self._run, name="gateway-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result from this (another) thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for the loop's tasks to end: after the server stops, session
        readers still close their sessions (cancel-on-disconnect) before the journal closes."""

        async def wait_for_tasks() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)

        self.call(wait_for_tasks())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.pool.shutdown(wait=True, cancel_futures=True)
        if not self._thread.is_alive():
            self.loop.close()


async def build_server(config: HubConfig, hub: Hub, pool: futures.ThreadPoolExecutor,
                       ) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """A started-but-not-serving server (run on the gateway loop): health says NOT_SERVING until
    ``mark_serving``."""
    auth = Authenticator(config)
    server = grpc.aio.server(
        interceptors=[AioAuthInterceptor(auth)],
        options=server_options(config),
        maximum_concurrent_rpcs=config.network.max_concurrent_rpcs,
    )
    offload = Offload(pool)
    committer = LoopCommitter(hub.journal, offload)
    order_entry_pb2_grpc.add_OrderEntryServicer_to_server(OrderEntryService(hub, auth, committer, offload), server)
    market_data_pb2_grpc.add_MarketDataServicer_to_server(MarketDataService(hub, auth, committer, offload), server)
    account_pb2_grpc.add_AccountServicer_to_server(AccountService(hub, auth, committer, offload), server)
    admin_pb2_grpc.add_AdminServicer_to_server(AdminService(hub, auth, offload), server)
    ledger_pb2_grpc.add_LedgerServicer_to_server(LedgerService(hub, auth, offload), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await mark_serving(health_servicer, False)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{config.network.host}:{config.network.port}"
    credentials = _credentials(config)
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, port, health_servicer


async def mark_serving(health_servicer: health.aio.HealthServicer, serving: bool = True) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, status)


def open_ledger_journal(config: HubConfig):
    """The durable journal the configuration asks for (SQLite in the data directory by default)."""
    from ledger.store import open_ledger

    led = config.ledger
    return open_ledger(config.data_dir, led.url, led.durability, key_name=led.key_name, origin=led.origin,
                       checkpoint_every=led.checkpoint_every, checkpoint_interval_s=led.checkpoint_interval_ms / 1000,
                       post_quantum=led.post_quantum, applier=led.applier)


@contextlib.contextmanager
def run_server(config: HubConfig, journal: Journal | None = None, grace: float = 2.0,
               gc_policy: GcPolicy | None = None, hub_class: type[Hub] = Hub) -> Iterator[tuple[Hub, int]]:
    """Run a hub until the block exits; yields (hub, port). Port 0 in the config picks a free one.
    ``gc_policy``: the process's collector policy, for a process that serves (``hub serve``), not
    for one that embeds a hub among other work (tests). ``hub_class``: the benchmark's diagnostic
    floor (``hub.gateway_floor``) serves a hub that answers without entering anything.

    With a durable journal the hub first replays it (health NOT_SERVING, commands UNAVAILABLE until
    the rebuilt state matches the last signed checkpoint). Without one it journals in memory."""
    from hub.recovery import recover
    from ledger.store import LedgerStore

    hub = hub_class(config, journal)
    hub.accepting = False
    hub.gc_policy = gc_policy
    gateway = GatewayLoop(config.network.max_workers)
    try:
        server, port, health_servicer = gateway.call(build_server(config, hub, gateway.pool))
    except BaseException:
        gateway.close()
        raise
    recovered = False
    try:
        if isinstance(hub.journal, LedgerStore):
            hub.recovery = recover(hub, hub.journal)
        recovered = True
        hub.accepting = True
        hub.start_checkpointer()
        if gc_policy is not None:
            gc_policy.start()  # after the replay: the recovered state is frozen with the rest
        gateway.call(mark_serving(health_servicer))
        log.info("hub serving on %s:%d", config.network.host, port)
        yield hub, port
    finally:
        gateway.call(mark_serving(health_servicer, False))
        if recovered:
            with contextlib.suppress(Exception):
                hub.drain_risk_cancels()  # cancels a kill switch asked for are sequenced before we stop
        hub.accepting = False
        gateway.call(server.stop(grace))
        gateway.drain(5.0)
        gateway.close()
        hub.stop_checkpointer()
        if gc_policy is not None:
            gc_policy.stop()
        if recovered:  # never sign a state that failed to rebuild: the checkpoint would poison the ledger
            try:
                hub.checkpoint_now()
            except Exception:  # noqa: BLE001 - storage down: the next start signs the unsigned tail
                log.exception("could not close the last ledger block at stop")
        hub.journal.close()
