"""gRPC servicers: decode the wire, call the hub core, encode the reply. Nothing else.

They run on the gateway's asyncio event loop (grpc.aio). The order-entry hot path (submit, cancel,
replace, mass quote, mass cancel, sessions) runs inline on the loop: the hub's sequencer is a
short critical section, and a thread hand-off costs more than an order. An order a fairness rule
holds comes back from the hub as a ``HeldCall`` whose future the loop awaits. What may block runs
on the worker pool (``Offload``): admin and account queries, ledger reads, a session's close, a
mass cancel over orders that have not rested their minimum time. Replies, mass quotes and mass
cancels included, wait for their journal commit in ``LoopCommitter`` (one commit per loop turn). A session's
reader task sends its own reply when replies are not arriving together (no hand-off to another task:
about 15-30 us of a streamed order's latency); under load it queues it for the call's handler task
and reads on, so that one commit covers the replies of many requests.

Business rejects travel in the reply as a typed RejectReason; a hub that cannot take commands
answers UNAVAILABLE; anything unexpected is logged and answered INTERNAL, never UNKNOWN.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from concurrent.futures import Future
from typing import TypeVar

import grpc

from compliance.fees import Month
from compliance.risk.events import Scope as RiskScope
from hub.auth import UNDECODABLE, Authenticator, AuthError, Identity
from hub.core import EntryResult, HeldCall, Hub, HubUnavailableError, OrderSpec, QuoteSpec, SessionState, ticket_of
from hub.journal import JournalUnavailableError
from hub.loop_bridge import LoopCommitter, Offload
from hub.v1 import account_pb2 as apb
from hub.v1 import account_pb2_grpc as apb_grpc
from hub.v1 import admin_pb2 as adpb
from hub.v1 import admin_pb2_grpc as adpb_grpc
from hub.v1 import common_pb2 as cpb
from hub.v1 import market_data_pb2 as mdpb
from hub.v1 import market_data_pb2_grpc as mdpb_grpc
from hub.v1 import order_entry_pb2 as oepb
from hub.v1 import order_entry_pb2_grpc as oepb_grpc
from matching.types import AssetClass, RejectReason

log = logging.getLogger("hub.service")
T = TypeVar("T")
_INT64_MAX = 2**63 - 1
_POLL_S = 0.1  # how often idle streams look at their call again
_MAX_DEPTH = 2**31 - 1  # engines take a C int number of levels
#: Execution reports per GetExecutions page (about 100 bytes each: well inside the 4 MiB default
#: message limit); a client pages on with ``after_sequence``.
_MAX_EXECUTIONS = 10_000
_MAX_OPEN_ORDERS = 10_000  # about 1.3 MB with 64-character client order ids


class RpcAbort(Exception):
    """Raised by a handler body (on the loop or the pool) to end the call with this status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


