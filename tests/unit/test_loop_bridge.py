"""The gateway loop's bridges to the thread-safe hub: group commit per loop turn, queues an asyncio
task can await while any thread fills them, and order-entry calls a fairness rule holds, which come
back as a future to await instead of blocking the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from hub.auth import Identity
from hub.config import HubConfig, ParticipantClass
from hub.core import HeldCall, Hub, OrderSpec, ReportQueue
from hub.fairness import FairnessConfig, RestingMode
from hub.journal import JournalUnavailableError
from hub.loop_bridge import LoopCommitter, Offload
from hub.marketdata import Subscriber
from hub.v1 import common_pb2 as cpb
from hub.v1 import market_data_pb2 as mdpb


class CountingJournal:
    """Records every ``wait_committed``; fails them all once ``broken`` is set (after ``stall`` s,
    as a ledger does that waits out its commit timeout)."""

    def __init__(self, stall: float = 0.0) -> None:
        self.waits: list[int] = []
        self.broken = False
        self.stall = stall

    @property
    def available(self) -> bool:
        return not self.broken

    def wait_committed(self, ticket: int, timeout: float | None = None) -> None:
        self.waits.append(ticket)
        if self.broken:
            time.sleep(self.stall)
            raise JournalUnavailableError("disk on fire")


def test_the_replies_of_one_loop_turn_share_one_commit_of_the_highest_ticket() -> None:
    journal = CountingJournal()

    async def scenario() -> None:
        committer = LoopCommitter(journal)
        await asyncio.gather(committer.committed(3), committer.committed(7), committer.committed(5))
        assert journal.waits == [7]
        await committer.committed(0)  # nothing to wait for: no commit at all
        assert journal.waits == [7]
        await committer.committed(9)  # a later turn: its own commit
        assert journal.waits == [7, 9]

    asyncio.run(scenario())


def test_a_commit_alone_in_its_loop_turn_runs_at_once_and_one_beside_other_work_waits_for_the_turn() -> None:
    journal = CountingJournal()

    async def scenario() -> None:
        committer = LoopCommitter(journal)
        step = committer.committed(4).__await__()
        with pytest.raises(StopIteration):  # done without giving the loop up: no hand-off turns
            next(step)
        assert journal.waits == [4]
        # Another call ready to run in this turn (its reply waits for ticket 8): the commit waits
        # for it, so both replies share one commit, of the higher ticket.
        other = asyncio.ensure_future(committer.committed(8))
        await committer.committed(6)
        await other
        assert journal.waits == [4, 8]

    asyncio.run(scenario())


def test_a_commit_made_at_once_that_fails_raises_to_its_caller() -> None:
    journal = CountingJournal()

    def fail(ticket: int, timeout: float | None = None) -> None:  # available, but the write fails now
        journal.waits.append(ticket)
        raise JournalUnavailableError("disk on fire")

    journal.wait_committed = fail

    async def scenario() -> None:
        with pytest.raises(JournalUnavailableError, match="disk on fire"):
            await LoopCommitter(journal).committed(3)

    asyncio.run(scenario())
    assert journal.waits == [3]


def test_a_commit_that_fails_fails_every_reply_waiting_for_it() -> None:
    journal = CountingJournal()
    journal.broken = True

    async def scenario() -> list[BaseException | None]:
        committer = LoopCommitter(journal)
        return await asyncio.gather(committer.committed(1), committer.committed(2), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert [type(o) for o in outcomes] == [JournalUnavailableError, JournalUnavailableError]
    assert journal.waits == [2]


def test_while_storage_fails_the_commit_waits_on_the_pool_and_the_loop_keeps_serving() -> None:
    journal = CountingJournal(stall=1.0)
    journal.broken = True

    async def scenario() -> tuple[list[BaseException | None], float]:
        with ThreadPoolExecutor(2) as pool:
            committer = LoopCommitter(journal, Offload(pool))
            reply = asyncio.ensure_future(committer.committed(5))
            started = time.monotonic()
            await asyncio.sleep(0.05)  # another call on the loop: served on time, not after the stall
            served_in = time.monotonic() - started
            return await asyncio.gather(reply, return_exceptions=True), served_in

    outcome, served_in = asyncio.run(scenario())
    assert served_in < 0.5, served_in
    assert [type(o) for o in outcome] == [JournalUnavailableError]
    assert journal.waits == [5]


def test_an_outbox_wakes_its_task_when_another_thread_puts_and_when_it_closes() -> None:
    outbox = ReportQueue(capacity=10)
    report = cpb.ExecutionReport(order_id=42)

    async def scenario() -> None:
        threading.Timer(0.05, outbox.put, args=(report, 11)).start()
        # no timeout of its own: only the put can end this wait (wait_for fails the test instead of hanging)
        items, ticket = await asyncio.wait_for(outbox.take_async(None), 5)
        assert (items, ticket) == ([report], 11)
        items, ticket = await outbox.take_async(0.05)  # nothing comes: the timeout ends the wait
        assert (items, ticket) == ([], 0)
        threading.Timer(0.05, outbox.close).start()
        assert await asyncio.wait_for(outbox.take_async(None), 5) == ([], 0)
        assert outbox.closed

    asyncio.run(scenario())


def test_a_put_from_the_loop_itself_wakes_the_waiting_task() -> None:
    outbox = ReportQueue(capacity=10)

    async def scenario() -> None:
        waiting = asyncio.ensure_future(outbox.take_async(None))
        await asyncio.sleep(0)  # the task now waits
        outbox.put("reply", 3)  # what the inline hot path does on the loop's own thread
        assert await asyncio.wait_for(waiting, 5) == (["reply"], 3)

    asyncio.run(scenario())


def test_a_market_data_subscription_wakes_its_task_for_an_update_and_for_an_overflow() -> None:
    sub = Subscriber(frozenset({1}), capacity=1)
    update = mdpb.MarketDataUpdate(symbol="AAPL", md_sequence=1)

    async def scenario() -> None:
        threading.Timer(0.05, sub.offer, args=(update, 4)).start()
        assert await asyncio.wait_for(sub.take_async(None), 5) == ([update], 4)
        sub.offer(update, 5)
        sub.offer(update, 6)  # over capacity: the subscriber must resynchronise
        items, _ = await asyncio.wait_for(sub.take_async(None), 5)
        assert items == [] and sub.needs_resync

    asyncio.run(scenario())


def _participant(hub: Hub, pclass: ParticipantClass) -> Identity:
    return next(Identity.of(p) for p in hub.config.participants if p.participant_class == pclass)


def test_an_order_a_fairness_rule_holds_comes_back_held_instead_of_blocking_its_caller() -> None:
    hub = Hub(replace(HubConfig.default(), fairness=FairnessConfig(latency_floor_ns=300_000_000)))
    institution = _participant(hub, ParticipantClass.INSTITUTION)
    scalper = _participant(hub, ParticipantClass.SCALPER)
    started = time.monotonic()
    held = hub.enter_order(institution, OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, 189_0000, 1,
                                                  account=institution.accounts[0]))
    assert isinstance(held, HeldCall) and time.monotonic() - started < 0.25  # back long before the floor
    scalpers, reason, _ = hub.enter_order(scalper, OrderSpec("AAPL", cpb.SELL, cpb.LIMIT, cpb.GTC, 191_0000, 1))
    assert scalpers is not None and not reason  # no rule holds the scalper: sequenced at once
    assert not held.future.done()

    async def released():  # what the gateway's loop does with it
        result = await asyncio.wrap_future(held.future)
        return held.finish(result)

    outcome, reason, _ = asyncio.run(released())
    assert outcome is not None and not reason
    assert time.monotonic() - started >= 0.3
    assert outcome.seq_first > scalpers.seq_first  # sequenced after the scalper's, which arrived later


@pytest.mark.parametrize("mode", [RestingMode.HOLD, RestingMode.REJECT])
def test_a_cancel_is_held_only_while_its_order_must_still_rest_in_hold_mode(mode: RestingMode) -> None:
    now = [1_767_225_600_000_000_000]
    hub = Hub(replace(HubConfig.default(), fairness=FairnessConfig(min_resting_ns=1_000_000, min_resting_mode=mode)),
              clock=lambda: now[0])
    scalper = _participant(hub, ParticipantClass.SCALPER)
    first, second = (hub.submit_order(scalper, OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, 189_0000, 1))[0]
                     for _ in range(2))
    early = hub.enter_cancel(scalper, "AAPL", first.seq_first)
    if mode == RestingMode.HOLD:
        assert isinstance(early, HeldCall) and not early.future.done()
    else:
        assert not isinstance(early, HeldCall) and early[0] is None  # refused at once: it has not rested
    now[0] += 1_000_000  # rested long enough: nothing holds a cancel any more
    late = hub.enter_cancel(scalper, "AAPL", second.seq_first)
    assert not isinstance(late, HeldCall) and late[0] is not None and not late[1]
