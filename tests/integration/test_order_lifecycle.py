"""Item 1: an order's whole life over unary calls and over the streaming session.

Submit, partial fill by another participant (both sides told, the maker unsolicited), replace
with and without keeping time priority, cancel, full fill, IOC remainder, then positions and the
execution history, all checked report by report.
"""

from __future__ import annotations

import queue

import pytest

from hub.v1 import common_pb2 as cpb
from tests.integration.support import TICK, P, drop_copies_attached, engine_depth, engine_orders, read_n

A_ACCOUNT, B_ACCOUNT = 1001, 1002


def _strip(reports) -> list[cpb.ExecutionReport]:
    """Reports without hub time (checked separately against the ack)."""
    out = []
    for r in reports:
        copy = cpb.ExecutionReport()
        copy.CopyFrom(r)
        copy.hub_time_ns = 0
        out.append(copy)
    return out


def _scalper_fee(price: int, quantity: int, aggressor: bool) -> int:
    """Both sides here are scalpers: 0.1 bp of notional as taker, a net 0.1 bp rebate as maker.
    AAPL prices have 4 decimals, so 0.1 bp of price x qty is price * qty / 10**7 cents; charges
    round up and rebates toward zero (the venue's rounding rule)."""
    exact_numerator, denominator = price * quantity, 10**7
    return -(-exact_numerator // denominator) if aggressor else -(exact_numerator // denominator)


def _report(ack, order_id: int, coid: str, account: int, exec_type: int, side: int, price: int, leaves: int = 0,
            **fields) -> cpb.ExecutionReport:
    if exec_type == cpb.EXEC_TRADE:
        fields.update(fee=_scalper_fee(fields["last_price"], fields["last_quantity"], fields.get("aggressor", False)),
                      fee_currency="USD", fee_schedule="default-v1")
    return cpb.ExecutionReport(sequence=ack.sequence, symbol="AAPL", order_id=order_id, client_order_id=coid,
                               account=account, exec_type=exec_type, side=side, price=price,
                               leaves_quantity=leaves, **fields)


def _check_ack(ack, expected: list[cpb.ExecutionReport], coid: str = "", order_id: int = 0) -> None:
    assert ack.accepted, ack
    assert ack.reject_reason == cpb.REJECT_REASON_UNSPECIFIED and ack.reject_text == ""
    assert ack.sequence > 0 and ack.hub_time_ns > 0
    if coid:
        assert ack.client_order_id == coid
    if order_id:
        assert ack.order_id == order_id
    assert _strip(ack.executions) == expected
    assert all(r.hub_time_ns == ack.hub_time_ns for r in ack.executions)


class _Side:
    """One participant: its client, how it enters orders (unary or session), its drop copy."""

    def __init__(self, client, mode: str) -> None:
        self.client = client
        self.session = client.open_session(timeout=10) if mode == "session" else None
        self.entry = self.session or client
        self.drop = client.drop_copy()
        self.told: list[cpb.ExecutionReport] = []  # everything this participant should have been told

    def ack(self, ack):
        self.told.extend(ack.executions)
        return ack

    def unsolicited(self, expected: list[cpb.ExecutionReport], cause_ack) -> None:
        """Reports caused by someone else's command: they reach the session (if the order was
        entered on one) as request_id-0 messages, and always the drop copy (checked at the end)."""
        if self.session is not None:
            got = []
            for _ in expected:
                try:
                    got.append(self.session.executions.get(timeout=5))
                except queue.Empty:
                    raise AssertionError(f"missing unsolicited report; got {got}") from None
            assert _strip(got) == expected
            assert all(r.hub_time_ns == cause_ack.hub_time_ns for r in got)
            self.told.extend(got)
        else:
            history = self.client.executions(after_sequence=cause_ack.sequence - 1)
            mine = [r for r in history if r.sequence == cause_ack.sequence]
            assert _strip(mine) == expected
            self.told.extend(mine)


@pytest.mark.parametrize("mode", ["unary", "session"])
def test_order_lifecycle(server, connect, mode: str) -> None:
    hub = server.hub
    a = _Side(connect("scalper-1"), mode)
    b = _Side(connect("scalper-2"), mode)
    drop_copies_attached(hub, "scalper-1")
    drop_copies_attached(hub, "scalper-2")
    BUY, SELL = cpb.BUY, cpb.SELL

    # -- submit: two bids at the same price, A-1 first in time
    a1 = a.ack(a.entry.submit("AAPL", "buy", 100, P, time_in_force="gtc", client_order_id="A-1"))
    assert a1.order_id == a1.sequence
    _check_ack(a1, [_report(a1, a1.order_id, "A-1", A_ACCOUNT, cpb.EXEC_NEW, BUY, P, 100)], "A-1")
    a2 = a.ack(a.entry.submit("AAPL", "buy", 50, P, time_in_force="gtc", client_order_id="A-2"))
    assert a2.order_id == a2.sequence > a1.order_id
    _check_ack(a2, [_report(a2, a2.order_id, "A-2", A_ACCOUNT, cpb.EXEC_NEW, BUY, P, 50)], "A-2")
    assert engine_depth(hub, "AAPL") == ([(P, 150)], [])

    # -- partial fill by another participant: B takes 30 from A-1
    b1 = b.ack(b.entry.submit("AAPL", "sell", 30, P, time_in_force="gtc", client_order_id="B-1"))
    trade_id = b1.executions[1].trade_id
    assert trade_id > 0
    _check_ack(b1, [
        _report(b1, b1.order_id, "B-1", B_ACCOUNT, cpb.EXEC_NEW, SELL, P, 30),
        _report(b1, b1.order_id, "B-1", B_ACCOUNT, cpb.EXEC_TRADE, SELL, P, 0, last_price=P, last_quantity=30,
                trade_id=trade_id, aggressor=True),
        _report(b1, b1.order_id, "B-1", B_ACCOUNT, cpb.EXEC_FILLED, SELL, P, 0),
    ], "B-1")
    a.unsolicited([_report(b1, a1.order_id, "A-1", A_ACCOUNT, cpb.EXEC_TRADE, BUY, P, 70, last_price=P,
                           last_quantity=30, trade_id=trade_id, aggressor=False)], b1)

    def open_orders():
        return [(o.order_id, o.client_order_id, o.account, o.side, o.price, o.leaves_quantity, o.display_quantity,
                 o.time_in_force, o.symbol) for o in a.client.open_orders()]

    assert open_orders() == [(a1.order_id, "A-1", A_ACCOUNT, BUY, P, 70, 0, cpb.GTC, "AAPL"),
                             (a2.order_id, "A-2", A_ACCOUNT, BUY, P, 50, 0, cpb.GTC, "AAPL")]

    # -- replace, same price and less quantity: keeps time priority (A-1 still fills first)
    r1 = a.ack(a.entry.replace("AAPL", a1.order_id, P, 60))
    _check_ack(r1, [_report(r1, a1.order_id, "A-1", A_ACCOUNT, cpb.EXEC_REPLACED, BUY, P, 60)], order_id=a1.order_id)
    b2 = b.ack(b.entry.submit("AAPL", "sell", 10, P, client_order_id="B-2"))
    assert [r.exec_type for r in b2.executions] == [cpb.EXEC_NEW, cpb.EXEC_TRADE, cpb.EXEC_FILLED]
    a.unsolicited([_report(b2, a1.order_id, "A-1", A_ACCOUNT, cpb.EXEC_TRADE, BUY, P, 50, last_price=P,
                           last_quantity=10, trade_id=b2.executions[1].trade_id, aggressor=False)], b2)
    assert [o[:6] for o in open_orders()] == [(a1.order_id, "A-1", A_ACCOUNT, BUY, P, 50),
                                              (a2.order_id, "A-2", A_ACCOUNT, BUY, P, 50)]

    # -- replace to more quantity: loses priority, A-2 is now first in the queue
    r2 = a.ack(a.entry.replace("AAPL", a1.order_id, P, 80))
    _check_ack(r2, [_report(r2, a1.order_id, "A-1", A_ACCOUNT, cpb.EXEC_REPLACED, BUY, P, 80)], order_id=a1.order_id)
    assert [o.order_id for o in engine_orders(hub, "AAPL")] == [a2.order_id, a1.order_id]
    b3 = b.ack(b.entry.submit("AAPL", "sell", 10, P, client_order_id="B-3"))
    a.unsolicited([_report(b3, a2.order_id, "A-2", A_ACCOUNT, cpb.EXEC_TRADE, BUY, P, 40, last_price=P,
                           last_quantity=10, trade_id=b3.executions[1].trade_id, aggressor=False)], b3)
    assert [o[:6] for o in open_orders()] == [(a1.order_id, "A-1", A_ACCOUNT, BUY, P, 80),
                                              (a2.order_id, "A-2", A_ACCOUNT, BUY, P, 40)]

    # -- replace to a better price: A-2 leads; B's sell at P trades at A-2's price
    r3 = a.ack(a.entry.replace("AAPL", a2.order_id, P + TICK, 40))
    _check_ack(r3, [_report(r3, a2.order_id, "A-2", A_ACCOUNT, cpb.EXEC_REPLACED, BUY, P + TICK, 40)])
    b4 = b.ack(b.entry.submit("AAPL", "sell", 10, P, client_order_id="B-4"))
    assert b4.executions[1].last_price == P + TICK and b4.executions[1].price == P
    a.unsolicited([_report(b4, a2.order_id, "A-2", A_ACCOUNT, cpb.EXEC_TRADE, BUY, P + TICK, 30,
                           last_price=P + TICK, last_quantity=10, trade_id=b4.executions[1].trade_id,
                           aggressor=False)], b4)
    assert engine_depth(hub, "AAPL") == ([(P + TICK, 30), (P, 80)], [])

    # -- cancel
    c1 = a.ack(a.entry.cancel("AAPL", a2.order_id))
    _check_ack(c1, [_report(c1, a2.order_id, "A-2", A_ACCOUNT, cpb.EXEC_CANCELLED, BUY, P + TICK, 0,
                            cancel_reason=cpb.CANCEL_USER_REQUESTED)], order_id=a2.order_id)
    again = a.entry.cancel("AAPL", a2.order_id)
    assert not again.accepted and again.reject_reason == cpb.REJECT_UNKNOWN_ORDER and not again.executions
    assert [o[:6] for o in open_orders()] == [(a1.order_id, "A-1", A_ACCOUNT, BUY, P, 80)]

    # -- IOC larger than the book: fills A-1 completely, the remainder is cancelled
    b5 = b.ack(b.entry.submit("AAPL", "sell", 100, P, time_in_force="ioc", client_order_id="B-5"))
    t5 = b5.executions[1].trade_id
    _check_ack(b5, [
        _report(b5, b5.order_id, "B-5", B_ACCOUNT, cpb.EXEC_NEW, SELL, P, 100),
        _report(b5, b5.order_id, "B-5", B_ACCOUNT, cpb.EXEC_TRADE, SELL, P, 20, last_price=P, last_quantity=80,
                trade_id=t5, aggressor=True),
        _report(b5, b5.order_id, "B-5", B_ACCOUNT, cpb.EXEC_CANCELLED, SELL, P, 0,
                cancel_reason=cpb.CANCEL_IMMEDIATE_REMAINDER),
    ], "B-5")
    a.unsolicited([
        _report(b5, a1.order_id, "A-1", A_ACCOUNT, cpb.EXEC_TRADE, BUY, P, 0, last_price=P, last_quantity=80,
                trade_id=t5, aggressor=False),
        _report(b5, a1.order_id, "A-1", A_ACCOUNT, cpb.EXEC_FILLED, BUY, P, 0),
    ], b5)
    trade_ids = [b.executions[1].trade_id for b in (b1, b2, b3, b4, b5)]
    assert trade_ids == sorted(set(trade_ids))
    assert open_orders() == [] and b.client.open_orders() == []
    assert engine_depth(hub, "AAPL") == ([], [])

    # -- positions after the trades
    bought = 30 + 10 + 10 + 10 + 80
    cost = (30 + 10 + 10 + 80) * P + 10 * (P + TICK)
    [pa] = a.client.positions()
    assert (pa.symbol, pa.account, pa.net_quantity, pa.bought_quantity, pa.sold_quantity, pa.net_cost_raw) == (
        "AAPL", A_ACCOUNT, bought, bought, 0, str(cost))
    [pb] = b.client.positions()
    assert (pb.symbol, pb.account, pb.net_quantity, pb.bought_quantity, pb.sold_quantity, pb.net_cost_raw) == (
        "AAPL", B_ACCOUNT, -bought, 0, bought, str(-cost))

    # -- execution history: everything each side was told, in order; after_sequence and limit
    for side in (a, b):
        assert side.client.executions() == side.told
        cut = b3.sequence
        assert side.client.executions(after_sequence=cut) == [r for r in side.told if r.sequence > cut]
        assert side.client.executions(after_sequence=cut, limit=2) == [r for r in side.told if r.sequence > cut][:2]
        assert side.client.executions(after_sequence=hub.last_sequence) == []
        # the drop copy saw exactly the same reports, in the same order
        assert read_n(side.drop, len(side.told)) == side.told
    if mode == "session":
        assert b.session.executions.empty() and a.session.executions.empty()
        # the aggressor's reports came in its acks only, never duplicated as unsolicited
        assert all(r.account == A_ACCOUNT for r in a.told) and all(r.account == B_ACCOUNT for r in b.told)
