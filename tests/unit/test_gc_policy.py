"""The serving process's collector policy (hub.gc_policy): survivors are frozen at start and then
periodically, so collections scan only young objects; a cycle frozen while alive is reclaimed by
the full collection an operator's hub-wide end of session runs, and not before."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest

from hub.config import HubConfig
from hub.gc_policy import GcPolicy
from hub.server import run_server
from tests.integration.support import token


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    gc.unfreeze()  # the permanent generation is process-wide: leave it as we found it
    yield
    gc.unfreeze()


def _wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def _in_a_generation(objects: list) -> int:
    """How many of ``objects`` a collection would still scan (not frozen)."""
    ids = {id(o) for o in objects}
    return sum(1 for generation in range(3) for o in gc.get_objects(generation) if id(o) in ids)


def test_start_freezes_what_exists_and_keeps_freezing_survivors() -> None:
    before = [[i] for i in range(1_000)]  # tracked objects that survive
    assert _in_a_generation(before) == len(before)
    policy = GcPolicy(0.3)
    policy.start()
    try:
        assert _in_a_generation(before) == 0, "frozen at start"
        later = [[i] for i in range(1_000)]
        assert _in_a_generation(later) == len(later), "new objects are young until the next freeze"
        assert _wait_until(lambda: _in_a_generation(later) == 0), "then frozen too"
    finally:
        policy.stop()
    assert policy._thread is None


def test_a_cycle_frozen_while_alive_waits_for_collect_all() -> None:
    policy = GcPolicy(0.02)
    node = _Node()
    ref = weakref.ref(node)
    policy.start()  # frozen while alive
    try:
        del node
        gc.collect()
        assert ref() is not None, "frozen: ordinary collections no longer scan it"
        collected, paused = policy.collect_all()
        assert ref() is None and collected >= 1 and paused > 0
        assert gc.get_freeze_count() > 0, "the survivors are frozen again"
    finally:
        policy.stop()


def test_a_disabled_policy_leaves_the_collector_alone() -> None:
    policy = GcPolicy(0)
    policy.start()
    assert not policy.enabled and policy._thread is None and gc.get_freeze_count() == 0
    node = _Node()
    ref = weakref.ref(node)
    del node
    policy.collect_all()
    assert ref() is None and gc.get_freeze_count() == 0, "collect_all collects but freezes nothing"


def test_only_a_hub_wide_end_of_session_runs_the_full_collection() -> None:
    from hub.client import HubClient

    config = HubConfig.default().with_network(host="127.0.0.1", port=0)
    with run_server(config, None, grace=0.5, gc_policy=GcPolicy.of(config)) as (hub, port), \
            HubClient(f"127.0.0.1:{port}", token("operator"), timeout=10) as op:
        held = [_Node()]
        ref = weakref.ref(held[0])
        assert _wait_until(lambda: _in_a_generation(held) == 0), "the serving process freezes survivors"
        held.clear()
        assert op.end_of_session("AAPL").accepted
        gc.collect()
        assert ref() is not None, "one symbol's end of session: trading goes on elsewhere, no long pause"
        assert op.end_of_session().accepted
        assert ref() is None, "the whole market closed: everything collected once"
