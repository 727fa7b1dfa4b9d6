"""Item 7: 10,000 malformed requests, sent concurrently, never break the hub.

Every answer is a typed reject in the reply (exactly the reason the contract gives for that
input) or a proper status code (INTERNAL for bytes that do not deserialise, RESOURCE_EXHAUSTED
above the message size limit, NOT_FOUND for unknown symbols on market data...), never UNKNOWN;
the hub keeps serving, and no book changed (rejects consume sequence numbers, nothing else).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.client import LocalBook
from hub.core import _PROTO_STP
from hub.v1 import account_pb2 as apb
from hub.v1 import admin_pb2 as adpb
from hub.v1 import common_pb2 as cpb
from hub.v1 import market_data_pb2 as mdpb
from hub.v1 import order_entry_pb2 as oepb
from matching import validation
from matching.types import MAX_PRICE, NewOrder, Replace
from tests.integration.support import ACCOUNTS, TICK, P, engine_digests, engine_orders

TOTAL = 10_000
INT64_MAX, INT64_MIN, UINT64_MAX = 2**63 - 1, -(2**63), 2**64 - 1
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)
MB = 1024 * 1024
SEED = 7_777

# Participants: scalper-1 owns resting orders (amend targets); inst-2 sends the garbage (it has
# no orders, so garbage that happens to parse as an empty mass cancel changes nothing); mm-1
# sends the mass quotes (it has no quotes to replace).
TARGET, GARBAGE, QUOTER, OTHER = "scalper-1", "inst-2", "mm-1", "scalper-2"
ALL_SYMBOLS = ("AAPL", "MSFT", "ESZ6", "GCZ6", "EURUSD", "GBPUSD", "BTC-USD", "ETH-USD")


def _md(participant: str) -> tuple:
    return (("authorization", f"Bearer dev-{participant}"),)


@dataclass
class Case:
    kind: str  # "unary", "session" (payload: list of messages), "subscribe"
    path: str
    payload: object
    metadata: tuple
    check: Callable[[grpc.StatusCode, object], str | None]
    what: str

    @property
    def requests(self) -> int:
        return len(self.payload) if self.kind == "session" else 1


# -- EXPECTATIONS ------------------------------------------------------------------------------


def _status(*codes: grpc.StatusCode) -> Callable:
    def check(code, reply):
        return None if code in codes else f"status {code}, expected one of {codes}: {reply!r:.200}"
    return check


def _order_reject(reason: int) -> Callable:
    def check(code, reply):
        if code != grpc.StatusCode.OK:
            return f"status {code}: {reply!r:.200}"
        ack = oepb.OrderAck.FromString(reply) if isinstance(reply, bytes) else reply
        if ack.accepted or ack.reject_reason != reason:
            return f"expected reject {cpb.RejectReason.Name(reason)}, got {ack}"[:400]
        if any(r.exec_type != cpb.EXEC_REJECTED for r in ack.executions):
            return f"reject with other executions: {ack}"[:400]
        return None
    return check


def _ack_reject(cls, reason: int) -> Callable:
    def check(code, reply):
        if code != grpc.StatusCode.OK:
            return f"status {code}: {reply!r:.200}"
        ack = cls.FromString(reply) if isinstance(reply, bytes) else reply
        if ack.accepted or ack.reject_reason != reason:
            return f"expected reject {cpb.RejectReason.Name(reason)}, got {ack}"[:400]
        return None
    return check


def _quotes_rejected(reasons: list[tuple[int, int]]) -> Callable:
    """A mass quote taken as a message whose every quote side was refused with these reasons."""
    def check(code, reply):
        if code != grpc.StatusCode.OK:
            return f"status {code}: {reply!r:.200}"
        ack = oepb.MassQuoteAck.FromString(reply) if isinstance(reply, bytes) else reply
        got = [(q.bid_reject_reason, q.ask_reject_reason) for q in ack.quotes]
        if not ack.accepted or got != reasons or any(q.bid_order_id or q.ask_order_id for q in ack.quotes):
            return f"expected quote rejects {reasons}, got {ack}"[:400]
        return None
    return check


_REPLY_OF = {
    "/hub.v1.OrderEntry/SubmitOrder": oepb.OrderAck, "/hub.v1.OrderEntry/CancelOrder": oepb.OrderAck,
    "/hub.v1.OrderEntry/ReplaceOrder": oepb.OrderAck, "/hub.v1.OrderEntry/MassCancel": oepb.MassCancelAck,
    "/hub.v1.OrderEntry/MassQuote": oepb.MassQuoteAck, "/hub.v1.Account/GetOpenOrders": apb.OpenOrders,
    "/hub.v1.Account/GetExecutions": apb.Executions, "/hub.v1.Account/GetPositions": apb.Positions,
    "/hub.v1.Admin/GetStatus": adpb.HubStatus, "/hub.v1.MarketData/GetSnapshot": mdpb.BookSnapshot,
    "/hub.v1.MarketData/ListInstruments": mdpb.InstrumentList,
}


def _garbage_ok(path: str) -> Callable:
    """Bytes that do not deserialise: INVALID_ARGUMENT (INTERNAL is grpc's own answer, which the
    hub avoids for unary requests). Bytes that happen to parse (unknown fields...): a well-formed
    reply that booked nothing."""
    def check(code, reply):
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL):
            return None
        if code == grpc.StatusCode.NOT_FOUND and path == "/hub.v1.MarketData/GetSnapshot":
            return None
        if code != grpc.StatusCode.OK:
            return f"status {code}: {reply!r:.200}"
        msg = _REPLY_OF[path].FromString(reply)
        if isinstance(msg, oepb.OrderAck) and (msg.accepted or not msg.reject_reason):
            return f"garbage accepted: {msg}"
        if isinstance(msg, oepb.MassCancelAck) and msg.cancelled_count:
            return f"garbage cancelled orders: {msg}"
        if isinstance(msg, oepb.MassQuoteAck) and any(q.bid_order_id or q.ask_order_id for q in msg.quotes):
            return f"garbage quoted: {msg}"
        return None
    return check


# -- ORACLE FOR NEW ORDERS (gateway checks in the hub's order, then the engine's static checks) --


class Oracle:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.stp = {p.id: p.stp_mode for p in hub.config.participants}
        self.accounts = {p.id: p.accounts for p in hub.config.participants}

    def new_order(self, who: str, req: oepb.NewOrderRequest, used_coids: set[str] = frozenset(),
                  post_only_quote: bool = False) -> int | None:
        """The reject reason the hub must give, or None if the order would be accepted."""
        if len(req.client_order_id) > 64 or not req.client_order_id.isprintable():
            return cpb.REJECT_FIELD_OUT_OF_RANGE
        inst = self.hub.by_symbol.get(req.symbol)
        if inst is None:
            return cpb.REJECT_UNKNOWN_INSTRUMENT
        if not post_only_quote and (not req.side or not req.order_type or not req.time_in_force):
            return cpb.REJECT_MISSING_FIELD
        accounts = self.accounts[who]
        account = accounts[0] if req.account == 0 else req.account
        if account not in accounts:
            return cpb.REJECT_ACCOUNT_NOT_PERMITTED
        if req.client_order_id and req.client_order_id in used_coids:
            return cpb.REJECT_DUPLICATE_CLIENT_ORDER_ID
        stp = int(self.stp[who]) if req.stp_mode == cpb.STP_MODE_UNSPECIFIED else int(_PROTO_STP.get(req.stp_mode, 99))
        cmd = NewOrder(1, 0, inst.instrument_id, 2**62, account, req.side, req.order_type, req.time_in_force,
                       req.price, req.quantity, req.display_quantity, int(req.post_only), stp)
        reason = validation.check_new_order(cmd, inst, 0)
        return int(reason) if reason is not None else None

    def quote_side(self, symbol: str, side: int, price: int, quantity: int) -> int | None:
        req = oepb.NewOrderRequest(symbol=symbol, side=side, order_type=cpb.LIMIT, time_in_force=cpb.GTC,
                                   price=price, quantity=quantity, post_only=True)
        return self.new_order(QUOTER, req, post_only_quote=True)

    def replace(self, symbol: str, price: int, quantity: int) -> int | None:
        inst = self.hub.by_symbol[symbol]
        reason = validation.check_replace(Replace(1, 0, inst.instrument_id, 1, 1, price, quantity), inst)
        return int(reason) if reason is not None else None


# -- GENERATORS ------------------------------------------------------------------------------

_NASTY_WIRE = [
    b"\xff", b"\x0f", b"\x00", b"\x07\x01", b"\x0b", b"\x0c", b"\x12\xff\xff\xff\xff\x0f",
    b"\x12\x05AA", b"\x12\x02\xff\xfe", b"\x08" + b"\xff" * 11, b"\x0a\x80", b"\x3a\x7f" + b"\x00" * 3,
    b"\x12\x04\xc3\x28AB", b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02",
]


def _garbage(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(_NASTY_WIRE) + rng.randbytes(rng.randint(0, 8))
    if roll < 0.5:
        # a string field that claims more bytes than follow
        return bytes([rng.choice([0x0A, 0x12, 0x1A]), rng.randint(20, 127)]) + rng.randbytes(rng.randint(0, 10))
    return rng.randbytes(rng.randint(1, 300))


def _valid_looking_order(rng: random.Random, hub, symbol: str | None = None) -> oepb.NewOrderRequest:
    symbol = symbol or rng.choice(ALL_SYMBOLS)
    inst = hub.by_symbol[symbol]
    return oepb.NewOrderRequest(
        symbol=symbol, side=rng.choice((cpb.BUY, cpb.SELL)), order_type=cpb.LIMIT, time_in_force=cpb.GTC,
        price=inst.reference_price - 40 * inst.tick_size if rng.random() < 0.5 else inst.reference_price + 40 * inst.tick_size,
        quantity=inst.min_quantity)


_BAD_ENUMS = (3, 4, 5, 7, 99, -1, -7, INT32_MAX, INT32_MIN)
_BAD_INTS = (0, -1, -100, INT64_MIN, INT64_MAX, MAX_PRICE + 100, MAX_PRICE * 10, 2**62)


def _bad_order(rng: random.Random, hub, oracle: Oracle, who: str) -> tuple[oepb.NewOrderRequest, int]:
    """An order that must be refused, and the exact reason."""
    while True:
        req = _valid_looking_order(rng, hub)
        inst = hub.by_symbol[req.symbol]
        roll = rng.randrange(12)
        if roll == 0:
            req.side = rng.choice(_BAD_ENUMS + (0,))
        elif roll == 1:
            req.order_type = rng.choice(_BAD_ENUMS + (0,))
        elif roll == 2:
            req.time_in_force = rng.choice(_BAD_ENUMS + (0,))
        elif roll == 3:
            req.stp_mode = rng.choice(_BAD_ENUMS)
        elif roll == 4:
            req.price = rng.choice(_BAD_INTS + (inst.tick_size + 1, P + 1, -TICK))
        elif roll == 5:
            req.quantity = rng.choice(_BAD_INTS + (inst.max_quantity + inst.lot_size, inst.lot_size + 1,
                                                   inst.min_quantity - 1))
        elif roll == 6:
            req.display_quantity = rng.choice((-1, req.quantity, req.quantity + 1, INT64_MAX, INT64_MIN))
        elif roll == 7:
            req.order_type = cpb.MARKET  # with a price, or a GTC market order
            req.time_in_force = rng.choice((cpb.GTC, cpb.DAY, cpb.IOC))
        elif roll == 8:
            req.post_only = True
            req.time_in_force = rng.choice((cpb.IOC, cpb.FOK))
        elif roll == 9:
            req.quantity = inst.max_quantity  # far above the notional cap at this price
            req.price = min(MAX_PRICE - MAX_PRICE % inst.tick_size, inst.reference_price * 1000)
        elif roll == 10:
            req.account = rng.choice((-1, INT64_MAX, INT64_MIN, 1002, 2001, 3001))
        else:
            for field in ("side", "order_type", "time_in_force", "price", "quantity"):
                if rng.random() < 0.5:
                    req.ClearField(field)
        reason = oracle.new_order(who, req)
        if reason is not None:
            return req, reason


def build_cases(hub, rng: random.Random, resting: dict) -> list[Case]:
    oracle = Oracle(hub)
    cases: list[Case] = []
    mine, theirs = resting["mine"], resting["theirs"]  # (symbol, order id) of TARGET / OTHER

    def unary(path, msg, who, check, what):
        payload = msg if isinstance(msg, bytes) else msg.SerializeToString()
        cases.append(Case("unary", path, payload, _md(who), check, what))

    submit, cancel, replace = ("/hub.v1.OrderEntry/SubmitOrder", "/hub.v1.OrderEntry/CancelOrder",
                               "/hub.v1.OrderEntry/ReplaceOrder")

    # 1. garbage bytes through every unary method (identity serializers)
    for _ in range(2400):
        path = rng.choice(list(_REPLY_OF))
        who = "operator" if path.startswith("/hub.v1.Admin/") else GARBAGE
        unary(path, _garbage(rng), who, _garbage_ok(path), "garbage")

    # 2. out-of-range enums, missing fields, bad prices / quantities / display / accounts
    for _ in range(1800):
        req, reason = _bad_order(rng, hub, oracle, TARGET)
        unary(submit, req, TARGET, _order_reject(reason), "bad order")

    # 3. missing fields everywhere
    for _ in range(150):
        unary(submit, oepb.NewOrderRequest(), TARGET, _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "empty order")
        unary(cancel, oepb.CancelRequest(), TARGET, _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "empty cancel")
        unary(replace, oepb.ReplaceRequest(), TARGET, _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "empty replace")
        unary(cancel, oepb.CancelRequest(symbol="AAPL"), TARGET, _order_reject(cpb.REJECT_UNKNOWN_ORDER),
              "cancel without id")
        symbol, oid = rng.choice(mine)
        unary(replace, oepb.ReplaceRequest(symbol=symbol, order_id=oid), TARGET,
              _order_reject(cpb.REJECT_INVALID_QUANTITY), "replace without price and quantity")

    # 4. huge strings and messages above the size limit
    huge = "A" * MB
    for i in range(12):
        unary(submit, oepb.NewOrderRequest(symbol=huge, side=cpb.BUY, order_type=cpb.LIMIT, time_in_force=cpb.GTC,
                                           price=P, quantity=1), TARGET,
              _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "1 MB symbol")
        order = _valid_looking_order(rng, hub)
        order.client_order_id = chr(ord("a") + i) * MB
        unary(submit, order, TARGET, _order_reject(cpb.REJECT_FIELD_OUT_OF_RANGE), "1 MB client_order_id")
        unary(cancel, oepb.CancelRequest(symbol=huge, order_id=mine[0][1]), TARGET,
              _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "1 MB symbol cancel")
        unary("/hub.v1.MarketData/GetSnapshot", mdpb.SnapshotRequest(symbol=huge), GARBAGE,
              _status(grpc.StatusCode.NOT_FOUND), "1 MB snapshot symbol")
        unary("/hub.v1.OrderEntry/MassQuote", oepb.MassQuoteRequest(quotes=[oepb.Quote(
            symbol=huge, bid_price=P, bid_quantity=1)]), QUOTER,
            _quotes_rejected([(cpb.REJECT_UNKNOWN_INSTRUMENT, cpb.REJECT_UNKNOWN_INSTRUMENT)]), "1 MB quote symbol")
    for _ in range(4):
        unary(submit, oepb.NewOrderRequest(symbol="A" * (5 * MB)), TARGET,
              _status(grpc.StatusCode.RESOURCE_EXHAUSTED), "5 MB order")
        unary("/hub.v1.Admin/GetStatus", b"\x0a" + b"\xff\xff\xff\x02" + b"x" * (5 * MB), "operator",
              _status(grpc.StatusCode.RESOURCE_EXHAUSTED), "5 MB status request")
    for _ in range(300):
        order = _valid_looking_order(rng, hub)
        order.client_order_id = rng.choice(("x" * 65, "a\x00b", "tab\there", "new\nline", "\u200b", "é" * 65,
                                            "\x7f", "z" * 1000))
        unary(submit, order, TARGET, _order_reject(cpb.REJECT_FIELD_OUT_OF_RANGE), "bad client_order_id")

    # 5. order ids beyond int64, other people's orders, own orders under the wrong symbol
    for _ in range(250):
        oid = rng.choice((2**63, UINT64_MAX, 2**63 + mine[0][1], 2**64 - 2))
        symbol = rng.choice(ALL_SYMBOLS)
        unary(cancel, oepb.CancelRequest(symbol=symbol, order_id=oid), TARGET,
              _order_reject(cpb.REJECT_UNKNOWN_ORDER), "uint64 cancel")
        unary(replace, oepb.ReplaceRequest(symbol=symbol, order_id=oid, price=P, quantity=1), TARGET,
              _order_reject(cpb.REJECT_UNKNOWN_ORDER), "uint64 replace")
    for _ in range(200):
        symbol, oid = rng.choice(theirs)
        unary(cancel, oepb.CancelRequest(symbol=symbol, order_id=oid), TARGET,
              _order_reject(cpb.REJECT_UNKNOWN_ORDER), "cancel of another's order")
        unary(replace, oepb.ReplaceRequest(symbol=symbol, order_id=oid, price=P, quantity=5), TARGET,
              _order_reject(cpb.REJECT_UNKNOWN_ORDER), "replace of another's order")
        symbol, oid = rng.choice(mine)
        wrong = rng.choice([s for s in ALL_SYMBOLS if s != symbol])
        unary(cancel, oepb.CancelRequest(symbol=wrong, order_id=oid), TARGET,
              _order_reject(cpb.REJECT_UNKNOWN_ORDER), "own order, wrong symbol")

    # 6. replaces of own resting orders with values the engine refuses
    for _ in range(500):
        symbol, oid = rng.choice(mine)
        inst = hub.by_symbol[symbol]
        while True:
            price = rng.choice(_BAD_INTS + (inst.reference_price, inst.reference_price + 1))
            quantity = rng.choice(_BAD_INTS + (inst.min_quantity, inst.lot_size + 1, inst.max_quantity + inst.lot_size))
            reason = oracle.replace(symbol, price, quantity)
            if reason is not None:
                break
        unary(replace, oepb.ReplaceRequest(symbol=symbol, order_id=oid, price=price, quantity=quantity), TARGET,
              _order_reject(reason), "bad replace")

    # 7. unknown symbols everywhere
    unknown = ("", " AAPL", "AAPL ", "aapl", "BTC/USD", "AAPL\x00", "ÄAPL", "🍏", "MSFT;DROP TABLE", "X" * 65)
    for i in range(800):
        symbol = unknown[i % len(unknown)]
        roll = i % 5
        if roll == 0:
            order = _valid_looking_order(rng, hub, "AAPL")
            order.symbol = symbol
            unary(submit, order, TARGET, _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "unknown symbol order")
        elif roll == 1:
            unary(cancel, oepb.CancelRequest(symbol=symbol, order_id=mine[0][1]), TARGET,
                  _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "unknown symbol cancel")
        elif roll == 2:
            unary(replace, oepb.ReplaceRequest(symbol=symbol, order_id=mine[0][1], price=P, quantity=1), TARGET,
                  _order_reject(cpb.REJECT_UNKNOWN_INSTRUMENT), "unknown symbol replace")
        elif roll == 3:
            if symbol:
                unary("/hub.v1.OrderEntry/MassCancel", oepb.MassCancelRequest(symbol=symbol), TARGET,
                      _ack_reject(oepb.MassCancelAck, cpb.REJECT_UNKNOWN_INSTRUMENT), "unknown symbol mass cancel")
            else:
                unary("/hub.v1.OrderEntry/MassCancel", oepb.MassCancelRequest(account=1002), TARGET,
                      _ack_reject(oepb.MassCancelAck, cpb.REJECT_ACCOUNT_NOT_PERMITTED), "mass cancel of 1002")
        else:
            unary("/hub.v1.MarketData/GetSnapshot", mdpb.SnapshotRequest(symbol=symbol, depth=rng.randint(0, 9)),
                  GARBAGE, _status(grpc.StatusCode.NOT_FOUND), "unknown symbol snapshot")

    # 8. duplicate client order ids (each was used by an accepted order before)
    for i in range(500):
        order = _valid_looking_order(rng, hub)
        order.client_order_id = resting["coids"][i % len(resting["coids"])]
        unary(submit, order, TARGET, _order_reject(cpb.REJECT_DUPLICATE_CLIENT_ORDER_ID), "duplicate coid")

    # 9. mass quotes: too many, wrong account, bad sides, unknown symbols
    for i in range(300):
        roll = i % 4
        if roll == 0:
            quotes = [oepb.Quote(symbol="AAPL", bid_price=P - 50 * TICK, bid_quantity=1)] * 501
            unary("/hub.v1.OrderEntry/MassQuote", oepb.MassQuoteRequest(quotes=quotes), QUOTER,
                  _ack_reject(oepb.MassQuoteAck, cpb.REJECT_TOO_MANY_QUOTES), "501 quotes")
        elif roll == 1:
            unary("/hub.v1.OrderEntry/MassQuote", oepb.MassQuoteRequest(
                quotes=[oepb.Quote(symbol="AAPL", bid_price=P - 50 * TICK, bid_quantity=1)],
                account=rng.choice((1001, -1, INT64_MAX))), QUOTER,
                _ack_reject(oepb.MassQuoteAck, cpb.REJECT_ACCOUNT_NOT_PERMITTED), "quote on another's account")
        else:
            quotes, reasons = [], []
            for _ in range(rng.randint(1, 4)):
                symbol = rng.choice(ALL_SYMBOLS + ("NOPE",))
                if symbol == "NOPE":
                    quotes.append(oepb.Quote(symbol=symbol, bid_price=1, bid_quantity=1))
                    reasons.append((cpb.REJECT_UNKNOWN_INSTRUMENT, cpb.REJECT_UNKNOWN_INSTRUMENT))
                    continue
                inst = hub.by_symbol[symbol]
                sides = []
                for side in (cpb.BUY, cpb.SELL):
                    while True:
                        price = rng.choice(_BAD_INTS + (inst.reference_price,))
                        quantity = rng.choice((-1, INT64_MIN, INT64_MAX, inst.lot_size + 1, inst.min_quantity))
                        reason = oracle.quote_side(symbol, side, price, quantity)
                        if reason is not None:
                            break
                    sides.append((price, quantity, reason))
                (bp, bq, br), (ap, aq, ar) = sides
                quotes.append(oepb.Quote(symbol=symbol, bid_price=bp, bid_quantity=bq, ask_price=ap, ask_quantity=aq))
                reasons.append((br, ar))
            if len({q.symbol for q in quotes}) < len(quotes):
                continue  # one quote per instrument per message
            unary("/hub.v1.OrderEntry/MassQuote", oepb.MassQuoteRequest(quotes=quotes), QUOTER,
                  _quotes_rejected(reasons), "bad quotes")

    # 10. admin scopes that name nothing (operator)
    scopes = [adpb.TradingScope(symbol="AAPL", asset_class=cpb.EQUITY), adpb.TradingScope(symbol="NOPE"),
              adpb.TradingScope(asset_class=99), adpb.TradingScope(asset_class=-1),
              adpb.TradingScope(symbol="x" * 5000), adpb.TradingScope(asset_class=INT32_MAX)]
    for i in range(240):
        method = ("Halt", "Resume", "EndOfSession")[i % 3]
        unary(f"/hub.v1.Admin/{method}", scopes[i % len(scopes)], "operator",
              _ack_reject(adpb.AdminAck, cpb.REJECT_FIELD_OUT_OF_RANGE), f"bad scope {method}")

    # 11. market data: huge snapshot depth (the full book, or INVALID_ARGUMENT; never UNKNOWN)
    for depth in (2**31 - 1, 2**31, 2**32 - 1) * 20:
        unary("/hub.v1.MarketData/GetSnapshot", mdpb.SnapshotRequest(symbol="AAPL", depth=depth), GARBAGE,
              _full_snapshot(resting["aapl_levels"]), f"snapshot depth {depth}")
    for symbols in (["NOPE"], ["AAPL", "NOPE"], ["A" * MB], [""]) * 15:
        cases.append(Case("subscribe", "/hub.v1.MarketData/Subscribe",
                          mdpb.SubscribeRequest(symbols=symbols).SerializeToString(), _md(GARBAGE),
                          _status(grpc.StatusCode.NOT_FOUND), "subscribe to unknown symbols"))

    # 12. streaming sessions: structured malformed requests (typed reject per request), and
    # garbage (INTERNAL for the stream once a message does not deserialise)
    for _ in range(6):
        messages, checks = [], []
        for rid in range(1, 101):
            roll = rng.randrange(5)
            if roll == 0:
                req, reason = _bad_order(rng, hub, oracle, TARGET)
                messages.append(oepb.SessionRequest(request_id=rid, new_order=req))
            elif roll == 1:
                messages.append(oepb.SessionRequest(request_id=rid))  # no body
                reason = cpb.REJECT_MISSING_FIELD
            elif roll == 2:
                messages.append(oepb.SessionRequest(request_id=rid, cancel=oepb.CancelRequest(
                    symbol="AAPL", order_id=rng.choice((UINT64_MAX, 2**63, theirs[0][1])))))
                reason = cpb.REJECT_UNKNOWN_ORDER
            elif roll == 3:
                symbol, oid = rng.choice(mine)
                quantity = hub.by_symbol[symbol].min_quantity
                messages.append(oepb.SessionRequest(request_id=rid, replace=oepb.ReplaceRequest(
                    symbol=symbol, order_id=oid, price=-1, quantity=quantity)))
                reason = oracle.replace(symbol, -1, quantity)
                assert reason == cpb.REJECT_INVALID_PRICE
            else:
                messages.append(oepb.SessionRequest(request_id=rid, mass_cancel=oepb.MassCancelRequest(symbol="NOPE")))
                reason = cpb.REJECT_UNKNOWN_INSTRUMENT
            checks.append(reason)
        cases.append(Case("session", "/hub.v1.OrderEntry/Session", [m.SerializeToString() for m in messages],
                          _md(TARGET), _session_check(checks), "session of malformed requests"))
    for _ in range(240):
        first = oepb.SessionRequest(request_id=1, new_order=oepb.NewOrderRequest(symbol="NOPE"))
        cases.append(Case("session", "/hub.v1.OrderEntry/Session", [first.SerializeToString(), _garbage(rng)],
                          _md(GARBAGE), _session_garbage_check(), "session garbage"))

    # fill up to exactly TOTAL with more bad orders
    count = sum(c.requests for c in cases)
    assert count <= TOTAL, count
    for _ in range(TOTAL - count):
        req, reason = _bad_order(rng, hub, oracle, TARGET)
        unary(submit, req, TARGET, _order_reject(reason), "bad order")
    return cases


def _full_snapshot(levels) -> Callable:
    def check(code, reply):
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return None
        if code != grpc.StatusCode.OK:
            return f"status {code}: {reply!r:.200}"
        snap = mdpb.BookSnapshot.FromString(reply)
        got = LocalBook.snapshot_levels(snap)
        return None if got == levels else f"snapshot {got} != {levels}"
    return check


def _session_check(reasons: list[int]) -> Callable:
    def check(code, responses):
        if code != grpc.StatusCode.OK:
            return f"session status {code}: {responses!r:.200}"
        replies = [oepb.SessionResponse.FromString(r) for r in responses]
        if not replies or replies[0].WhichOneof("body") != "opened":
            return "no SessionOpened first"
        answers = replies[1:]
        if [a.request_id for a in answers] != list(range(1, len(reasons) + 1)):
            return f"request ids {[a.request_id for a in answers]}"
        for answer, reason in zip(answers, reasons, strict=True):
            body = getattr(answer, answer.WhichOneof("body"))
            if body.accepted or body.reject_reason != reason:
                return f"expected {cpb.RejectReason.Name(reason)}, got {answer}"[:400]
        return None
    return check


def _session_garbage_check() -> Callable:
    def check(code, responses):
        # A message that does not deserialise is answered with a typed reject and the session
        # carries on (grpc's own INTERNAL abort leaked the call and a stream slot under load);
        # whatever arrived must be right.
        replies = [oepb.SessionResponse.FromString(r) for r in responses]
        if replies and replies[0].WhichOneof("body") != "opened":
            return f"no SessionOpened first ({code})"
        answers = replies[1:]
        if answers and (answers[0].request_id != 1
                        or answers[0].order_ack.reject_reason != cpb.REJECT_UNKNOWN_INSTRUMENT):
            return f"first request answered wrongly: {answers}"[:400]
        for extra in answers[1:]:  # garbage that happened to parse: answered, and never accepted
            body = extra.WhichOneof("body")
            ack = getattr(extra, body) if body else None
            if body in ("order_ack",) and (ack.accepted or not ack.reject_reason):
                return f"garbage accepted: {extra}"
            if body == "mass_cancel_ack" and ack.cancelled_count:
                return f"garbage cancelled: {extra}"
        return None if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.OK) else f"session status {code}"
    return check


# -- RUNNING ---------------------------------------------------------------------------------


def _run(channel: grpc.Channel, case: Case) -> tuple[grpc.StatusCode, object]:
    try:
        if case.kind == "unary":
            return grpc.StatusCode.OK, channel.unary_unary(case.path)(case.payload, metadata=case.metadata, timeout=30)
        if case.kind == "subscribe":
            call = channel.unary_stream(case.path)(case.payload, metadata=case.metadata, timeout=30)
            first = next(call)
            call.cancel()
            return grpc.StatusCode.OK, first
        responses = []
        call = channel.stream_stream(case.path)(iter(case.payload), metadata=case.metadata, timeout=30)
        for r in call:
            responses.append(r)
        return grpc.StatusCode.OK, responses
    except grpc.RpcError as exc:
        if case.kind == "session":
            return exc.code(), responses
        return exc.code(), exc.details()


def _book_state(hub) -> dict:
    return {s: engine_orders(hub, s) for s in ALL_SYMBOLS}


def test_ten_thousand_malformed_requests(server, connect) -> None:
    hub = server.hub
    rng = random.Random(SEED)
    # Resting orders to aim at: TARGET's own, OTHER's, and client order ids already used.
    target, other = connect(TARGET), connect(OTHER)
    mine, theirs, coids = [], [], []
    for i, symbol in enumerate(ALL_SYMBOLS):
        inst = hub.by_symbol[symbol]
        for k, (client, sink) in enumerate(((target, mine), (other, theirs))):
            coid = f"dup-{i}-{k}"
            ack = client.submit(symbol, "buy" if k else "sell", inst.min_quantity * 3,
                                inst.reference_price + (-(i + 1) if k else (i + 1)) * inst.tick_size,
                                client_order_id=coid)
            assert ack.accepted
            sink.append((symbol, ack.order_id))
            if client is target:
                coids.append(coid)
    resting = {"mine": mine, "theirs": theirs, "coids": coids,
               "aapl_levels": LocalBook.snapshot_levels(target.snapshot("AAPL"))}
    cases = build_cases(hub, rng, resting)
    assert sum(c.requests for c in cases) == TOTAL
    rng.shuffle(cases)

    before_digests, before_books = engine_digests(hub), _book_state(hub)
    before_open = {p: connect(p).open_orders() for p in ACCOUNTS}
    before_status = hub.state_digest()
    seq_before = hub.last_sequence

    started = time.monotonic()
    options = [("grpc.max_receive_message_length", 64 * MB), ("grpc.max_send_message_length", 64 * MB)]
    channels = [grpc.insecure_channel(server.target, options=options) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            outcomes = list(pool.map(lambda ic: _run(channels[ic[0] % 4], ic[1]), enumerate(cases)))
    finally:
        for ch in channels:
            ch.close()
    elapsed = time.monotonic() - started

    codes = Counter(code for code, _ in outcomes)
    failures = Counter()
    examples = {}
    for case, (code, reply) in zip(cases, outcomes, strict=True):
        problem = case.check(code, reply)
        if problem:
            failures[case.what] += 1
            examples.setdefault(case.what, problem)
    assert grpc.StatusCode.UNKNOWN not in codes, codes
    assert not failures, (failures, examples)
    # the mix really exercised both kinds of answers
    assert codes[grpc.StatusCode.OK] > 5000, codes
    assert codes[grpc.StatusCode.INVALID_ARGUMENT] + codes[grpc.StatusCode.INTERNAL] > 1000, codes
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] == 8 and codes[grpc.StatusCode.NOT_FOUND] > 100, codes

    # nothing was booked, cancelled or amended; the hub still serves
    assert engine_digests(hub) == before_digests
    assert hub.state_digest() == before_status
    assert _book_state(hub) == before_books
    assert {p: connect(p).open_orders() for p in ACCOUNTS} == before_open
    assert hub.last_sequence > seq_before  # rejects are sequenced (journaled), that is all
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    ack = target.submit("AAPL", "buy", 1, P - 60 * TICK)
    assert ack.accepted
    assert hub.status()["sessions"] == 0
    assert elapsed < 60, f"{TOTAL} requests took {elapsed:.1f} s"


def test_undeserialisable_requests_do_not_exhaust_the_connection(server) -> None:
    """Regression (found by this suite): grpcio leaked the server call and an HTTP/2 stream slot
    for every unary request whose bytes did not deserialise, so after max_concurrent_streams (256)
    of them the connection refused every RPC, valid ones included; health checks need no token,
    so anybody could do it. The hub now decodes such requests in the handler (INVALID_ARGUMENT)."""
    garbage = b"\xff\xff"
    valid = oepb.NewOrderRequest(symbol="NOPE").SerializeToString()
    # a connection of its own (grpc shares connections between channels with equal options)
    with grpc.insecure_channel(server.target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        checks = [(channel.unary_unary("/grpc.health.v1.Health/Check"), ()),
                  (channel.unary_unary("/hub.v1.OrderEntry/SubmitOrder"), _md(GARBAGE)),
                  (channel.unary_unary("/hub.v1.MarketData/Subscribe"), _md(GARBAGE))]
        codes = Counter()
        for _ in range(150):
            for call, metadata in checks:
                try:
                    call(garbage, metadata=metadata, timeout=5)
                    codes[grpc.StatusCode.OK] += 1
                except grpc.RpcError as exc:
                    codes[exc.code()] += 1
        assert set(codes) <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL}, codes
        # the same connection still serves everything
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        ack = oepb.OrderAck.FromString(checks[1][0](valid, metadata=_md(GARBAGE), timeout=5))
        assert (ack.accepted, ack.reject_reason) == (False, cpb.REJECT_UNKNOWN_INSTRUMENT)
