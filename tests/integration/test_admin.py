"""Item 9: halts and resumes (symbol, asset class, whole hub), end of session, hub status."""

from __future__ import annotations

import time

from hub.client import BookSet
from hub.v1 import common_pb2 as cpb
from tests.integration.support import (
    TICK,
    M,
    P,
    drop_copies_attached,
    engine_depth,
    engine_digests,
    md_sequence,
    read_n,
    wait_until,
)

WATCHED = ("AAPL", "MSFT", "BTC-USD")


def _updates_until(stream, books: BookSet, hub) -> list:
    """Everything the subscriber receives until it is level with the hub again."""
    got = []
    targets = {s: md_sequence(hub, s) for s in WATCHED}
    while any(books[s].md_sequence < targets[s] for s in WATCHED):
        update = stream.read(timeout=5)
        assert update is not None
        books.apply(update)  # strict: a status update is part of the sequence like any other
        got.append(update)
    return got


def _statuses(updates) -> list[tuple[str, bool]]:
    return [(u.symbol, u.status.halted) for u in updates if u.WhichOneof("body") == "status"]


def test_halt_resume_and_end_of_session(server, connect) -> None:
    hub = server.hub
    op, trader, other, watcher = connect("operator"), connect("scalper-1"), connect("scalper-2"), connect("regulator")
    stream = watcher.subscribe(list(WATCHED))
    books = BookSet()
    for u in read_n(stream, len(WATCHED)):
        books.apply(u)
    drop = trader.drop_copy()
    drop_copies_attached(hub, "scalper-1")
    session = trader.open_session(timeout=10)

    day_aapl = trader.submit("AAPL", "buy", 10, P - TICK, time_in_force="day")
    gtc_aapl = trader.submit("AAPL", "buy", 20, P - 2 * TICK, time_in_force="gtc")
    day_msft = session.submit("MSFT", "sell", 30, M + TICK, time_in_force="day")
    gtc_msft = session.submit("MSFT", "sell", 40, M + 2 * TICK, time_in_force="gtc")
    other_day = other.submit("AAPL", "sell", 5, P + 3 * TICK, time_in_force="day")
    assert all(a.accepted for a in (day_aapl, gtc_aapl, day_msft, gtc_msft, other_day))
    _updates_until(stream, books, hub)

    # -- halt one symbol
    seq_before = hub.last_sequence
    halt = op.halt("AAPL")
    assert halt.accepted and halt.reject_reason == 0 and halt.sequence == seq_before + 1 == hub.last_sequence
    updates = _updates_until(stream, books, hub)
    assert _statuses(updates) == [("AAPL", True)] and len(updates) == 1
    assert updates[0].sequence == halt.sequence and updates[0].hub_time_ns > 0
    assert books["AAPL"].halted and not books["MSFT"].halted
    assert trader.snapshot("AAPL").halted and not trader.snapshot("MSFT").halted
    assert [list(e.halted_symbols) for e in op.status().engines] == [["AAPL"], [], [], []]

    digests = engine_digests(hub)
    for entry in (trader, session):
        for kwargs in ({"time_in_force": "gtc"}, {"time_in_force": "day"}, {"order_type": "market", "time_in_force": "ioc"}):
            price = 0 if kwargs.get("order_type") == "market" else P
            ack = entry.submit("AAPL", "sell", 1, price, **kwargs)
            assert (ack.accepted, ack.reject_reason) == (False, cpb.REJECT_INSTRUMENT_HALTED), ack
            assert "halted" in ack.reject_text and not ack.executions
        rep = entry.replace("AAPL", gtc_aapl.order_id, P - 3 * TICK, 20)
        assert (rep.accepted, rep.reject_reason) == (False, cpb.REJECT_INSTRUMENT_HALTED)
    quote = connect("mm-1").mass_quote([("AAPL", P - 9 * TICK, 1, P + 9 * TICK, 1),
                                        ("MSFT", M - 9 * TICK, 1, M + 9 * TICK, 1)])
    q_aapl, q_msft = quote.quotes
    assert (q_aapl.bid_reject_reason, q_aapl.ask_reject_reason, q_aapl.bid_order_id) == (
        cpb.REJECT_INSTRUMENT_HALTED, cpb.REJECT_INSTRUMENT_HALTED, 0)
    assert q_msft.bid_order_id and q_msft.ask_order_id  # other symbols trade on
    assert engine_digests(hub)[cpb.EQUITY] != digests[cpb.EQUITY]  # (the MSFT quote)
    assert engine_depth(hub, "AAPL") == ([(P - TICK, 10), (P - 2 * TICK, 20)], [(P + 3 * TICK, 5)])
    # cancels still work on a halted symbol
    cancel = trader.cancel("AAPL", gtc_aapl.order_id)
    assert cancel.accepted and cancel.executions[0].exec_type == cpb.EXEC_CANCELLED
    msft_buy = trader.submit("MSFT", "buy", 1, M - 20 * TICK)
    assert msft_buy.accepted

    # -- resume: orders are accepted again
    resume = op.resume("AAPL")
    assert resume.accepted and resume.sequence > halt.sequence
    updates = _updates_until(stream, books, hub)
    assert ("AAPL", False) in _statuses(updates) and _statuses(updates)[-1] == ("AAPL", False)
    assert not books["AAPL"].halted and not trader.snapshot("AAPL").halted
    gtc_aapl = trader.submit("AAPL", "buy", 20, P - 2 * TICK, time_in_force="gtc")
    assert gtc_aapl.accepted

    # -- an asset class, then the whole hub
    assert op.halt(asset_class="equity").accepted
    assert sorted(_statuses(_updates_until(stream, books, hub))) == [("AAPL", True), ("MSFT", True)]
    assert trader.submit("MSFT", "buy", 1, M - 20 * TICK).reject_reason == cpb.REJECT_INSTRUMENT_HALTED
    btc_buy = trader.submit("BTC-USD", "buy", 10_000, 90_000_00)
    assert btc_buy.accepted
    assert op.resume(asset_class="equity").accepted
    assert sorted(_statuses(_updates_until(stream, books, hub))) == [("AAPL", False), ("MSFT", False)]
    assert op.halt().accepted
    assert sorted(_statuses(_updates_until(stream, books, hub))) == [("AAPL", True), ("BTC-USD", True),
                                                                       ("MSFT", True)]
    assert [list(e.halted_symbols) for e in op.status().engines] == [
        ["AAPL", "MSFT"], ["ESZ6", "GCZ6"], ["EURUSD", "GBPUSD"], ["BTC-USD", "ETH-USD"]]
    assert trader.submit("BTC-USD", "buy", 10_000, 90_000_00).reject_reason == cpb.REJECT_INSTRUMENT_HALTED
    assert op.resume().accepted
    assert sorted(_statuses(_updates_until(stream, books, hub))) == [("AAPL", False), ("BTC-USD", False),
                                                                       ("MSFT", False)]
    assert [list(e.halted_symbols) for e in op.status().engines] == [[], [], [], []]

    # -- bad scopes are refused and change nothing
    state = (hub.state_digest(), [list(e.halted_symbols) for e in op.status().engines])
    for call in (op.halt, op.resume, op.end_of_session):
        for kwargs in ({"symbol": "AAPL", "asset_class": "equity"}, {"symbol": "NOPE"}, {"asset_class": 99}):
            ack = call(**kwargs)
            assert (ack.accepted, ack.reject_reason, ack.sequence) == (False, cpb.REJECT_FIELD_OUT_OF_RANGE, 0), ack
            assert ack.reject_text
    assert (hub.state_digest(), [list(e.halted_symbols) for e in op.status().engines]) == state

    # -- end of session for one symbol: its DAY orders expire, GTC and other symbols stay
    eos = op.end_of_session("AAPL")
    assert eos.accepted and eos.affected_orders == 2 and eos.sequence > 0
    open_now = {o.order_id: o.time_in_force for o in trader.open_orders()}
    assert day_aapl.order_id not in open_now and gtc_aapl.order_id in open_now and day_msft.order_id in open_now
    assert other.open_orders() == []
    assert engine_depth(hub, "AAPL") == ([(P - 2 * TICK, 20)], [])
    # -- then for the whole hub: the remaining DAY order (MSFT, entered on the session) expires
    eos_all = op.end_of_session()
    assert eos_all.accepted and eos_all.affected_orders == 1
    assert sorted(o.order_id for o in trader.open_orders()) == sorted(
        [gtc_aapl.order_id, gtc_msft.order_id, msft_buy.order_id, btc_buy.order_id])
    assert all(o.time_in_force == cpb.GTC for o in trader.open_orders())
    expired = [r for r in trader.executions() if r.exec_type == cpb.EXEC_EXPIRED]
    assert [(r.order_id, r.sequence, r.leaves_quantity) for r in expired] == [
        (day_aapl.order_id, eos.sequence, 0), (day_msft.order_id, eos_all.sequence, 0)]
    # the session that entered the MSFT DAY order was told; the drop copy saw both
    assert session.executions.get(timeout=5).order_id == day_msft.order_id
    told = trader.executions()
    assert read_n(drop, len(told)) == told
    _updates_until(stream, books, hub)
    for s in WATCHED:
        assert (books[s].bids, books[s].asks) == engine_depth(hub, s)

    # -- status: sequence, digests, engines, connections
    status = op.status()
    assert status.last_sequence == hub.last_sequence
    assert status.state_digest == hub.state_digest() and len(status.state_digest) == 64
    assert abs(status.hub_time_ns - time.time_ns()) < 60 * 10**9
    per_engine = engine_digests(hub)
    assert [e.asset_class for e in status.engines] == [cpb.EQUITY, cpb.FUTURE, cpb.FX, cpb.CRYPTO]
    for e in status.engines:
        assert e.state_digest == per_engine[e.asset_class].hex()
        assert e.implementation in ("cython", "reference")
        resting = sum(len(hub.engines[ac].orders(i.instrument_id)) for ac in hub.engines if ac == e.asset_class
                      for i in hub.config.instruments if i.asset_class == ac)
        assert e.resting_orders == resting
    assert status.engines[0].resting_orders == 5  # AAPL GTC, MSFT GTC + buy, the two MSFT quotes
    assert status.connected_sessions == 1 and status.market_data_subscribers == 1
    session.close()
    stream.cancel()
    wait_until(lambda: op.status().connected_sessions == 0 and op.status().market_data_subscribers == 0,
               what="status to count the closed streams")
    assert op.status().last_sequence == hub.last_sequence