async def _fail(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """End the call with the status ``exc`` stands for (this always raises)."""
    if isinstance(exc, RpcAbort):
        await context.abort(exc.code, exc.details)
    if isinstance(exc, AuthError):
        await context.abort(exc.code, str(exc))
    if isinstance(exc, HubUnavailableError | JournalUnavailableError):
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    log.error("internal error in %s", type(exc).__name__, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the request changed nothing it did not report")


def guarded(method):
    """An async unary handler called with the caller's identity; failures become status codes."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            who = self.auth.identify(context.invocation_metadata())
            return await method(self, who, request)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped onto a status code, never UNKNOWN
            await _fail(context, exc)

    return handler


def on_pool(method):
    """A blocking unary body ``(self, who, request)`` run on the worker pool (see ``guarded``)."""

    @functools.wraps(method)
    async def body(self, who, request):
        return await self.offload.run(method, self, who, request)

    return guarded(body)


async def _resolved(future: Future):
    """Await a scheduler future on the loop. Shielded: a call cancelled while held (its deadline, a
    client gone) must not cancel the future, whose command is still sequenced at its release (its
    client order id is used and nothing takes it back); the scheduler then resolves it unheard."""
    wrapped = asyncio.wrap_future(future)
    try:
        return await asyncio.shield(wrapped)
    except asyncio.CancelledError:
        wrapped.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: nothing logged
        raise


async def _released(call: HeldCall) -> EntryResult:
    """Await a held call's release on the loop (the scheduler thread resolves its future)."""
    result = await _resolved(call.future)
    while isinstance(result, Future):  # held, then batched
        result = await _resolved(result)
    return call.finish(result)


def _spec(req: oepb.NewOrderRequest) -> OrderSpec:
    return OrderSpec(req.symbol, req.side, req.order_type, req.time_in_force, req.price, req.quantity,
                     req.display_quantity, req.post_only, req.stp_mode, req.account, req.client_order_id)


def _order_ack(outcome, reason: int, text: str, order_id: int = 0, client_order_id: str = "") -> oepb.OrderAck:
    ack = oepb.OrderAck(accepted=outcome is not None and not reason, reject_reason=reason, reject_text=text,
                        order_id=order_id, client_order_id=client_order_id)
    if outcome is not None:
        ack.sequence = outcome.seq_first
        ack.hub_time_ns = outcome.ts
        ack.executions.extend(outcome.reports)
        if not order_id:
            ack.order_id = outcome.seq_first
    return ack


class _Committing:
    """A service whose replies leave only once what they report is committed."""

    def __init__(self, hub: Hub, auth: Authenticator, committer: LoopCommitter, offload: Offload) -> None:
        self.hub = hub
        self.auth = auth
        self.committer = committer
        self.offload = offload

    async def _committed(self, ticket: int, context: grpc.aio.ServicerContext) -> None:
        """Wait until journal ticket ``ticket`` is committed; a ledger that cannot commit ends the
        call with UNAVAILABLE (what was not recorded is never sent)."""
        try:
            await self.committer.committed(ticket)
        except JournalUnavailableError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))


