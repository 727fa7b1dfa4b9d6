"""Item 6: a stalled market data subscriber costs nobody anything.

With a 50-update subscriber queue, one subscriber never reads while many orders run: order acks
stay fast, a reading subscriber gets every update in order, and the stalled one, once it reads,
gets what was in flight, a ResyncNotice, then a snapshot equal to the book.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

import grpc

from hub.client import LocalBook, Stream
from hub.config import HubConfig, LimitsConfig
from hub.v1 import market_data_pb2 as mdpb
from hub.v1 import market_data_pb2_grpc as mdpb_grpc
from tests.integration.conftest import gateway_config
from tests.integration.support import HOST, engine_depth, md_sequence, read_n, token, wait_until

SYMBOLS = ("AAPL", "MSFT")
ORDERS = 1500
QUEUE = 50


def _config() -> HubConfig:
    return replace(gateway_config(), limits=replace(LimitsConfig(), market_data_queue=QUEUE)).with_network(
        host=HOST, port=0)


def test_stalled_subscriber_does_not_delay_others(start_hub, connect) -> None:
    running = start_hub(_config())
    hub = running.hub
    # The stalled subscriber: its own connection with a small HTTP/2 receive window and no
    # window growth, so the hub's sends to it block early; it never reads until the end.
    stalled_channel = grpc.insecure_channel(running.target, options=[
        ("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)])
    try:
        stalled = Stream(mdpb_grpc.MarketDataStub(stalled_channel).Subscribe(
            mdpb.SubscribeRequest(symbols=list(SYMBOLS)), metadata=(("authorization", f"Bearer {token('inst-2')}"),)))
        reader = connect("regulator", target=running.target)
        live = reader.subscribe(list(SYMBOLS))
        books = {u.symbol: LocalBook.from_snapshot(u.snapshot) for u in read_n(live, len(SYMBOLS))}
        wait_until(lambda: hub.status()["subscribers"] == 2, what="both subscribers attached")

        trader = connect("scalper-1", target=running.target)
        counter = connect("scalper-2", target=running.target)
        rng = random.Random(6)
        latencies = []
        started = time.monotonic()
        for i in range(ORDERS):
            symbol = SYMBOLS[i % 2]
            inst = hub.by_symbol[symbol]
            who = trader if rng.random() < 0.5 else counter
            side = rng.choice(("buy", "sell"))
            price = inst.reference_price + rng.randint(-3, 3) * inst.tick_size
            t0 = time.monotonic()
            ack = who.submit(symbol, side, rng.randint(1, 10), price, time_in_force=rng.choice(("gtc", "ioc")),
                             timeout=5)
            latencies.append(time.monotonic() - t0)
            assert ack.accepted, ack
        elapsed = time.monotonic() - started
        latencies.sort()
        # generous bounds: a hub that waited on the stalled reader would never get through these
        assert elapsed < 30, f"{ORDERS} orders took {elapsed:.1f} s"
        assert latencies[int(0.99 * ORDERS)] < 0.5 and latencies[-1] < 3.0, (latencies[-5:], elapsed)

        finals = {s: md_sequence(hub, s) for s in SYMBOLS}
        assert sum(finals.values()) > 20 * QUEUE  # far more than the stalled queue can hold

        # the reading subscriber: every update, in order, no gap, no resync; its books are right
        got = {s: [] for s in SYMBOLS}
        while any(books[s].md_sequence < finals[s] for s in SYMBOLS):
            update = live.read(timeout=10)
            assert update is not None
            assert update.WhichOneof("body") not in ("resync", "snapshot"), update
            got[update.symbol].append(update.md_sequence)
            books[update.symbol].apply(update)  # strict: a gap raises SequenceGapError
        for s in SYMBOLS:
            assert got[s] == list(range(1, finals[s] + 1))
            assert (books[s].bids, books[s].asks) == engine_depth(hub, s)

        # the stalled subscriber finally reads: snapshots, the increments that were already in
        # flight (contiguous), a ResyncNotice per symbol, then fresh snapshots equal to the books
        messages = []
        stalled_books = {}
        resynced: set[str] = set()
        while len(resynced) < len(SYMBOLS) or any(stalled_books[s].needs_snapshot for s in SYMBOLS):
            update = stalled.read(timeout=10)
            assert update is not None
            messages.append(update)
            kind = update.WhichOneof("body")
            if kind == "snapshot" and update.symbol not in stalled_books:
                stalled_books[update.symbol] = LocalBook.from_snapshot(update.snapshot)
                continue
            stalled_books[update.symbol].apply(update)  # strict: the in-flight part has no gap either
            if kind == "resync":
                resynced.add(update.symbol)
            if kind == "snapshot":
                assert update.symbol in resynced, "a snapshot without a ResyncNotice before it"
        kinds = [m.WhichOneof("body") for m in messages]
        first_resync = kinds.index("resync")
        assert set(kinds[len(SYMBOLS):first_resync]) <= {"delta", "trade", "top"}
        assert first_resync - len(SYMBOLS) < sum(finals.values()) / 2, "the stalled subscriber was not stalled"
        assert kinds[first_resync:] == ["resync"] * len(SYMBOLS) + ["snapshot"] * len(SYMBOLS)
        for m in messages[first_resync + len(SYMBOLS):]:
            assert m.md_sequence == m.snapshot.md_sequence == finals[m.symbol]
            assert LocalBook.snapshot_levels(m.snapshot) == engine_depth(hub, m.symbol)
        for s in SYMBOLS:
            book = stalled_books[s]
            assert book.resyncs == 1 and book.gaps == 0
            assert (book.bids, book.asks) == engine_depth(hub, s)
        # and it is live again: a new order reaches both subscribers, in sequence
        assert trader.submit("AAPL", "buy", 1, 150_0000).accepted
        for stream, book in ((stalled, stalled_books["AAPL"]), (live, books["AAPL"])):
            while book.md_sequence < md_sequence(hub, "AAPL"):
                u = stream.read(timeout=5)
                if u.symbol == "AAPL":
                    book.apply(u)
            assert (book.bids, book.asks) == engine_depth(hub, "AAPL")
        stalled.cancel()
        live.cancel()
    finally:
        stalled_channel.close()
