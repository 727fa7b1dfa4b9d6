"""Fixtures of the integration tier: a real hub on 127.0.0.1 (free port) and authenticated clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from compliance.risk import InstrumentRiskConfig
from hub.client import HubClient
from hub.config import HubConfig
from hub.core import Hub
from hub.server import run_server
from tests.integration.support import HOST, token


@dataclass
class RunningHub:
    hub: Hub
    port: int
    config: HubConfig

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"


def gateway_config(base: HubConfig | None = None) -> HubConfig:
    """The embedded defaults with two risk controls opened up, the order-rate throttle (50/s) and
    the price band (5 %): they have tests of their own, and these push thousands of orders at
    prices far from the reference through the gateway."""
    base = base or HubConfig.default()
    risk = base.risk.with_(
        rates=replace(base.risk.rates, orders_per_second=10**6, order_burst=10**6,
                      session_messages_per_second=10**6, session_burst=10**6),
        instruments=tuple(InstrumentRiskConfig(instrument_id=i.instrument_id, price_band_bps=10_000)
                          for i in base.instruments))
    return replace(base, risk=risk)


def default_config() -> HubConfig:
    return gateway_config().with_network(host=HOST, port=0)


@pytest.fixture
def start_hub() -> Iterator[Callable[[HubConfig], RunningHub]]:
    """Start hubs with a given config; every one is stopped at teardown."""
    stack = []

    def start(config: HubConfig | None = None) -> RunningHub:
        cm = run_server(config or default_config(), grace=0.5)
        hub, port = cm.__enter__()
        stack.append(cm)
        return RunningHub(hub, port, config or default_config())

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def server(start_hub) -> RunningHub:
    """A fresh hub with the default configuration (function scope: tests never share books)."""
    return start_hub()


@pytest.fixture
def connect(server: RunningHub) -> Iterator[Callable[..., HubClient]]:
    """``connect("scalper-1")``: a client authenticated with that participant's dev token
    (``token=`` overrides it); all are closed before the hub stops."""
    clients: list[HubClient] = []

    def make(participant: str = "", *, token_value: str | None = None, target: str | None = None,
             **kwargs) -> HubClient:
        kwargs.setdefault("timeout", 10.0)
        client = HubClient(target or server.target, token_value if token_value is not None else token(participant),
                           **kwargs)
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.close()
