"""Item 2: a client's book rebuilt from Subscribe equals the engine's book and GetSnapshot.

A seeded random flow of orders, icebergs, market orders, cancels and replaces from several
participants (unary and streaming) runs while a subscriber follows three instruments of three
engines; every increment must carry md_sequence = previous + 1.
"""

from __future__ import annotations

import random
from collections import defaultdict

from hub.client import BookSet, LocalBook
from hub.v1 import common_pb2 as cpb
from tests.integration.support import (
    assert_quiet,
    drop_copies_attached,
    engine_depth,
    engine_orders,
    follow_book,
    md_sequence,
    read_n,
    visible_from_orders,
)

SYMBOLS = ("AAPL", "MSFT", "EURUSD")
TRADERS = ("scalper-1", "scalper-2", "inst-1", "inst-2", "mm-1")
SEED = 20_26_1217
OPERATIONS = 420


def _random_flow(server, connect, rng: random.Random, operations: int) -> dict:
    """Run the flow; returns what was done (counts per kind, accepted icebergs)."""
    hub = server.hub
    clients = {p: connect(p) for p in TRADERS}
    entries = {p: (clients[p].open_session(timeout=10) if i % 2 else clients[p]) for i, p in enumerate(TRADERS)}
    live: dict[str, list[tuple[str, int]]] = defaultdict(list)  # participant -> (symbol, order id)
    stats: dict[str, int] = defaultdict(int)
    for _ in range(operations):
        who = rng.choice(TRADERS)
        entry = entries[who]
        roll = rng.random()
        if roll < 0.20 and live[who]:
            symbol, order_id = live[who].pop(rng.randrange(len(live[who])))
            ack = entry.cancel(symbol, order_id)
            assert ack.accepted or ack.reject_reason == cpb.REJECT_UNKNOWN_ORDER, ack  # it may have filled
            stats["cancel"] += 1
            continue
        if roll < 0.40 and live[who]:
            symbol, order_id = rng.choice(live[who])
            inst = hub.by_symbol[symbol]
            price = inst.reference_price + rng.randint(-6, 6) * inst.tick_size
            ack = entry.replace(symbol, order_id, price, rng.randint(1, 30) * inst.lot_size)
            assert ack.accepted or ack.reject_reason == cpb.REJECT_UNKNOWN_ORDER, ack
            if not ack.accepted or any(r.exec_type in (cpb.EXEC_FILLED, cpb.EXEC_CANCELLED) and r.order_id == order_id
                                       for r in ack.executions):
                live[who].remove((symbol, order_id))
            stats["replace"] += 1
            continue
        symbol = rng.choice(SYMBOLS)
        inst = hub.by_symbol[symbol]
        side = rng.choice(("buy", "sell"))
        account = 2002 if who == "inst-1" and rng.random() < 0.5 else 0
        if roll < 0.45:
            ack = entry.submit(symbol, side, rng.randint(1, 40) * inst.lot_size, 0, order_type="market",
                               time_in_force="ioc", account=account)
            stats["market"] += 1
        else:
            # Bids mostly below the reference, asks above, with overlap so that orders cross.
            offset = rng.randint(-3, 6) * inst.tick_size
            price = inst.reference_price - offset if side == "buy" else inst.reference_price + offset
            tif = rng.choice(("gtc", "gtc", "day", "ioc", "fok"))
            iceberg = tif in ("gtc", "day") and rng.random() < 0.25
            quantity = rng.randint(40, 120 if iceberg else 60) * inst.lot_size
            display = rng.randint(5, 15) * inst.lot_size if iceberg else 0
            ack = entry.submit(symbol, side, quantity, price, time_in_force=tif, display_quantity=display,
                               account=account)
            stats["iceberg" if iceberg else "limit"] += 1
        assert ack.accepted or ack.reject_reason in (cpb.REJECT_FOK_NOT_FILLABLE,), ack
        done = {r.order_id for r in ack.executions
                if r.exec_type in (cpb.EXEC_FILLED, cpb.EXEC_CANCELLED, cpb.EXEC_REJECTED)}
        if ack.accepted and ack.order_id not in done:
            live[who].append((symbol, ack.order_id))
    return {"clients": clients, "stats": dict(stats)}


