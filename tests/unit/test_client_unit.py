"""Unit tests of hub.client against a tiny in-process fake of the hub's gRPC services.

The fake checks only what the client is responsible for (metadata, request shapes, request ids,
stream routing); the real server is covered by the integration tests.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hub.client import (
    BookSet,
    HubClient,
    LocalBook,
    SequenceGapError,
    SessionClosedError,
    asset_class_value,
    order_type_value,
    side_value,
    stp_mode_value,
    time_in_force_value,
)
from hub.v1 import (
    account_pb2,
    account_pb2_grpc,
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    market_data_pb2,
    market_data_pb2_grpc,
    order_entry_pb2,
    order_entry_pb2_grpc,
)

TOKEN = "dev-scalper-1"


# -- ENUMS ------------------------------------------------------------------------------------


def test_enum_names_and_values() -> None:
    assert side_value("buy") == side_value("BUY") == side_value(common_pb2.BUY) == common_pb2.BUY
    assert side_value("Sell") == common_pb2.SELL
    assert order_type_value("market") == common_pb2.MARKET
    assert order_type_value("limit") == common_pb2.LIMIT
    assert [time_in_force_value(t) for t in ("gtc", "day", "ioc", "fok")] == [
        common_pb2.GTC, common_pb2.DAY, common_pb2.IOC, common_pb2.FOK]
    assert stp_mode_value("cancel_both") == stp_mode_value("STP_CANCEL_BOTH") == common_pb2.STP_CANCEL_BOTH
    assert stp_mode_value("allow") == common_pb2.STP_ALLOW
    assert stp_mode_value("default") == common_pb2.STP_MODE_UNSPECIFIED
    assert asset_class_value("crypto") == common_pb2.CRYPTO
    assert side_value(99) == 99  # out-of-range numbers pass through: the hub rejects them
    with pytest.raises(ValueError, match="side"):
        side_value("long")
    with pytest.raises(TypeError):
        side_value(True)


def test_matching_enums_map_by_name() -> None:
    from matching.types import Side, StpMode

    assert side_value(Side.SELL) == common_pb2.SELL
    assert stp_mode_value(StpMode.NONE) == common_pb2.STP_ALLOW  # numbers differ, names decide
    assert stp_mode_value(StpMode.CANCEL_BOTH) == common_pb2.STP_CANCEL_BOTH


# -- LOCAL BOOK -------------------------------------------------------------------------------


def _snap(seq: int, bids=(), asks=(), symbol: str = "AAA", halted: bool = False) -> market_data_pb2.BookSnapshot:
    return market_data_pb2.BookSnapshot(
        symbol=symbol, md_sequence=seq, halted=halted,
        bids=[market_data_pb2.PriceLevel(price=p, quantity=q) for p, q in bids],
        asks=[market_data_pb2.PriceLevel(price=p, quantity=q) for p, q in asks])


def _snap_update(seq: int, bids=(), asks=(), symbol: str = "AAA") -> market_data_pb2.MarketDataUpdate:
    return market_data_pb2.MarketDataUpdate(symbol=symbol, md_sequence=seq,
                                            snapshot=_snap(seq, bids, asks, symbol))


def _delta(seq: int, side: int, price: int, qty: int, symbol: str = "AAA") -> market_data_pb2.MarketDataUpdate:
    return market_data_pb2.MarketDataUpdate(
        symbol=symbol, md_sequence=seq,
        delta=market_data_pb2.BookDeltaUpdate(side=side, price=price, quantity=qty))


def test_local_book_snapshot_and_deltas() -> None:
    book = LocalBook("AAA")
    assert book.needs_snapshot
    assert not book.apply(_delta(1, common_pb2.BUY, 100, 5))  # nothing before the snapshot
    book.apply(_snap_update(3, bids=[(100, 5), (99, 7)], asks=[(101, 2)]))
    assert book.bids == [(100, 5), (99, 7)] and book.asks == [(101, 2)]
    assert not book.apply(_delta(3, common_pb2.BUY, 100, 1))  # already in the snapshot
    assert book.apply(_delta(4, common_pb2.BUY, 98, 4))
    assert book.apply(_delta(5, common_pb2.SELL, 102, 3))
    assert book.apply(_delta(6, common_pb2.BUY, 100, 0))  # 0 removes
    assert book.apply(market_data_pb2.MarketDataUpdate(
        symbol="AAA", md_sequence=7, trade=market_data_pb2.TradeUpdate(trade_id=1, price=101, quantity=1)))
    assert book.apply(market_data_pb2.MarketDataUpdate(
        symbol="AAA", md_sequence=8, status=market_data_pb2.TradingStatusUpdate(halted=True)))
    assert book.halted and book.md_sequence == 8 and book.last_trade.price == 101
    assert book.bids == [(99, 7), (98, 4)]
    assert book.asks == [(101, 2), (102, 3)]
    assert book.best_bid() == (99, 7) and book.best_ask() == (101, 2)
    assert book.matches(_snap(8, bids=[(99, 7), (98, 4)], asks=[(101, 2), (102, 3)]))
    assert book.matches(_snap(8, bids=[(99, 7)], asks=[(101, 2)]), depth=1)
    assert not book.matches(_snap(8, bids=[(99, 7)], asks=[(101, 2)]))
    with pytest.raises(ValueError):
        book.apply(_delta(9, common_pb2.BUY, 1, 1, symbol="BBB"))


def test_local_book_gap_strict_and_lenient() -> None:
    book = LocalBook.from_snapshot(_snap(10, bids=[(100, 1)]))
    with pytest.raises(SequenceGapError) as info:
        book.apply(_delta(12, common_pb2.BUY, 100, 2))
    assert (info.value.expected, info.value.received) == (11, 12)
    assert book.gap and book.needs_snapshot

    lenient = LocalBook("AAA", strict=False)
    lenient.apply(_snap_update(10, bids=[(100, 1)]))
    assert not lenient.apply(_delta(12, common_pb2.BUY, 100, 2))
    assert lenient.gap and lenient.gaps == 1
    assert not lenient.apply(_delta(13, common_pb2.BUY, 100, 3))  # waits for a snapshot
    lenient.apply(_snap_update(13, bids=[(100, 3)]))
    assert not lenient.gap and lenient.bids == [(100, 3)]


def test_local_book_resync() -> None:
    books = BookSet()
    books.apply(_snap_update(1, asks=[(50, 1)]))
    books.apply(_snap_update(0, symbol="BBB"))
    books.apply(market_data_pb2.MarketDataUpdate(symbol="AAA", resync=market_data_pb2.ResyncNotice(reason="slow")))
    assert books["AAA"].needs_snapshot and books["AAA"].resyncs == 1
    assert not books.apply(_delta(9, common_pb2.SELL, 50, 0))  # dropped until the snapshot
    books.apply(_snap_update(9, asks=[(51, 2)]))
    assert books.apply(_delta(10, common_pb2.SELL, 52, 1))
    assert books["AAA"].asks == [(51, 2), (52, 1)]
    assert books.apply(_delta(1, common_pb2.BUY, 7, 7, symbol="BBB"))
    assert sorted(books) == ["AAA", "BBB"] and books["BBB"].bids == [(7, 7)]


# -- FAKE HUB ---------------------------------------------------------------------------------


def _token(context: grpc.ServicerContext) -> str:
    md = dict(context.invocation_metadata())
    auth = md.get("authorization", "")
    if auth != f"Bearer {TOKEN}":
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
    return auth


class FakeOrderEntry(order_entry_pb2_grpc.OrderEntryServicer):
    def __init__(self) -> None:
        self.order_ids = iter(range(1, 10**9))
        self.requests: list[order_entry_pb2.SessionRequest] = []
        self.sessions_ended = threading.Event()
        self.options: list[bool] = []

    def _ack(self, req: order_entry_pb2.NewOrderRequest) -> order_entry_pb2.OrderAck:
        if req.quantity <= 0:
            return order_entry_pb2.OrderAck(accepted=False, reject_reason=common_pb2.REJECT_INVALID_QUANTITY,
                                            client_order_id=req.client_order_id)
        return order_entry_pb2.OrderAck(accepted=True, order_id=next(self.order_ids),
                                        client_order_id=req.client_order_id,
                                        reject_text=order_entry_pb2.NewOrderRequest.SerializeToString(req).hex())

    def SubmitOrder(self, request, context):
        _token(context)
        return self._ack(request)

    def CancelOrder(self, request, context):
        _token(context)
        return order_entry_pb2.OrderAck(accepted=True, order_id=request.order_id)

    def ReplaceOrder(self, request, context):
        _token(context)
        return order_entry_pb2.OrderAck(accepted=True, order_id=request.order_id)

    def MassCancel(self, request, context):
        _token(context)
        return order_entry_pb2.MassCancelAck(accepted=True, cancelled_count=3, reject_text=request.symbol)

    def MassQuote(self, request, context):
        _token(context)
        return order_entry_pb2.MassQuoteAck(accepted=True, quotes=[
            order_entry_pb2.QuoteAck(symbol=q.symbol, bid_order_id=q.bid_price, ask_order_id=q.ask_price)
            for q in request.quotes])

    def Session(self, request_iterator, context):
        _token(context)
        context.add_callback(self.sessions_ended.set)  # runs however the stream ends
        yield order_entry_pb2.SessionResponse(opened=order_entry_pb2.SessionOpened(
            session_id="s-1", participant_id="scalper-1"))
        for req in request_iterator:
            self.requests.append(req)
            kind = req.WhichOneof("body")
            rid = req.request_id
            if kind == "open":
                self.options.append(req.open.cancel_on_disconnect)
            elif kind == "new_order":
                ack = self._ack(req.new_order)
                yield order_entry_pb2.SessionResponse(request_id=rid, order_ack=ack)
                if req.new_order.symbol == "FILLME":  # an unsolicited fill afterwards
                    yield order_entry_pb2.SessionResponse(execution=common_pb2.ExecutionReport(
                        order_id=ack.order_id, exec_type=common_pb2.EXEC_TRADE, last_quantity=1))
            elif kind == "cancel":
                yield order_entry_pb2.SessionResponse(request_id=rid, order_ack=order_entry_pb2.OrderAck(
                    accepted=True, order_id=req.cancel.order_id))
            elif kind == "replace":
                yield order_entry_pb2.SessionResponse(request_id=rid, order_ack=order_entry_pb2.OrderAck(
                    accepted=True, order_id=req.replace.order_id))
            elif kind == "mass_cancel":
                yield order_entry_pb2.SessionResponse(request_id=rid, mass_cancel_ack=order_entry_pb2.MassCancelAck(
                    accepted=True))
            elif kind == "mass_quote":
                yield order_entry_pb2.SessionResponse(request_id=rid, mass_quote_ack=order_entry_pb2.MassQuoteAck(
                    accepted=True, quotes=[order_entry_pb2.QuoteAck(symbol=q.symbol) for q in req.mass_quote.quotes]))
            elif kind == "heartbeat":
                yield order_entry_pb2.SessionResponse(request_id=rid, heartbeat=req.heartbeat)


class FakeMarketData(market_data_pb2_grpc.MarketDataServicer):
    def __init__(self) -> None:
        self.stream_cancelled = threading.Event()

    def GetSnapshot(self, request, context):
        _token(context)
        return _snap(4, bids=[(100, 1)], symbol=request.symbol)

    def ListInstruments(self, request, context):
        _token(context)
        return market_data_pb2.InstrumentList(instruments=[
            market_data_pb2.InstrumentInfo(symbol="AAA", asset_class=common_pb2.EQUITY),
            market_data_pb2.InstrumentInfo(symbol="BBB", asset_class=common_pb2.CRYPTO)])

    def Subscribe(self, request, context):
        _token(context)
        context.add_callback(self.stream_cancelled.set)
        for symbol in request.symbols:
            yield _snap_update(4, bids=[(100, 1)], symbol=symbol)
        for symbol in request.symbols:
            yield _delta(5, common_pb2.SELL, 101, 2, symbol=symbol)
        while context.is_active():  # then silence until cancelled
            time.sleep(0.01)


class FakeAccount(account_pb2_grpc.AccountServicer):
    def GetOpenOrders(self, request, context):
        _token(context)
        return account_pb2.OpenOrders(orders=[account_pb2.OpenOrder(symbol=request.symbol or "ALL")])

    def GetExecutions(self, request, context):
        _token(context)
        return account_pb2.Executions(executions=[
            common_pb2.ExecutionReport(sequence=request.after_sequence + 1 + i) for i in range(request.limit)])

    def GetPositions(self, request, context):
        _token(context)
        return account_pb2.Positions(positions=[account_pb2.Position(symbol="AAA", net_cost_raw="1")])

    def DropCopy(self, request, context):
        _token(context)
        for i in range(3):
            yield common_pb2.ExecutionReport(sequence=i + 1)


class FakeAdmin(admin_pb2_grpc.AdminServicer):
    def Halt(self, request, context):
        _token(context)
        return admin_pb2.AdminAck(accepted=True, reject_text=f"{request.symbol}/{request.asset_class}")

    Resume = Halt
    EndOfSession = Halt

    def GetStatus(self, request, context):
        _token(context)
        return admin_pb2.HubStatus(last_sequence=42)


@pytest.fixture()
def fake_hub():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    oe, md = FakeOrderEntry(), FakeMarketData()
    order_entry_pb2_grpc.add_OrderEntryServicer_to_server(oe, server)
    market_data_pb2_grpc.add_MarketDataServicer_to_server(md, server)
    account_pb2_grpc.add_AccountServicer_to_server(FakeAccount(), server)
    admin_pb2_grpc.add_AdminServicer_to_server(FakeAdmin(), server)
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", oe, md
    finally:
        server.stop(0)


def test_unary_calls(fake_hub) -> None:
    target, _, _ = fake_hub
    with HubClient(target, TOKEN, timeout=5) as client:
        assert client.wait_ready(5)
        ack = client.submit("AAA", "buy", 10, 100, time_in_force="day", post_only=True, stp_mode="cancel_both",
                            account=1001)
        assert ack.accepted and ack.order_id == 1
        sent = order_entry_pb2.NewOrderRequest.FromString(bytes.fromhex(ack.reject_text))
        assert (sent.symbol, sent.side, sent.order_type, sent.time_in_force, sent.price, sent.quantity,
                sent.post_only, sent.stp_mode, sent.account) == (
            "AAA", common_pb2.BUY, common_pb2.LIMIT, common_pb2.DAY, 100, 10, True,
            common_pb2.STP_CANCEL_BOTH, 1001)
        assert sent.client_order_id == ack.client_order_id and sent.client_order_id
        market = client.submit("AAA", "sell", 1)
        sent = order_entry_pb2.NewOrderRequest.FromString(bytes.fromhex(market.reject_text))
        assert (sent.order_type, sent.time_in_force) == (common_pb2.MARKET, common_pb2.IOC)
        assert market.client_order_id != ack.client_order_id
        assert client.submit("AAA", "buy", 1, 5, client_order_id="mine").client_order_id == "mine"
        reject = client.submit("AAA", "buy", 0, 100)
        assert not reject.accepted and reject.reject_reason == common_pb2.REJECT_INVALID_QUANTITY
        assert client.cancel("AAA", 7).order_id == 7
        assert client.replace("AAA", 8, 100, 5).order_id == 8
        assert client.mass_cancel("AAA").reject_text == "AAA"
        mq = client.mass_quote([("AAA", 99, 1, 101, 1),
                                order_entry_pb2.Quote(symbol="BBB", bid_price=5, ask_price=6)])
        assert [(q.symbol, q.bid_order_id, q.ask_order_id) for q in mq.quotes] == [("AAA", 99, 101), ("BBB", 5, 6)]
        assert client.snapshot("AAA").bids[0].price == 100
        assert [i.symbol for i in client.instruments()] == ["AAA", "BBB"]
        assert client.open_orders()[0].symbol == "ALL"
        assert [e.sequence for e in client.executions(after_sequence=10, limit=2)] == [11, 12]
        assert client.positions()[0].net_cost_raw == "1"
        assert client.halt("AAA").reject_text == "AAA/0"
        assert client.resume(asset_class="fx").reject_text == f"/{common_pb2.FX}"
        assert client.end_of_session().accepted
        assert client.status().last_sequence == 42
        assert [e.sequence for e in client.drop_copy()] == [1, 2, 3]


def test_bad_token_surfaces_status_code(fake_hub) -> None:
    target, _, _ = fake_hub
    with HubClient(target, "dev-nobody") as client:
        assert client.wait_ready(5)  # health is public
        with pytest.raises(grpc.RpcError) as info:
            client.submit("AAA", "buy", 1, 1)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            client.open_session(open_timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_wait_ready_times_out_without_server() -> None:
    with HubClient("127.0.0.1:1", TOKEN) as client:
        assert client.wait_ready(0.3) is False
        assert client.last_health in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def test_tls_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        HubClient("127.0.0.1:1", TOKEN, private_key=b"x")


def test_session_round_trips(fake_hub) -> None:
    target, oe, _ = fake_hub
    fills = []
    with HubClient(target, TOKEN) as client:
        with client.open_session(cancel_on_disconnect=True, on_execution=fills.append, timeout=5) as session:
            assert session.session_id == "s-1" and session.participant_id == "scalper-1"
            ack = session.submit("AAA", "buy", 5, 100)
            assert ack.accepted and ack.client_order_id
            assert session.cancel("AAA", ack.order_id).order_id == ack.order_id
            assert session.replace("AAA", 3, 101, 4).order_id == 3
            assert session.mass_cancel().accepted
            assert [q.symbol for q in session.mass_quote([("AAA", 1, 1, 2, 1)]).quotes] == ["AAA"]
            assert session.heartbeat().client_time_ns > 0
            fill_ack = session.submit("FILLME", "sell", 1, 10)
            report = session.executions.get(timeout=5)
            assert report.order_id == fill_ack.order_id and report.exec_type == common_pb2.EXEC_TRADE
            assert fills == [report]
        assert oe.sessions_ended.wait(5)
        assert session.closed
        with pytest.raises(SessionClosedError):
            session.submit("AAA", "buy", 1, 1)
    assert oe.options == [True]
    ids = [r.request_id for r in oe.requests]
    assert ids[0] == 0 and ids[1:] == list(range(1, len(ids)))


def test_session_pipelining(fake_hub) -> None:
    target, oe, _ = fake_hub
    with HubClient(target, TOKEN) as client, client.open_session() as session:
        futs = [session.submit_async("AAA", "buy", 1, 100 + i) for i in range(500)]
        futs.append(session.send_async(order_entry_pb2.CancelRequest(symbol="AAA", order_id=77)))
        acks = [f.result(timeout=10) for f in futs]
        assert all(a.accepted for a in acks)
        assert acks[-1].order_id == 77
        order_ids = [a.order_id for a in acks[:-1]]
        assert order_ids == sorted(order_ids) and len(set(order_ids)) == 500
        assert len({a.client_order_id for a in acks[:-1]}) == 500
        with pytest.raises(TypeError):
            session.send_async(order_entry_pb2.OrderAck())
    assert oe.options == []  # no options message unless asked


def test_session_concurrent_senders(fake_hub) -> None:
    target, _, _ = fake_hub
    with HubClient(target, TOKEN) as client, client.open_session(timeout=10) as session:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(100):
                    ack = session.submit("AAA", "buy", 1, 1, client_order_id=f"t{n}-{i}")
                    assert ack.client_order_id == f"t{n}-{i}"
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors


def test_session_abort_fails_pending(fake_hub) -> None:
    target, oe, _ = fake_hub
    with HubClient(target, TOKEN) as client:
        session = client.open_session()
        session.abort()
        assert oe.sessions_ended.wait(5)
        with pytest.raises((SessionClosedError, grpc.RpcError)):
            session.submit("AAA", "buy", 1, 1)


def test_subscribe_and_cancel(fake_hub) -> None:
    target, _, md = fake_hub
    with HubClient(target, TOKEN) as client:
        sub = client.subscribe(["AAA", "BBB"])
        books = BookSet()
        for _ in range(4):
            books.apply(next(sub))
        assert books["AAA"].bids == [(100, 1)] and books["BBB"].asks == [(101, 2)]
        assert books["AAA"].md_sequence == 5
        with pytest.raises(TimeoutError):
            sub.read(timeout=0.2)
        sub.cancel()
        assert sub.read(timeout=5) is None
        assert list(sub) == []
        assert md.stream_cancelled.wait(5)

        with client.subscribe("AAA") as sub2:
            assert next(iter(sub2)).WhichOneof("body") == "snapshot"
            threading.Timer(0.2, sub2.cancel).start()
            assert [u.WhichOneof("body") for u in sub2] == ["delta"]
