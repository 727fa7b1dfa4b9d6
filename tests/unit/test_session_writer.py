"""How an order session's responses leave: in outbox order, each batch only once its journal
commit is done, sent by whichever task gets there first (the reader sends its own reply with no
hand-off; the call's handler sends reports that arrive while the reader waits), and a session
that cannot be served any more ends with a status code."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from hub.core import ReportQueue, SessionState
from hub.loop_bridge import LoopCommitter
from hub.service import RpcAbort, _SessionWriter
from hub.v1 import common_pb2 as cpb
from hub.v1 import order_entry_pb2 as oepb
from tests.unit.test_loop_bridge import CountingJournal


class RecordingContext:
    """The part of grpc.aio's ServicerContext a session writes through; ``gate``, when set, holds
    every write until it opens (a client that is slow to read)."""

    def __init__(self, journal: CountingJournal | None = None) -> None:
        self.sent: list[oepb.SessionResponse] = []
        self.gate: asyncio.Event | None = None
        self.journal = journal
        self.commits_at_send: list[list[int]] = []

    async def write(self, message: oepb.SessionResponse) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(message)
        if self.journal is not None:
            self.commits_at_send.append(list(self.journal.waits))


def _session(capacity: int = 16) -> SessionState:
    return SessionState("s-1", "scalper-1", False, ReportQueue(capacity))


def _reply(request_id: int) -> oepb.SessionResponse:
    return oepb.SessionResponse(request_id=request_id, order_ack=oepb.OrderAck(accepted=True))


def _report(sequence: int) -> cpb.ExecutionReport:
    return cpb.ExecutionReport(sequence=sequence, exec_type=cpb.EXEC_TRADE)


def test_a_reply_leaves_after_its_commit_behind_the_reports_queued_before_it() -> None:
    journal = CountingJournal()
    session, context = _session(), RecordingContext(journal)

    async def scenario() -> None:
        writer = _SessionWriter(LoopCommitter(journal), session, context)
        session.outbox.put(_report(4), ticket=2)  # another participant filled a resting order
        session.outbox.put(_reply(1), ticket=3, wake=False)
        assert await writer.flush()

    asyncio.run(scenario())
    assert context.commits_at_send == [[3], [3]]  # one commit covers the batch, before anything leaves
    assert [m.WhichOneof("body") for m in context.sent] == ["execution", "order_ack"]
    assert context.sent[0].execution.sequence == 4 and context.sent[1].request_id == 1


def test_while_one_task_sends_the_other_returns_at_once_and_the_sender_sends_its_items_too() -> None:
    journal = CountingJournal()
    session, context = _session(), RecordingContext()

    async def scenario() -> None:
        writer = _SessionWriter(LoopCommitter(journal), session, context)
        context.gate = asyncio.Event()
        session.outbox.put(_reply(1), ticket=1, wake=False)
        reader = asyncio.ensure_future(writer.flush())
        await asyncio.sleep(0.01)  # the reader is stuck in its write
        session.outbox.put(_report(9), ticket=2)
        assert await writer.flush() is False  # the handler's turn: someone is already sending
        flushed_all = asyncio.ensure_future(writer.flush_all())
        await asyncio.sleep(0.01)
        assert not flushed_all.done()  # flush_all waits for the send under way
        context.gate.set()
        assert await reader is True
        await flushed_all

    asyncio.run(scenario())
    assert [m.request_id or m.execution.sequence for m in context.sent] == [1, 9]
    assert journal.waits == [1, 2]


def test_an_outbox_that_overflowed_ends_the_session_with_resource_exhausted() -> None:
    session, context = _session(capacity=2), RecordingContext()
    for seq in range(3):
        session.outbox.put(_report(seq), ticket=1)

    async def scenario() -> None:
        await _SessionWriter(LoopCommitter(CountingJournal()), session, context).flush()

    with pytest.raises(RpcAbort) as raised:
        asyncio.run(scenario())
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and context.sent == []


def test_a_commit_that_fails_ends_the_session_unavailable_and_sends_nothing() -> None:
    journal = CountingJournal()
    journal.broken = True
    session, context = _session(), RecordingContext()
    session.outbox.put(_reply(1), ticket=5, wake=False)

    async def scenario() -> _SessionWriter:
        writer = _SessionWriter(LoopCommitter(journal), session, context)
        with pytest.raises(RpcAbort) as raised:
            await writer.flush()
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        assert await writer.flush()  # the failed send released its turn
        return writer

    writer = asyncio.run(scenario())
    assert context.sent == []
    writer.fail(RpcAbort(grpc.StatusCode.UNAVAILABLE, "ledger down"))
    assert session.outbox.closed and writer.failure is not None  # the handler task wakes and aborts


def test_a_quiet_put_wakes_nobody_and_an_ordinary_one_does() -> None:
    outbox = ReportQueue(8)

    async def scenario() -> None:
        waiter = asyncio.ensure_future(outbox.news())
        await asyncio.sleep(0)
        outbox.put(_reply(1), ticket=1, wake=False)  # the reader sends it itself
        await asyncio.sleep(0.02)
        assert not waiter.done()
        outbox.put(_report(2), ticket=2)
        await asyncio.wait_for(waiter, 1.0)
        items, ticket = outbox.take_now()
        assert len(items) == 2 and ticket == 2
        assert outbox.take_now() == ([], 0)

    asyncio.run(scenario())


def test_the_committer_tells_when_replies_arrive_together() -> None:
    async def scenario() -> None:
        committer = LoopCommitter(CountingJournal())
        assert not committer.contended
        await committer.committed(1)  # a reply alone in its turn: its sender may wait for it
        assert not committer.contended
        pending = asyncio.ensure_future(committer.committed(2))
        await asyncio.sleep(0)  # one is gathering for this turn's commit
        assert committer.contended
        await pending
        await asyncio.gather(committer.committed(3), committer.committed(4))
        assert committer.contended  # the last commit covered two: under load
        await committer.committed(5)
        assert not committer.contended

    asyncio.run(scenario())


@pytest.mark.parametrize("fails_at", ["open", "close"])
def test_a_session_whose_open_or_close_the_ledger_cannot_record_ends_unavailable_not_unknown(fails_at) -> None:
    """Recording the session's open, or its close (or its cancel-on-disconnect) when the client
    half-closes, fails because the ledger cannot commit. The stream must end with UNAVAILABLE, a
    typed status."""
    from concurrent.futures import ThreadPoolExecutor

    from hub.journal import JournalUnavailableError
    from hub.loop_bridge import Offload
    from hub.service import OrderEntryService
    from hub.v1 import order_entry_pb2_grpc as oepb_grpc

    class Who:
        participant_id = "scalper-1"

    class Auth:
        def identify(self, metadata) -> Who:
            return Who()

    journal = CountingJournal()

    class FailingCloseHub:
        abandoned: list[SessionState] = []

        def begin_session(self, who) -> tuple[SessionState, int]:
            journal.broken = fails_at == "open"  # the open's commit fails (the committer waits for it)
            return _session(), 1

        def abandon_session(self, session: SessionState) -> None:
            self.abandoned.append(session)

        def close_session(self, who, session: SessionState) -> int:
            session.outbox.close()
            raise JournalUnavailableError("ledger commit timed out")

    async def scenario() -> tuple[grpc.StatusCode, list[str]]:
        pool = ThreadPoolExecutor(2)
        offload = Offload(pool)
        service = OrderEntryService(hub, Auth(), LoopCommitter(journal, offload), offload)
        server = grpc.aio.server()
        oepb_grpc.add_OrderEntryServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = oepb_grpc.OrderEntryStub(channel).Session(iter([]))  # opens, then half-closes
                bodies = [r.WhichOneof("body") async for r in _until_error(call)]
                return await call.code(), bodies
        finally:
            await server.stop(None)
            pool.shutdown()

    hub = FailingCloseHub()
    code, bodies = asyncio.run(scenario())
    assert bodies == ([] if fails_at == "open" else ["opened"])
    assert code == grpc.StatusCode.UNAVAILABLE
    assert len(hub.abandoned) == (fails_at == "open")  # an open not on record is given up, to be closed on record


async def _until_error(call):
    try:
        async for response in call:
            yield response
    except grpc.aio.AioRpcError:
        return