class OrderEntryService(_Committing, oepb_grpc.OrderEntryServicer):
    def __init__(self, hub: Hub, auth: Authenticator, committer: LoopCommitter, offload: Offload) -> None:
        super().__init__(hub, auth, committer, offload)
        self._readers: set[asyncio.Task] = set()  # session reader tasks (the loop keeps weak references only)

    # The order-entry helpers return the ack and the journal ticket that must be committed before
    # it is sent; callers wait for it (unary calls each, sessions once per batch of replies).

    async def _entry(self, who: Identity, body: str, req, session_id: str = "") -> tuple[oepb.OrderAck, int]:
        """Run a new order, cancel or replace inline; one a fairness rule holds is awaited (the
        scheduler's thread releases and sequences it) while the loop serves everyone else. Returns
        the ack and the journal ticket it waits for."""
        hub = self.hub
        if body == "new_order":
            order_id, client_order_id = 0, req.client_order_id
            result = hub.enter_order(who, _spec(req), session_id)
        elif req.order_id > _INT64_MAX:
            return _order_ack(None, RejectReason.UNKNOWN_ORDER, "no such order", req.order_id), 0
        elif body == "cancel":
            order_id, client_order_id = req.order_id, ""
            result = hub.enter_cancel(who, req.symbol, req.order_id, session_id)
        else:
            order_id, client_order_id = req.order_id, ""
            result = hub.enter_replace(who, req.symbol, req.order_id, req.price, req.quantity, session_id)
        if isinstance(result, HeldCall):
            result = await _released(result)
        outcome, reason, text = result
        return _order_ack(outcome, reason, text, order_id, client_order_id), ticket_of(result)

    async def _mass_cancel(self, who: Identity, req: oepb.MassCancelRequest) -> tuple[oepb.MassCancelAck, int]:
        entered = self.hub.enter_mass_cancel(who, req.symbol, req.account)
        if entered is None:  # orders in scope have not rested: cancelled one by one, which may wait for them
            count, reason, text = await self.offload.run(self.hub.mass_cancel_order_by_order, who, req.symbol,
                                                         req.account)
            ticket = 0  # each of its cancels was committed before it returned
        else:
            count, reason, text, ticket = entered
        return oepb.MassCancelAck(accepted=not reason, reject_reason=reason, reject_text=text,
                                  cancelled_count=count), ticket

    async def _mass_quote(self, who: Identity, req: oepb.MassQuoteRequest,
                          session_id: str = "") -> tuple[oepb.MassQuoteAck, int]:
        quotes = [QuoteSpec(q.symbol, q.bid_price, q.bid_quantity, q.ask_price, q.ask_quantity) for q in req.quotes]
        result = self.hub.enter_mass_quote(who, quotes, req.account, session_id)
        if isinstance(result, HeldCall):  # behind the latency floor or in a batch window
            result = await _released(result)
        reports, rows, reason, text, ticket = result
        return oepb.MassQuoteAck(
            accepted=not reason, reject_reason=reason, reject_text=text, executions=reports,
            quotes=[oepb.QuoteAck(symbol=s, bid_order_id=b, bid_reject_reason=br, ask_order_id=a,
                                  ask_reject_reason=ar) for s, b, br, a, ar in rows]), ticket

    async def _acked(self, ack_and_ticket: tuple[T, int]) -> T:
        ack, ticket = ack_and_ticket
        await self.committer.committed(ticket)
        return ack

    @guarded
    async def SubmitOrder(self, who, request):
        return await self._acked(await self._entry(who, "new_order", request))

    @guarded
    async def CancelOrder(self, who, request):
        return await self._acked(await self._entry(who, "cancel", request))

    @guarded
    async def ReplaceOrder(self, who, request):
        return await self._acked(await self._entry(who, "replace", request))

    @guarded
    async def MassCancel(self, who, request):
        return await self._acked(await self._mass_cancel(who, request))

    @guarded
    async def MassQuote(self, who, request):
        return await self._acked(await self._mass_quote(who, request))

    async def _session_reply(self, who: Identity, session: SessionState,
                             req: oepb.SessionRequest) -> tuple[oepb.SessionResponse, int]:
        """The reply to one session request and the journal ticket it waits for (0: none)."""
        if req is UNDECODABLE:
            return oepb.SessionResponse(order_ack=oepb.OrderAck(
                reject_reason=cpb.REJECT_MISSING_FIELD, reject_text="request does not deserialise")), 0
        rid = req.request_id
        body = req.WhichOneof("body")
        if body in ("new_order", "cancel", "replace"):
            ack, ticket = await self._entry(who, body, getattr(req, body), session.session_id)
            return oepb.SessionResponse(request_id=rid, order_ack=ack), ticket
        if body == "mass_quote":
            quote_ack, ticket = await self._mass_quote(who, req.mass_quote, session.session_id)
            return oepb.SessionResponse(request_id=rid, mass_quote_ack=quote_ack), ticket
        if body == "mass_cancel":
            cancel_ack, ticket = await self._mass_cancel(who, req.mass_cancel)
            return oepb.SessionResponse(request_id=rid, mass_cancel_ack=cancel_ack), ticket
        if body == "open":
            # The option holds from its commit on (awaited here, not blocking the loop): a session
            # closed before then was never told it had cancel-on-disconnect.
            enabled = req.open.cancel_on_disconnect
            await self.committer.committed(self.hub.record_session_options(session, enabled))
            session.cancel_on_disconnect = enabled
            return oepb.SessionResponse(request_id=rid, opened=oepb.SessionOpened(
                session_id=session.session_id, participant_id=who.participant_id)), 0
        return self._session_other(rid, req, body), 0

    @staticmethod
    def _session_other(rid: int, req: oepb.SessionRequest, body: str | None) -> oepb.SessionResponse:
        if body == "heartbeat":
            return oepb.SessionResponse(request_id=rid, heartbeat=req.heartbeat)
        # An empty or unknown body: answer with a typed reject, keep the session.
        return oepb.SessionResponse(request_id=rid, order_ack=oepb.OrderAck(
            reject_reason=cpb.REJECT_MISSING_FIELD, reject_text="request has no body"))

    async def _read_session(self, who: Identity, session: SessionState, request_iterator,
                            out: _SessionWriter) -> None:
        # Requests are handled by this task, in order. Each reply joins the session's ordered outbox
        # behind any unsolicited report. Alone in its loop turn, this task then sends it itself (no
        # hand-off; a send already under way sends it instead); while replies arrive together, the
        # handler task sends and this one reads on (pipelined: one commit covers many replies).
        # Same-run A/B, streaming at 1,000/s: p50 590 vs 621 us; always sending itself cost 8-10 %
        # of the sustained throughput (a commit per reply).
        try:
            async for req in request_iterator:
                reply, ticket = await self._session_reply(who, session, req)
                if self.committer.contended:  # under load: the handler task sends, this one reads on
                    session.outbox.put(reply, ticket)
                else:
                    session.outbox.put(reply, ticket, wake=False)
                    await out.flush()
        except (grpc.RpcError, asyncio.CancelledError, grpc.aio.AbortError, CallEnded):
            pass  # the client went away; cancel-on-disconnect below still applies
        except Exception as exc:  # noqa: BLE001 - a failed send (RpcAbort) or a bug: the stream's end
            if not isinstance(exc, RpcAbort):
                log.exception("session %s failed", session.session_id)
            out.fail(exc)
        finally:
            # Off the loop: cancelling DAY orders may wait behind a batch window. A close the
            # ledger could not record ends the call with its status (UNAVAILABLE), never UNKNOWN.
            try:
                await self.offload.run(self.hub.close_session, who, session)
            except Exception as exc:  # noqa: BLE001 - mapped by _fail in the handler task
                if not isinstance(exc, HubUnavailableError | JournalUnavailableError):
                    log.exception("closing session %s failed", session.session_id)
                out.fail(exc)

    async def Session(self, request_iterator, context):
        who = self.auth.identify(context.invocation_metadata())
        try:
            session, ticket = self.hub.begin_session(who)
        except HubUnavailableError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        try:
            await self.committer.committed(ticket)  # grouped with the loop's other commits, not blocking it
        except JournalUnavailableError as exc:
            self.hub.abandon_session(session)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        out = _SessionWriter(self.committer, session, context)
        context.add_done_callback(lambda _call: session.outbox.close())
        # First in the outbox, so first on the wire whichever task sends it; the reader starts before
        # anything is sent, so the session closes (cancel-on-disconnect) however the call ends.
        session.outbox.put(oepb.SessionResponse(opened=oepb.SessionOpened(session_id=session.session_id,
                                                                          participant_id=who.participant_id)))
        reader = asyncio.get_running_loop().create_task(self._read_session(who, session, request_iterator, out))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        # This task sends what arrives while the reader waits for requests (reports of resting
        # orders other participants fill), and ends the call once the outbox closes: the session
        # closed (the request stream ended) or the call ended.
        try:
            while not session.outbox.closed:
                await out.flush_all()
                await session.outbox.news()
            if out.failure is None and not context.done():
                # The request stream ended: the stream ends only once the session is closed (its
                # close recorded, cancel-on-disconnect done), so a client that saw the end can rely
                # on it; then what the close left goes out.
                await asyncio.shield(reader)
                await out.flush_all()
        except RpcAbort as exc:
            out.fail(exc)
        except CallEnded:
            return  # nobody is listening any more
        if out.failure is not None:
            await _fail(context, out.failure)


