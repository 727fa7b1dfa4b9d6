"""Fixtures of the fairness tier: hubs on a fake clock, closed (scheduler thread stopped) at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hub.fairness import FairnessConfig
from tests.fairness.support import InProcessHub


@pytest.fixture
def make_hub() -> Iterator[Callable[..., InProcessHub]]:
    """``make_hub(FairnessConfig(...))``: an in-process hub on a fresh ``FakeClock``."""
    made: list[InProcessHub] = []

    def make(fairness: FairnessConfig | None = None, **kwargs) -> InProcessHub:
        h = InProcessHub(fairness or FairnessConfig(), **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
