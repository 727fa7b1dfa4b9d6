"""Item 4: a participant sees, amends and trades only its own orders and accounts."""

from __future__ import annotations

from hub.v1 import common_pb2 as cpb
from tests.integration.support import TICK, M, P, assert_quiet, drop_copies_attached, engine_digests, engine_order, read_n


def test_participants_cannot_see_or_touch_each_others_orders(server, connect) -> None:
    hub = server.hub
    a, b, c = connect("scalper-1"), connect("scalper-2"), connect("inst-2")
    drops = {p: cl.drop_copy() for p, cl in (("scalper-1", a), ("scalper-2", b), ("inst-2", c))}
    for p in drops:
        drop_copies_attached(hub, p)
    b_session = b.open_session(timeout=10)
    a_session = a.open_session(timeout=10)

    b1 = b.submit("AAPL", "buy", 100, P - TICK, client_order_id="secret-1")
    b2 = b_session.submit("MSFT", "sell", 40, M + TICK, time_in_force="day", client_order_id="secret-2")
    a1 = a.submit("AAPL", "sell", 30, P + TICK, client_order_id="mine-1")
    assert b1.accepted and b2.accepted and a1.accepted
    # a trade between them: A sells 20 into B's bid
    a2 = a_session.submit("AAPL", "sell", 20, P - TICK, time_in_force="ioc", client_order_id="mine-2")
    assert [r.exec_type for r in a2.executions] == [cpb.EXEC_NEW, cpb.EXEC_TRADE, cpb.EXEC_FILLED]
    b_view = {oid: engine_order(hub, sym, oid) for sym, oid in (("AAPL", b1.order_id), ("MSFT", b2.order_id))}
    b_open = b.open_orders()
    assert [(o.order_id, o.leaves_quantity) for o in b_open] == [(b1.order_id, 80), (b2.order_id, 40)]

    # -- visibility: open orders, executions, positions, drop copies
    assert [o.order_id for o in a.open_orders()] == [a1.order_id]
    assert a.open_orders("MSFT") == [] and [o.order_id for o in a.open_orders("AAPL")] == [a1.order_id]
    a_execs = a.executions()
    mine = {a1.order_id, a2.order_id}
    assert a_execs and all(r.order_id in mine and r.account == 1001 for r in a_execs)
    assert not any("secret" in r.client_order_id for r in a_execs)
    assert {r.order_id for r in b.executions()} == {b1.order_id, b2.order_id}
    assert [(p.symbol, p.account, p.net_quantity) for p in a.positions()] == [("AAPL", 1001, -20)]
    assert [(p.symbol, p.account, p.net_quantity) for p in b.positions()] == [("AAPL", 1002, 20)]
    assert c.open_orders() == [] and c.executions() == [] and c.positions() == []

    # -- amending someone else's order looks exactly like amending no order at all
    digests = engine_digests(hub)
    for entry in (a, a_session):
        for symbol, order_id in (("AAPL", b1.order_id), ("MSFT", b2.order_id)):
            for ack in (entry.cancel(symbol, order_id), entry.replace(symbol, order_id, P, 1)):
                assert not ack.accepted and ack.reject_reason == cpb.REJECT_UNKNOWN_ORDER, ack
                assert list(ack.executions) == []
            # the same id with its own symbol or not, and an id that never existed, answer the same
            ghost = entry.cancel(symbol, 999_999)
            assert (ghost.accepted, ghost.reject_reason) == (False, cpb.REJECT_UNKNOWN_ORDER)
    assert engine_digests(hub) == digests
    # a mass cancel of every symbol and account of A leaves B alone
    mc = a.mass_cancel()
    assert mc.accepted and mc.cancelled_count == 1  # a1 only
    assert b.open_orders() == b_open
    assert {oid: engine_order(hub, sym, oid) for sym, oid in (("AAPL", b1.order_id), ("MSFT", b2.order_id))} == b_view
    digests = engine_digests(hub)

    # -- using B's (or anyone else's) account is refused, on every kind of request
    for account in (1002, 2001, 3001, -1, 2**62):
        order = a.submit("AAPL", "buy", 1, P - 10 * TICK, account=account)
        assert (order.accepted, order.reject_reason) == (False, cpb.REJECT_ACCOUNT_NOT_PERMITTED), order
        order = a_session.submit("AAPL", "buy", 1, P - 10 * TICK, account=account)
        assert (order.accepted, order.reject_reason) == (False, cpb.REJECT_ACCOUNT_NOT_PERMITTED), order
        mc = a.mass_cancel(account=account)
        assert (mc.accepted, mc.reject_reason, mc.cancelled_count) == (False, cpb.REJECT_ACCOUNT_NOT_PERMITTED, 0)
        mq = a.mass_quote([("AAPL", P - 20 * TICK, 1, P + 20 * TICK, 1)], account=account)
        assert (mq.accepted, mq.reject_reason, list(mq.quotes)) == (False, cpb.REJECT_ACCOUNT_NOT_PERMITTED, [])
    assert b.open_orders() == b_open
    assert engine_digests(hub) == digests
    # a participant with two accounts may use both (the positive control)
    inst = connect("inst-1")
    second = inst.submit("AAPL", "buy", 5, P - 30 * TICK, account=2002)
    assert second.accepted and second.executions[0].account == 2002
    assert [o.account for o in inst.open_orders()] == [2002]

    # -- drop copies: each participant's stream carries its own reports only
    a_told, b_told = a.executions(), b.executions()
    assert read_n(drops["scalper-1"], len(a_told)) == a_told
    assert read_n(drops["scalper-2"], len(b_told)) == b_told
    for stream in drops.values():
        assert_quiet(stream)
    # b1 (filled by A) was entered by unary, b2 (on B's session) never traded: nothing unsolicited
    assert b_session.executions.empty() and a_session.executions.empty()


