"""Fixtures of the hub-level risk tier: in-process hubs on a fake clock (stopped at teardown) and
real gRPC servers on a durable ledger in a temporary data directory (restartable)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from compliance.risk import RiskConfig
from hub.client import HubClient
from hub.config import HubConfig
from hub.core import Hub
from hub.server import open_ledger_journal, run_server
from tests.risk.support import FakeClock, RiskHub, hub_config


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., RiskHub]]:
    """``make_hub(risk_config, durable=False)``: a real hub on a fresh ``FakeClock``; durable hubs
    write the SQLite ledger of a per-hub directory under ``tmp_path``."""
    made: list[RiskHub] = []

    def make(risk: RiskConfig | None = None, *, durable: bool = False, clock: FakeClock | None = None) -> RiskHub:
        data_dir = tmp_path / f"hub-{len(made)}" if durable else None
        rh = RiskHub(hub_config(risk, data_dir), clock, durable)
        made.append(rh)
        return rh

    yield make
    for rh in made:
        with contextlib.suppress(Exception):
            rh.stop()


def grpc_config(risk: RiskConfig, data_dir: Path) -> HubConfig:
    """A served hub: loopback, free port, default fairness (real clock), durable ledger in ``data_dir``."""
    return replace(HubConfig.default(), risk=risk, data_dir=str(data_dir)).with_network(host="127.0.0.1", port=0)


class Served:
    """A real hub (``run_server``) on the durable ledger of one data directory; ``restart()`` stops it
    and starts a new one on the same directory (which replays the ledger before it serves)."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self._cm = None
        self.hub: Hub | None = None
        self.port = 0
        self.clients: list[HubClient] = []
        self.start()

    def start(self) -> None:
        self._cm = run_server(self.config, open_ledger_journal(self.config), grace=0.5)
        self.hub, self.port = self._cm.__enter__()

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.clients = []
        if self._cm is not None:
            cm, self._cm = self._cm, None
            cm.__exit__(None, None, None)

    def restart(self) -> Hub:
        self.stop()
        self.start()
        return self.hub

    def client(self, participant: str) -> HubClient:
        c = HubClient(f"127.0.0.1:{self.port}", f"dev-{participant}", timeout=10.0)
        self.clients.append(c)
        return c


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[RiskConfig], Served]]:
    started: list[Served] = []

    def start(risk: RiskConfig) -> Served:
        s = Served(grpc_config(risk, tmp_path / f"served-{len(started)}"))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
