"""Shared builders for the risk tests: the built-in instruments and a few named participants."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compliance.risk import RiskConfig, RiskEngine
from matching.instruments import DEFAULT_INSTRUMENTS

SEC = 1_000_000_000
MS = 1_000_000
T0 = 1_767_225_600 * SEC  # 2026-01-01T00:00:00Z, a trading-day boundary

# built-in instrument ids
AAPL, MSFT, ES, GC, EURUSD, GBPUSD, BTC, ETH = range(1, 9)
BUY, SELL = 1, 2
LIMIT, MARKET = 1, 2

EngineFactory = Callable[..., RiskEngine]


def new_engine(config: RiskConfig | None = None) -> RiskEngine:
    return RiskEngine(config or RiskConfig(), DEFAULT_INSTRUMENTS)


@pytest.fixture
def engine() -> RiskEngine:
    return new_engine()


def trade(engine: RiskEngine, ts: int, iid: int, price: int, qty: int, buyer: str = "mm-buy",
          seller: str = "mm-sell") -> list:
    """An execution between two participants (no orders involved)."""
    return engine.on_trade(ts, iid, price, qty, buyer, seller)


def kinds(events: list) -> list[str]:
    return [e.kind for e in events]