def test_open_orders_come_in_pages_of_ones_own_orders(server, connect, monkeypatch) -> None:
    """GetOpenOrders pages by order id (``after_order_id``, ``limit``, ``more``) and caps a page at the
    server maximum, so a market maker's book never outgrows a reply; the SDK walks every page."""
    import hub.service
    from hub.v1 import account_pb2

    a, b = connect("scalper-1"), connect("scalper-2")
    mine = [a.submit("AAPL" if k % 3 else "MSFT", "buy", 10, (P if k % 3 else M) - (1 + k % 7) * TICK,
                     client_order_id=f"p-{k}").order_id for k in range(23)]
    theirs = b.submit("AAPL", "buy", 10, P - TICK).order_id
    assert theirs not in mine
    assert [o.order_id for o in a.open_orders(page_size=5)] == sorted(mine)
    aapl = [o.order_id for o in a.open_orders("AAPL", page_size=4)]
    assert aapl == sorted(oid for k, oid in enumerate(mine) if k % 3)

    def page(after: int, limit: int) -> account_pb2.OpenOrders:
        return a.account_stub.GetOpenOrders(account_pb2.OpenOrdersRequest(after_order_id=after, limit=limit),
                                            metadata=a.metadata, timeout=10)

    first = page(0, 10)
    assert [o.order_id for o in first.orders] == sorted(mine)[:10] and first.more
    last = page(sorted(mine)[19], 10)
    assert [o.order_id for o in last.orders] == sorted(mine)[20:] and not last.more
    monkeypatch.setattr(hub.service, "_MAX_OPEN_ORDERS", 8)
    capped = page(0, 0)
    assert len(capped.orders) == 8 and capped.more
    assert len(page(0, 1_000).orders) == 8


def test_executions_page_through_a_kill_whose_cancels_share_one_sequence(server, connect) -> None:
    """A kill's settle step reports every cancelled order under its one sequence, so a page can end
    inside it; the ``skip`` cursor picks up the rest. Before, a client asking for the reports after
    the last sequence it saw lost the rest of that group."""
    from compliance.risk import Scope
    from hub.auth import Identity

    hub = server.hub
    a = connect("scalper-1")
    placed = [a.submit("AAPL", "buy", 10, P - (1 + k) * TICK).order_id for k in range(8)]
    operator = Identity.of(next(p for p in hub.config.participants if p.id == "operator"))
    hub.kill(operator, Scope.PARTICIPANT, "scalper-1")
    whole = a.executions()
    cancels = [r for r in whole if r.exec_type == cpb.EXEC_CANCELLED]
    assert sorted(r.order_id for r in cancels) == sorted(placed) and len({r.sequence for r in cancels}) == 1
    for size in (3, 5, 7):
        paged = a.all_executions(page_size=size)
        assert [(r.sequence, r.order_id, r.exec_type) for r in paged] == \
               [(r.sequence, r.order_id, r.exec_type) for r in whole], size
    first = a.executions(limit=10)
    assert len(first) == 10
    rest = a.all_executions(after_sequence=0, page_size=4)
    assert len(rest) == len(whole)
