"""``hub demo``: start a hub, let a few scripted participants trade over real gRPC, report.

A market maker quotes with MassQuote, a scalper quotes and hits on a streaming session, an
institution works an iceberg that a second scalper takes slice by slice, and a regulator-role
subscriber rebuilds the AAPL book from market data. The demo checks what it prints: it exits
non-zero if the rebuilt book, the iceberg's visibility or the fills are not what they must be.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc

from hub.client import HubClient, LocalBook
from hub.config import HubConfig
from hub.server import open_ledger_journal, run_server
from hub.v1 import common_pb2 as cpb
from ledger.schema import connect, sqlite_url
from ledger.signing import load_verifier
from ledger.verify import verify_ledger


class DemoFailure(AssertionError):
    pass


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailure(what)


def _px(price: int) -> str:
    return f"{price / 10_000:.2f}"  # AAPL prices have 4 decimals; display only


def run_demo(config: HubConfig) -> int:
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    config = config.with_network(port=0)
    with run_server(config, open_ledger_journal(config)) as (hub, port):
        if hub.recovery is not None and hub.recovery.records:
            print(f"(recovered {hub.recovery.records} ledger records from an earlier run in {config.data_dir})")
        target = f"{config.network.host}:{port}"
        try:
            _script(hub, target)
        except DemoFailure as exc:
            print(f"DEMO FAILED: {exc}")
            return 1
        status = hub.status()
        print(f"\nfinal sequence {status['last_sequence']}, state digest {status['digest'][:16]}...")
    report = verify_ledger(connect(config.ledger.url or sqlite_url(config.data_dir)),
                           load_verifier(Path(config.data_dir) / "ledger_ed25519.pub"))
    print(f"ledger in {config.data_dir}: {report.records} records, {report.checkpoints} signed checkpoints, "
          f"{'verified' if report.ok else 'FAILED: ' + report.failure}")
    return 0 if report.ok else 1


def _script(hub, target: str) -> None:
    regulator = HubClient(target, "dev-regulator")
    mm = HubClient(target, "dev-mm-1")
    scalper = HubClient(target, "dev-scalper-1")
    taker = HubClient(target, "dev-scalper-2")
    institution = HubClient(target, "dev-inst-1")
    clients = (regulator, mm, scalper, taker, institution)
    try:
        _check(regulator.wait_ready(10), "hub never reported SERVING")
        for client in (mm, scalper, taker, institution):
            client.mass_cancel()  # a clean slate when the data directory holds an earlier run
        updates = regulator.subscribe(["AAPL"])
        book = LocalBook("AAPL")
        trades: list[str] = []

        def follow() -> None:
            try:
                for update in updates:
                    book.apply(update)
                    if update.WhichOneof("body") == "trade":
                        t = update.trade
                        trades.append(f"  trade #{t.trade_id}: {t.quantity} @ {_px(t.price)}")
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED:
                    raise

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()

        print("1. market maker mm-1 quotes AAPL, EURUSD and BTC-USD in one MassQuote")
        ack = mm.mass_quote([("AAPL", 189_9800, 300, 190_0200, 300),
                             ("EURUSD", 1_08480, 1_000_000, 1_08520, 1_000_000),
                             ("BTC-USD", 94_990_00, 50_000_000, 95_010_00, 50_000_000)])
        _check(ack.accepted and all(q.bid_order_id and q.ask_order_id for q in ack.quotes), "mass quote refused")
        print(f"   {len(ack.quotes) * 2} quote orders resting")

        print("2. scalper-1 opens a streaming session (cancel-on-disconnect), quotes inside, then hits")
        with scalper.open_session(cancel_on_disconnect=True) as session:
            bid = session.submit("AAPL", "buy", 100, 189_9900, time_in_force="day", post_only=True)
            ask = session.submit("AAPL", "sell", 100, 190_0100, time_in_force="day", post_only=True)
            _check(bid.accepted and ask.accepted, "scalper quotes refused")
            # Its own ask is in the way: cancel-resting STP removes it instead of trading with it.
            hit = session.submit("AAPL", "buy", 200, 190_0200, time_in_force="ioc", stp_mode="cancel_resting")
            filled = sum(e.last_quantity for e in hit.executions if e.exec_type == cpb.EXEC_TRADE)
            print(f"   quoted {_px(189_9900)} / {_px(190_0100)}; IOC buy 200 @ {_px(190_0200)} cancelled its own "
                  f"ask (self-trade prevention) and filled {filled} against mm-1")
            _check(filled == 200, f"the IOC should fill 200 against mm-1's offer, filled {filled}")
        deadline = time.monotonic() + 5
        while scalper.open_orders("AAPL") and time.monotonic() < deadline:
            time.sleep(0.01)  # the hub cancels right after it sees the stream end
        _check(not scalper.open_orders("AAPL"), "cancel-on-disconnect left DAY orders open")
        print("   session closed: its DAY bid was cancelled on disconnect")

        print("3. inst-1 works an iceberg: sell 2,000 AAPL at 190.05 showing 200 at a time")
        iceberg = institution.submit("AAPL", "sell", 2_000, 190_0500, display_quantity=200)
        _check(iceberg.accepted, "iceberg refused")
        snap = regulator.snapshot("AAPL")
        shown = {lvl.price: lvl.quantity for lvl in snap.asks}.get(190_0500)
        print(f"   the public book shows {shown} at {_px(190_0500)}")
        _check(shown == 200, "an iceberg must show only its display quantity")

        print("4. scalper-2 takes the iceberg slice by slice with IOC orders")
        from_iceberg = 0
        for _ in range(5):
            ack = taker.submit("AAPL", "buy", 150, 190_0500, time_in_force="ioc")
            _check(ack.accepted, "taker refused")
            from_iceberg += sum(e.last_quantity for e in ack.executions
                                if e.exec_type == cpb.EXEC_TRADE and e.last_price == 190_0500)
            shown = {lvl.price: lvl.quantity for lvl in regulator.snapshot("AAPL").asks}.get(190_0500, 0)
            _check(shown <= 200, f"the iceberg showed {shown} > 200")
        left = [o for o in institution.open_orders("AAPL") if o.order_id == iceberg.order_id][0]
        print(f"   {from_iceberg} taken from the iceberg (the rest of mm-1's offer went first); "
              f"it leaves {left.leaves_quantity} of 2,000 and never showed more than 200")
        _check(left.leaves_quantity == 2_000 - from_iceberg, "iceberg leaves quantity wrong")

        regulator_view = regulator.snapshot("AAPL")
        updates.cancel()
        reader.join(5)
        print("5. market data seen by the regulator-role subscriber:")
        print("\n".join(trades) or "  (no trades)")
        _check(book.matches(regulator_view), f"rebuilt book {book.bids} / {book.asks} differs from the snapshot")
        print("   book rebuilt from snapshot + increments equals the hub's snapshot")

        print("6. positions")
        for name, client in (("mm-1", mm), ("scalper-1", scalper), ("scalper-2", taker), ("inst-1", institution)):
            for p in client.positions():
                print(f"   {name:10s} {p.symbol:8s} account {p.account}: net {p.net_quantity:+d}")
    finally:
        for client in clients:
            client.close()