def test_kill_switches_and_position_limits_name_trading_participants_only(server, connect) -> None:
    """The operator and the regulator never trade: a kill or a position limit naming them is a
    typed reject that journals nothing (it changed the risk state before)."""
    from hub.v1 import admin_pb2 as adpb

    operator = connect("operator")
    before = server.hub.state_digest_bytes()
    for name in ("regulator", "operator"):
        ack = operator.admin_stub.Kill(adpb.KillRequest(scope=adpb.KILL_PARTICIPANT, participant_id=name),
                                       metadata=operator.metadata, timeout=10)
        assert not ack.accepted and ack.reject_reason == cpb.REJECT_FIELD_OUT_OF_RANGE
        ack = operator.admin_stub.SetPositionLimit(
            adpb.PositionLimitRequest(participant_id=name, symbol="AAPL", base_limit=5), metadata=operator.metadata,
            timeout=10)
        assert not ack.accepted and ack.reject_reason == cpb.REJECT_FIELD_OUT_OF_RANGE
    assert server.hub.state_digest_bytes() == before
    ack = operator.admin_stub.Kill(adpb.KillRequest(scope=adpb.KILL_PARTICIPANT, participant_id="scalper-1"),
                                   metadata=operator.metadata, timeout=10)
    assert ack.accepted  # a trading participant still can be