def test_subscribed_book_equals_engine_book_after_random_flow(server, connect) -> None:
    hub = server.hub
    watcher = connect("regulator")  # market data needs authentication only, any role
    stream = watcher.subscribe(list(SYMBOLS))
    snapshots = read_n(stream, len(SYMBOLS))
    assert sorted(u.symbol for u in snapshots) == sorted(SYMBOLS)
    assert all(u.WhichOneof("body") == "snapshot" and u.md_sequence == 0 and not u.snapshot.bids
               and not u.snapshot.asks for u in snapshots)
    books = BookSet(strict=True)  # strict: a gap raises SequenceGapError
    for u in snapshots:
        books.apply(u)

    flow = _random_flow(server, connect, random.Random(SEED), OPERATIONS)
    stats = flow["stats"]
    assert stats["iceberg"] >= 20 and stats["cancel"] >= 40 and stats["replace"] >= 40 and stats["market"] >= 5

    seen = defaultdict(list)
    for symbol in SYMBOLS:
        target = md_sequence(hub, symbol)
        assert target > 100
        while books[symbol].md_sequence < target:
            update = stream.read(timeout=10)
            assert update is not None
            books.apply(update)
            seen[update.symbol].append(update)

    for symbol in SYMBOLS:
        target = md_sequence(hub, symbol)
        book = books[symbol]
        increments = seen[symbol]
        # no gaps, no repeats: exactly 1..target, in order, each naming the command that caused it
        assert [u.md_sequence for u in increments] == list(range(1, target + 1))
        assert all(u.sequence > 0 and u.hub_time_ns > 0 for u in increments)
        assert [u.sequence for u in increments] == sorted(u.sequence for u in increments)
        assert {u.WhichOneof("body") for u in increments} == {"delta", "trade", "top"}
        assert book.gaps == 0 and not book.needs_snapshot

        bids, asks = engine_depth(hub, symbol)
        assert bids and asks
        assert (book.bids, book.asks) == (bids, asks)
        snap = watcher.snapshot(symbol)
        assert snap.md_sequence == target == book.md_sequence
        assert LocalBook.snapshot_levels(snap) == (bids, asks)
        top = book.top
        assert (top.bid_price, top.bid_quantity, top.ask_price, top.ask_quantity) == (*bids[0], *asks[0])
        assert bids[0][0] < asks[0][0]  # never a crossed book
        depth2 = watcher.snapshot(symbol, depth=2)
        assert LocalBook.snapshot_levels(depth2) == (bids[:2], asks[:2])

        # icebergs show only their display slice: the L2 book is the sum of what orders show
        resting = engine_orders(hub, symbol)
        assert visible_from_orders(resting) == (bids, asks)
        hidden = [o for o in resting if o.display_size and o.remaining > o.display]
        assert hidden, f"{symbol}: the flow left no partly hidden iceberg to check"
        for o in hidden:
            level = dict(bids if o.side == cpb.BUY else asks)[o.price]
            behind = sum(x.remaining for x in resting if x.side == o.side and x.price == o.price)
            assert level < behind

    # every public trade is a trade some participant was told about (same id, price, quantity)
    clients = flow["clients"]
    private = {(r.trade_id, r.symbol, r.last_price, r.last_quantity)
               for c in clients.values() for r in c.executions() if r.exec_type == cpb.EXEC_TRADE}
    public = {(u.trade.trade_id, u.symbol, u.trade.price, u.trade.quantity)
              for s in SYMBOLS for u in seen[s] if u.WhichOneof("body") == "trade"}
    assert len(public) > 50 and public == private

    # a late subscriber starts from a snapshot equal to the same book
    late = watcher.subscribe(list(SYMBOLS))
    for u in read_n(late, len(SYMBOLS)):
        assert u.WhichOneof("body") == "snapshot" and u.md_sequence == md_sequence(hub, u.symbol)
        assert LocalBook.snapshot_levels(u.snapshot) == engine_depth(hub, u.symbol)
    stream.cancel()
    late.cancel()


def test_iceberg_shows_display_slice_and_refills(server, connect) -> None:
    hub = server.hub
    mm, taker, watcher = connect("mm-1"), connect("scalper-1"), connect("scalper-2")
    stream = watcher.subscribe("MSFT")
    book = LocalBook("MSFT")
    book.apply(read_n(stream, 1)[0])
    drop = mm.drop_copy()
    drop_copies_attached(hub, "mm-1")

    ice = mm.submit("MSFT", "sell", 1_000, 420_0000, display_quantity=100)
    assert ice.accepted and ice.executions[0].leaves_quantity == 1_000
    plain = mm.submit("MSFT", "sell", 50, 420_0000)
    follow_book(stream, book, md_sequence(hub, "MSFT"))
    assert book.asks == [(420_0000, 150)] == engine_depth(hub, "MSFT")[1]
    [o] = [o for o in mm.open_orders() if o.order_id == ice.order_id]
    assert (o.leaves_quantity, o.display_quantity) == (1_000, 100)

    # taking 130 fills the visible slice (100), the iceberg refills behind the plain order
    take = taker.submit("MSFT", "buy", 130, 420_0000, time_in_force="ioc")
    fills = [(r.last_quantity, r.leaves_quantity) for r in take.executions if r.exec_type == cpb.EXEC_TRADE]
    assert fills == [(100, 30), (30, 0)]
    assert [o.order_id for o in engine_orders(hub, "MSFT")] == [plain.order_id, ice.order_id]
    follow_book(stream, book, md_sequence(hub, "MSFT"))
    assert book.asks == [(420_0000, 20 + 100)] == engine_depth(hub, "MSFT")[1]
    mm_reports = read_n(drop, 4)
    assert [(r.order_id, r.exec_type, r.leaves_quantity, r.last_quantity) for r in mm_reports] == [
        (ice.order_id, cpb.EXEC_NEW, 1_000, 0), (plain.order_id, cpb.EXEC_NEW, 50, 0),
        (ice.order_id, cpb.EXEC_TRADE, 900, 100), (plain.order_id, cpb.EXEC_TRADE, 20, 30)]
    assert_quiet(drop)
    snap = watcher.snapshot("MSFT")
    assert LocalBook.snapshot_levels(snap) == ([], [(420_0000, 120)])
    stream.cancel()
    drop.cancel()


def test_snapshot_depth_is_a_full_uint32(server, connect) -> None:
    """Regression (found by this suite): a depth of 2**31 or more overflowed the engines' C int
    and GetSnapshot answered UNKNOWN; any depth beyond the book is the full book."""
    trader, watcher = connect("scalper-1"), connect("regulator")
    for i in range(3):
        assert trader.submit("AAPL", "buy", 10 + i, 190_0000 - i * 100).accepted
    full = ([(190_0000, 10), (189_9900, 11), (189_9800, 12)], [])
    assert LocalBook.snapshot_levels(watcher.snapshot("AAPL")) == full == engine_depth(server.hub, "AAPL")
    assert LocalBook.snapshot_levels(watcher.snapshot("AAPL", depth=1)) == (full[0][:1], [])
    for depth in (3, 4, 2**31 - 1, 2**31, 2**32 - 1):
        assert LocalBook.snapshot_levels(watcher.snapshot("AAPL", depth=depth)) == full, depth
