"""Fixtures shared by every tier: each engine test runs once per implementation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from matching.engine import IMPLEMENTATIONS
from matching.instruments import Instrument
from matching.interface import MatchingEngine
from matching.types import AssetClass
from tests.support import build_engine

EngineFactory = Callable[..., MatchingEngine]


@pytest.fixture(params=sorted(IMPLEMENTATIONS, reverse=True))  # "reference" first: the oracle
def engine_impl(request: pytest.FixtureRequest) -> str:
    """Name of the engine implementation under test; every user runs once per implementation."""
    return request.param


@pytest.fixture
def make_engine(engine_impl: str) -> EngineFactory:
    """Factory for engines of the parametrized implementation:
    ``make_engine(asset_class=AssetClass.EQUITY, instruments=None)``."""

    def factory(asset_class: AssetClass = AssetClass.EQUITY,
                instruments: tuple[Instrument, ...] | None = None) -> MatchingEngine:
        return build_engine(engine_impl, asset_class, instruments)

    return factory

