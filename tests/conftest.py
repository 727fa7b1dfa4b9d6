"""Fixtures shared by every tier: each engine test runs once per implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from matching.engine import IMPLEMENTATIONS
from matching.instruments import Instrument
from matching.interface import MatchingEngine
from matching.types import AssetClass
from tests.support import build_engine

EngineFactory = Callable[..., MatchingEngine]


@pytest.fixture(autouse=True)
def _close_journals_left_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every ledger journal a test opened and left open. A left-open journal whose storage
    was broken on purpose retries its write every second for the rest of the run, inside SQLite
    from a thread of its own; a later fork (verify's workers) can then copy SQLite's locks held."""
    from ledger.store import LedgerJournal

    opened: list[LedgerJournal] = []
    init = LedgerJournal.__init__

    def tracked(self, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(LedgerJournal, "__init__", tracked)
    yield
    for journal in opened:
        if not journal._stopping:
            journal.close()


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

