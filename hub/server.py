"""Build and run the gRPC server: services, auth interceptor, limits, TLS, health, reflection."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hub.auth import Authenticator, AuthInterceptor
from hub.config import HubConfig
from hub.core import Hub
from hub.gc_policy import GcPolicy
from hub.journal import Journal
from hub.ledger_service import LedgerService
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


def build_server(config: HubConfig, hub: Hub) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A started-but-not-serving server: health says NOT_SERVING until ``mark_serving``."""
    auth = Authenticator(config)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.network.max_workers, thread_name_prefix="grpc"),
        interceptors=[AuthInterceptor(auth)],
        options=server_options(config),
        maximum_concurrent_rpcs=config.network.max_concurrent_rpcs,
    )
    order_entry_pb2_grpc.add_OrderEntryServicer_to_server(OrderEntryService(hub, auth), server)
    market_data_pb2_grpc.add_MarketDataServicer_to_server(MarketDataService(hub, auth), server)
    account_pb2_grpc.add_AccountServicer_to_server(AccountService(hub, auth), server)
    admin_pb2_grpc.add_AdminServicer_to_server(AdminService(hub, auth), server)
    ledger_pb2_grpc.add_LedgerServicer_to_server(LedgerService(hub), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{config.network.host}:{config.network.port}"
    credentials = _credentials(config)
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return server, port, health_servicer


def mark_serving(health_servicer: health.HealthServicer, serving: bool = True) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, status)


def open_ledger_journal(config: HubConfig):
    """The durable journal the configuration asks for (SQLite in the data directory by default)."""
    from ledger.store import open_ledger

    led = config.ledger
    return open_ledger(config.data_dir, led.url, led.durability, key_name=led.key_name, origin=led.origin,
                       checkpoint_every=led.checkpoint_every, checkpoint_interval_s=led.checkpoint_interval_ms / 1000,
                       post_quantum=led.post_quantum)


@contextlib.contextmanager
def run_server(config: HubConfig, journal: Journal | None = None, grace: float = 2.0,
               gc_policy: GcPolicy | None = None) -> Iterator[tuple[Hub, int]]:
    """Run a hub until the block exits; yields (hub, port). Port 0 in the config picks a free one.
    ``gc_policy``: the process's collector policy, for a process that serves (``hub serve``), not
    for one that embeds a hub among other work (tests).

    With a durable journal the hub first replays it (health NOT_SERVING, commands UNAVAILABLE until
    the rebuilt state matches the last signed checkpoint). Without one it journals in memory."""
    from hub.recovery import recover
    from ledger.store import LedgerStore

    hub = Hub(config, journal)
    hub.accepting = False
    hub.gc_policy = gc_policy
    server, port, health_servicer = build_server(config, hub)
    server.start()
    recovered = False
    try:
        if isinstance(hub.journal, LedgerStore):
            hub.recovery = recover(hub, hub.journal)
        recovered = True
        hub.accepting = True
        hub.start_checkpointer()
        if gc_policy is not None:
            gc_policy.start()  # after the replay: the recovered state is frozen with the rest
        mark_serving(health_servicer)
        log.info("hub serving on %s:%d", config.network.host, port)
        yield hub, port
    finally:
        mark_serving(health_servicer, False)
        if recovered:
            with contextlib.suppress(Exception):
                hub.drain_risk_cancels()  # cancels a kill switch asked for are sequenced before we stop
        hub.accepting = False
        server.stop(grace).wait()
        hub.stop_checkpointer()
        if gc_policy is not None:
            gc_policy.stop()
        if recovered:  # never sign a state that failed to rebuild: the checkpoint would poison the ledger
            try:
                hub.checkpoint_now()
            except Exception:  # noqa: BLE001 - storage down: the next start signs the unsigned tail
                log.exception("could not close the last ledger block at stop")
        hub.journal.close()