class CallEnded(Exception):
    """A session's response could not be sent: the call is over (the client went away or cancelled)."""


class _SessionWriter:
    """Sends a session's outbox in order, each batch once its journal commit is done. Two tasks
    send: the reader (its own replies, right after queuing them) and the call's handler (reports
    that arrive meanwhile); a send already under way sends whatever the other queued."""

    def __init__(self, committer: LoopCommitter, session: SessionState, context: grpc.aio.ServicerContext) -> None:
        self._committer = committer
        self._outbox = session.outbox
        self._context = context
        self._idle = asyncio.Event()  # no send under way
        self._idle.set()
        self.failure: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        """End the call with ``exc``'s status: the handler task sees the closed outbox and aborts."""
        if self.failure is None:
            self.failure = exc
        self._outbox.close()

    async def flush_all(self) -> None:
        """Send everything queued now, waiting for a send under way to finish first."""
        while not await self.flush():
            await self._idle.wait()

    async def flush(self) -> bool:
        """Send everything queued; False (at once) if another task's send is under way: that one
        sends it."""
        if not self._idle.is_set():
            return False
        self._idle.clear()
        try:
            outbox, write = self._outbox, self._context.write
            while True:
                items, ticket = outbox.take_now()
                if outbox.overflowed:
                    raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   "session fell too far behind; reconnect and use Account.GetExecutions")
                if not items:
                    return True
                try:
                    await self._committer.committed(ticket)  # nothing leaves before it is durable
                except JournalUnavailableError as exc:
                    raise RpcAbort(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
                for item in items:
                    try:
                        await write(oepb.SessionResponse(execution=item) if isinstance(item, cpb.ExecutionReport)
                                    else item)
                    except Exception as exc:  # noqa: BLE001 - grpc raises its private ExecuteBatchError
                        raise CallEnded(str(exc)) from exc
        finally:
            self._idle.set()


class MarketDataService(_Committing, mdpb_grpc.MarketDataServicer):
    async def Subscribe(self, request, context):
        ids = self.hub.instrument_ids_for(request.symbols)
        if isinstance(ids, str):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown symbol {ids[:64]!r}")
        sub, snapshots = self.hub.subscribe(ids)
        snapshot_ticket = self.hub.last_ticket  # a snapshot may show what is not committed yet
        context.add_done_callback(lambda _call: sub.close())  # the loop below ends the moment the call does
        try:
            await self._committed(snapshot_ticket, context)
            for snap in snapshots:
                yield mdpb.MarketDataUpdate(symbol=snap.symbol, md_sequence=snap.md_sequence, snapshot=snap)
            while not sub.closed and not context.done():
                updates, ticket = await sub.take_async(_POLL_S)
                await self._committed(ticket, context)  # public data only once it is durable
                for update in updates:
                    yield update
                if sub.needs_resync:
                    for symbol in sorted(self.hub.instruments[i].symbol for i in sub.instrument_ids):
                        yield mdpb.MarketDataUpdate(symbol=symbol, resync=mdpb.ResyncNotice(
                            reason="subscriber queue overflowed; a fresh snapshot follows"))
                    snapshots = self.hub.resync(sub)
                    await self._committed(self.hub.last_ticket, context)
                    for snap in snapshots:
                        yield mdpb.MarketDataUpdate(symbol=snap.symbol, md_sequence=snap.md_sequence, snapshot=snap)
        finally:
            self.hub.unsubscribe(sub)

    @guarded
    async def GetSnapshot(self, who, request):
        inst = self.hub.by_symbol.get(request.symbol)
        if inst is None:
            raise RpcAbort(grpc.StatusCode.NOT_FOUND, f"unknown symbol {request.symbol[:64]!r}")
        # depth is a uint32 on the wire but a C int in the engines; any depth beyond the book's
        # levels is the full book, so clamp instead of overflowing (which answered UNKNOWN).
        snapshot = self.hub.snapshot(inst.instrument_id, min(request.depth, _MAX_DEPTH))
        # Shown only once what it shows is on record (as streamed updates are): the newest ticket
        # now covers every command the snapshot reflects.
        await self.committer.committed(self.hub.last_ticket)
        return snapshot

    @guarded
    async def ListInstruments(self, who, request):
        return mdpb.InstrumentList(instruments=[
            mdpb.InstrumentInfo(
                symbol=i.symbol, asset_class=int(i.asset_class), currency=i.currency, price_scale=i.price_scale,
                quantity_scale=i.quantity_scale, tick_size=i.tick_size, lot_size=i.lot_size,
                min_quantity=i.min_quantity, max_quantity=i.max_quantity, max_notional=i.max_notional,
                contract_multiplier=i.contract_multiplier, reference_price=i.reference_price)
            for i in sorted(self.hub.instruments.values(), key=lambda i: i.instrument_id)])


class AccountService(_Committing, apb_grpc.AccountServicer):
    @on_pool
    def GetOpenOrders(self, who, request):
        # 0 ("server maximum") and anything larger: one page that always fits a reply message.
        limit = min(request.limit or _MAX_OPEN_ORDERS, _MAX_OPEN_ORDERS)
        page, more = self.hub.open_orders(who, request.symbol, request.after_order_id, limit)
        return apb.OpenOrders(more=more, orders=[
            apb.OpenOrder(symbol=meta.symbol, order_id=order_id, client_order_id=meta.client_order_id,
                          account=meta.account, side=view.side, price=view.price, leaves_quantity=view.remaining,
                          display_quantity=view.display_size, time_in_force=view.time_in_force)
            for meta, order_id, view in page])

    @on_pool
    def GetExecutions(self, who, request):
        # 0 ("server maximum") and anything larger: one page that always fits a reply message.
        limit = min(request.limit or _MAX_EXECUTIONS, _MAX_EXECUTIONS)
        page, more = self.hub.executions_page(who, request.after_sequence, limit, request.skip)
        return apb.Executions(executions=page, more=more)

    @on_pool
    def GetPositions(self, who, request):
        rows = []
        for account, iid, p in self.hub.positions(who):
            rows.append(apb.Position(symbol=self.hub.instruments[iid].symbol, account=account,
                                     net_quantity=p.bought - p.sold, bought_quantity=p.bought,
                                     sold_quantity=p.sold, net_cost_raw=str(p.net_cost_raw)))
        return apb.Positions(positions=rows)

    @on_pool
    def GetRisk(self, who, request):
        view = self.hub.risk_view(who)
        symbol = {i.instrument_id: i.symbol for i in self.hub.instruments.values()}
        return apb.RiskState(
            limits=[apb.InstrumentLimit(symbol=symbol[lv.instrument_id], position_limit=lv.position_limit,
                                        limit_factor_bps=lv.limit_factor_bps, net_position=lv.net_position)
                    for lv in view.limits],
            base_currency=view.base_currency, equity=view.equity, initial_requirement=view.initial_requirement,
            maintenance_requirement=view.maintenance_requirement, margin_call=view.margin_call,
            reduce_only=view.reduce_only, kill_switch=view.kill_switch,
            detail_json=json.dumps(view.detail, sort_keys=True, default=str))

    @on_pool
    def GetStatement(self, who, request):
        month = _month(request.month, self.hub)
        statement = self.hub.statement(who.participant_id, month)
        return apb.Statement(month=month.label, text=statement.render_text(), json=statement.to_json())

    async def DropCopy(self, request, context):
        who = self.auth.identify(context.invocation_metadata())
        queue = self.hub.open_drop_copy(who)
        context.add_done_callback(lambda _call: queue.close())
        try:
            while not queue.closed and not context.done():
                reports, ticket = await queue.take_async(_POLL_S)
                await self._committed(ticket, context)
                for report in reports:
                    yield report
                if queue.overflowed:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        "drop copy fell too far behind; reconnect and use Account.GetExecutions")
        finally:
            self.hub.close_drop_copy(who, queue)


