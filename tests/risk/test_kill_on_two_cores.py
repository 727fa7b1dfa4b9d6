"""A hub-wide kill empties the engines on two cores: the Cython engine lets go of the GIL while it
empties its books (holding its own lock, which the one query made without the sequencer, the
top of book, waits for), the hub hands half of the engines to a helper thread, and the id map the
kill emptied is freed after the kill is on record. None of it may change a byte of what is
journaled or of the state a replay reaches."""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest
from matching._cengine import CythonEngine

from compliance.risk import Scope
from hub.helper_thread import HelperThread
from matching.instruments import DEFAULT_INSTRUMENTS, by_asset_class
from matching.reference import ReferenceEngine
from matching.types import AssetClass, NewOrder, encode_commands
from tests.risk.support import FakeClock, RiskHub
from tests.risk.test_risk_cancel_step import _flow, _many

EQUITIES = by_asset_class(DEFAULT_INSTRUMENTS)[AssetClass.EQUITY]


def test_an_engine_emptied_again_and_again_goes_on_like_the_reference_whether_or_not_it_was_freed() -> None:
    """``cancel_all_columns`` swaps the id map out whole and ``free_cancelled`` frees it later (or a
    next kill does, when none came in between): columns, digests and counts stay the reference's."""
    rng = random.Random(3)
    freed, unfreed, reference = (CythonEngine(AssetClass.EQUITY, EQUITIES), CythonEngine(AssetClass.EQUITY, EQUITIES),
                                 ReferenceEngine(AssetClass.EQUITY, EQUITIES))
    engines = (freed, unfreed, reference)
    for round_ in range(4):
        flow = _flow(rng, 1 + round_ * 400, 400)
        assert len({e.process_packed(flow) for e in engines}) == 1
        assert freed.resting_count == unfreed.resting_count == reference.resting_count > 50
        columns = {e.cancel_all_columns(10_000 + round_) for e in engines}
        assert len(columns) == 1 and next(iter(columns))[3] > 0
        assert freed.resting_count == unfreed.resting_count == reference.resting_count == 0
        assert freed.cancel_all_columns(20_000) == (b"", b"", b"", 0), "nothing left to cancel"
        freed.free_cancelled()
        freed.free_cancelled()  # nothing kept back twice
        reference.free_cancelled()
        assert freed.digest() == unfreed.digest() == reference.digest()


