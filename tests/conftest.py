"""Fixtures shared by every tier: each engine test runs once per implementation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from matching.engine import IMPLEMENTATIONS, create_engine
from matching.instruments import DEFAULT_INSTRUMENTS, Instrument, by_asset_class
from matching.interface import MatchingEngine
from matching.types import AssetClass
from tests.support import Session

EngineFactory = Callable[..., MatchingEngine]


def build_engine(
    implementation: str,
    asset_class: AssetClass = AssetClass.EQUITY,
    instruments: tuple[Instrument, ...] | None = None,
) -> MatchingEngine:
    """An engine of ``implementation`` over the default instruments of ``asset_class``."""
    if instruments is None:
        instruments = by_asset_class(DEFAULT_INSTRUMENTS)[AssetClass(asset_class)]
    return create_engine(asset_class, instruments, implementation=implementation)


@pytest.fixture(params=sorted(IMPLEMENTATIONS, reverse=True))  # "reference" first: the oracle
def implementation(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_engine(implementation: str) -> EngineFactory:
    """Factory for engines of the parametrized implementation:
    ``make_engine(asset_class=AssetClass.EQUITY, instruments=None)``."""

    def factory(asset_class: AssetClass = AssetClass.EQUITY,
                instruments: tuple[Instrument, ...] | None = None) -> MatchingEngine:
        return build_engine(implementation, asset_class, instruments)

    return factory


@pytest.fixture
def session(make_engine: EngineFactory) -> Session:
    """An equity engine (AAPL=1, MSFT=2) wrapped in a command-numbering session, AAPL by default."""
    return Session(make_engine())