def _month(label: str, hub: Hub) -> Month:
    if not label:
        return Month.of(hub.clock())
    try:
        return Month.parse(label)
    except ValueError:
        raise RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"month {label[:16]!r} is not YYYY-MM") from None


class AdminService(adpb_grpc.AdminServicer):
    """Every admin call runs on the worker pool: a kill or an end of session may take milliseconds."""

    def __init__(self, hub: Hub, auth: Authenticator, offload: Offload) -> None:
        self.hub = hub
        self.auth = auth
        self.offload = offload

    def _halt(self, who, request, halted: bool) -> adpb.AdminAck:
        seq, error = self.hub.set_halted(who, request.symbol, request.asset_class, halted)
        if error:
            return adpb.AdminAck(accepted=False, reject_reason=cpb.REJECT_FIELD_OUT_OF_RANGE, reject_text=error)
        return adpb.AdminAck(accepted=True, sequence=seq)

    @on_pool
    def Halt(self, who, request):
        return self._halt(who, request, True)

    @on_pool
    def Resume(self, who, request):
        return self._halt(who, request, False)

    @on_pool
    def EndOfSession(self, who, request):
        seq, expired, error = self.hub.end_of_session(who, request.symbol, request.asset_class)
        if error:
            return adpb.AdminAck(accepted=False, reject_reason=cpb.REJECT_FIELD_OUT_OF_RANGE, reject_text=error)
        if not request.symbol and not request.asset_class and self.hub.gc_policy is not None:
            self.hub.gc_policy.collect_all()  # the whole market is closed: the one long collector pause
        return adpb.AdminAck(accepted=True, sequence=seq, affected_orders=expired)

    def _kill_target(self, request) -> tuple[int, str] | str:
        if request.scope == adpb.KILL_HUB:
            return RiskScope.HUB, ""
        if request.scope == adpb.KILL_ASSET_CLASS:
            if request.asset_class not in AssetClass._value2member_map_:
                return "KILL_ASSET_CLASS needs an asset_class"
            return RiskScope.ASSET_CLASS, AssetClass(request.asset_class).name
        if request.scope == adpb.KILL_PARTICIPANT:
            if request.participant_id not in self.hub.traders:  # an operator or regulator never trades
                return f"unknown participant {request.participant_id[:64]!r}"
            return RiskScope.PARTICIPANT, request.participant_id
        return "scope is required (KILL_HUB, KILL_ASSET_CLASS or KILL_PARTICIPANT)"

    @on_pool
    def Kill(self, who, request):
        target = self._kill_target(request)
        if isinstance(target, str):
            return adpb.AdminAck(accepted=False, reject_reason=cpb.REJECT_FIELD_OUT_OF_RANGE, reject_text=target)
        before = self.hub.resting_count()
        seq = self.hub.kill(who, target[0], target[1], note=request.reason[:200])
        return adpb.AdminAck(accepted=True, sequence=seq, affected_orders=max(0, before - self.hub.resting_count()))

    @on_pool
    def LiftKill(self, who, request):
        target = self._kill_target(request)
        if isinstance(target, str):
            return adpb.AdminAck(accepted=False, reject_reason=cpb.REJECT_FIELD_OUT_OF_RANGE, reject_text=target)
        return adpb.AdminAck(accepted=True, sequence=self.hub.lift(who, target[0], target[1]))

    @on_pool
    def SetPositionLimit(self, who, request):
        inst = self.hub.by_symbol.get(request.symbol)
        if inst is None or request.participant_id not in self.hub.traders or request.base_limit < 0:
            return adpb.AdminAck(accepted=False, reject_reason=cpb.REJECT_FIELD_OUT_OF_RANGE,
                                 reject_text="needs a known participant, a known symbol and base_limit >= 0")
        seq = self.hub.set_position_limit(who, request.participant_id, inst.instrument_id,
                                          request.base_limit or None)  # 0 restores the default
        return adpb.AdminAck(accepted=True, sequence=seq)

    @on_pool
    def GetRevenue(self, who, request):
        month = _month(request.month, self.hub)
        summary = self.hub.revenue(month)
        return adpb.Revenue(month=month.label, text=summary.render_text(), json=summary.to_json())

    @on_pool
    def GetStatus(self, who, request):
        s = self.hub.status()
        return adpb.HubStatus(
            last_sequence=s["last_sequence"], hub_time_ns=s["time"], state_digest=s["digest"],
            connected_sessions=s["sessions"], market_data_subscribers=s["subscribers"],
            engines=[adpb.EngineStatus(asset_class=e["asset_class"], implementation=e["implementation"],
                                       state_digest=e["digest"], resting_orders=e["resting"],
                                       halted_symbols=e["halted"]) for e in s["engines"]])