def _deep_book(engine: CythonEngine, first_id: int, orders: int) -> None:
    aapl = EQUITIES[0]
    commands = []
    for i in range(orders):
        side = 1 + i % 2
        ticks = (1 + (i // 2) % 300) * (-1 if side == 1 else 1)
        oid = first_id + i
        commands.append(NewOrder(oid, oid, aapl.instrument_id, oid, 1001, side, 1, 1,
                                 aapl.reference_price + ticks * aapl.tick_size, aapl.lot_size, 0))
    engine.process_packed(encode_commands(commands))


def _wait_until(done, reader: threading.Thread, seconds: float = 10.0) -> None:
    """Poll ``done`` while the reader thread lives (it dies on an exception), for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not done():
        assert reader.is_alive(), "the reader thread died"
        assert time.monotonic() < deadline, "timed out waiting for the reader"
        threading.Event().wait(0.0005)


def test_a_top_of_book_query_from_another_thread_never_sees_a_half_emptied_book() -> None:
    """The arrival path asks for the top of book without the sequencer: while an engine is emptied
    without the GIL that query waits for the engine's lock, so it sees the whole book or none."""
    engine = CythonEngine(AssetClass.EQUITY, EQUITIES)
    iid = EQUITIES[0].instrument_id
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            depth = engine.depth(iid)
            seen.append((len(depth.bids), len(depth.asks)))

    for round_ in range(6):
        _deep_book(engine, 1 + round_ * 20_000, 20_000)
        full = engine.depth(iid)
        whole = (len(full.bids), len(full.asks))
        assert whole == (300, 300)
        seen.clear()
        stop.clear()
        reader = threading.Thread(target=query)
        reader.start()
        _wait_until(lambda: bool(seen), reader)  # the reader is in its loop before the kill
        engine.cancel_all_columns(100_000 + round_)
        _wait_until(lambda: len(seen) >= 5 and seen[-1] == (0, 0), reader)
        stop.set()
        reader.join()
        assert set(seen) <= {whole, (0, 0)}, f"a half-emptied book was seen: {sorted(set(seen) - {whole, (0, 0)})[:5]}"


def _twin_hubs(make_hub) -> tuple[RiskHub, RiskHub]:
    twins = []
    for parallel in (True, False):
        clock = FakeClock()
        clock.step = 7  # every clock read moves time on: a time read out of order would show
        rh: RiskHub = make_hub(clock=clock)
        rh.hub._parallel_cancels = parallel
        twins.append(rh)
    return twins[0], twins[1]


def test_a_hub_wide_kill_on_two_threads_journals_exactly_what_one_thread_journals(make_hub) -> None:
    parallel, serial = _twin_hubs(make_hub)
    ids = [_many(rh, 480) for rh in (parallel, serial)]
    assert ids[0] == ids[1]
    threads: set[str] = set()
    for ac, engine in list(parallel.hub.engines.items()):
        class Spy:
            def __init__(self, inner) -> None:
                self._inner = inner

            def cancel_all_columns(self, seq: int):
                threads.add(threading.current_thread().name)
                return self._inner.cancel_all_columns(seq)

            def __getattr__(self, name: str):
                return getattr(self._inner, name)

        parallel.hub.engines[ac] = Spy(engine)
    for rh in (parallel, serial):
        rh.kill(Scope.HUB, "")
        assert rh.resting_ids() == set() and rh.hub.unsettled_risk_cancels == 0
    assert len(threads) == 2, f"the engines were emptied on {threads}"
    assert parallel.hub.journal.entries() == serial.hub.journal.entries()
    assert parallel.hub.state_digest() == serial.hub.state_digest()
    assert parallel.clock.now == serial.clock.now, "as many clock reads, in the same order"


def test_a_kill_over_some_books_uses_only_the_busy_engines_and_replays_to_the_same_digest(make_hub) -> None:
    rh: RiskHub = make_hub(durable=True)
    rh.hub._parallel_cancels = True
    crypto = {i.instrument_id for i in DEFAULT_INSTRUMENTS if i.asset_class == AssetClass.CRYPTO}
    ids = _many(rh, 64)
    for oid in [o for o in ids if rh.hub._orders[o].instrument_id in crypto]:
        rh.cancel(rh.hub._orders[oid].participant_id, rh.hub._orders[oid].symbol, oid)
    before = rh.hub.last_sequence
    kill_seq = rh.kill(Scope.HUB, "")
    steps = [seq for seq, d in rh.admin_details() if d.get("action") == "risk_cancel"]
    assert steps == [kill_seq + 1, kill_seq + 2, kill_seq + 3], "three busy engines: three steps, no gap"
    assert kill_seq > before and rh.resting_ids() == set()
    digest = rh.hub.state_digest()
    rh.restart()
    assert rh.hub.recovery.checkpoint_verified and rh.hub.state_digest() == digest


def test_the_helper_runs_one_half_beside_the_caller_and_hands_back_results_and_errors(caplog) -> None:
    helper = HelperThread("test-helper")
    try:
        names = helper.beside(lambda: threading.current_thread().name, lambda: threading.current_thread().name)
        assert names == (threading.current_thread().name, "test-helper")
        order: list[str] = []

        def fail_there() -> None:
            threading.Event().wait(0.02)
            order.append("there")
            raise KeyError("there")

        with pytest.raises(KeyError, match="there"):
            helper.beside(lambda: order.append("here"), fail_there)
        assert order == ["here", "there"], "the caller waited for the helper before raising"
        with pytest.raises(ValueError):
            helper.beside(lambda: int("x"), lambda: order.append("still ran"))
        assert order[-1] == "still ran"
        done = threading.Event()
        with caplog.at_level(logging.ERROR, logger="hub.helper_thread"):
            helper.submit(lambda: 1 / 0)
            helper.submit(done.set)
            assert done.wait(5), "a failed background job does not stop the helper"
        assert "background job" in caplog.text and "ZeroDivisionError" in caplog.text
    finally:
        helper.close()


def test_a_forked_child_starts_its_own_helper() -> None:
    """The parent's helper thread does not exist in a forked child (a ledger verify worker, say):
    the child must not queue work for it and wait forever."""
    import os

    from hub.helper_thread import shared_helper

    shared_helper().beside(lambda: None, lambda: None)  # the parent's helper is running
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its helper answers
        code = 1
        try:
            here, there = shared_helper().beside(lambda: "here", lambda: threading.current_thread().name)
            code = 0 if (here, there) == ("here", "hub-helper") else 1
        finally:
            os._exit(code)
    deadline = 50
    while deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.1)
        deadline -= 1
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child waited for a helper thread it does not have")
    assert os.waitstatus_to_exitcode(status) == 0
