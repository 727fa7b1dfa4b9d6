"""Item 5: cancel-on-disconnect cancels the session's DAY orders (GTC stay) however the session
ends: a clean half-close, a cancelled call, a closed channel, a killed client process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub.v1 import common_pb2 as cpb
from tests.integration.support import TICK, P, drop_copies_attached, engine_depth, read_n, wait_until

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, sys, time
    from hub.client import HubClient
    target, cod = sys.argv[1], sys.argv[2] == "1"
    client = HubClient(target, "dev-scalper-1", timeout=10)
    session = client.open_session(cancel_on_disconnect=cod, timeout=10)
    day = session.submit("AAPL", "buy", 10, int(sys.argv[3]), time_in_force="day")
    gtc = session.submit("AAPL", "buy", 20, int(sys.argv[3]) - 100, time_in_force="gtc")
    print(json.dumps([day.accepted, gtc.accepted, day.order_id, gtc.order_id]), flush=True)
    time.sleep(60)  # killed long before
""")

ENDINGS = ("close", "abort", "channel_close", "kill")


def _sessions(hub) -> int:
    return hub.status()["sessions"]


def _enter_in_child(server, cancel_on_disconnect: bool) -> tuple[subprocess.Popen, int, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", CHILD, server.target, "1" if cancel_on_disconnect else "0",
                              str(P)], stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    line = child.stdout.readline()
    assert line, "child client failed"
    day_ok, gtc_ok, day_id, gtc_id = json.loads(line)
    assert day_ok and gtc_ok
    return child, day_id, gtc_id


@pytest.mark.parametrize("cancel_on_disconnect", [True, False], ids=["cod", "no-cod"])
@pytest.mark.parametrize("ending", ENDINGS)
def test_cancel_on_disconnect(server, connect, ending: str, cancel_on_disconnect: bool) -> None:
    hub = server.hub
    observer = connect("scalper-1")  # same participant, other connection: sees the orders, is not the session
    drop = observer.drop_copy()
    drop_copies_attached(hub, "scalper-1")
    # A DAY order of the same participant entered by unary: never the session's to cancel.
    other_day = observer.submit("AAPL", "buy", 5, P - 5 * TICK, time_in_force="day")
    assert other_day.accepted
    baseline = _sessions(hub)

    child = None
    if ending == "kill":
        child, day_id, gtc_id = _enter_in_child(server, cancel_on_disconnect)
    else:
        client = connect("scalper-1")
        session = client.open_session(cancel_on_disconnect=cancel_on_disconnect, timeout=10)
        day = session.submit("AAPL", "buy", 10, P, time_in_force="day")
        gtc = session.submit("AAPL", "buy", 20, P - TICK, time_in_force="gtc")
        assert day.accepted and gtc.accepted
        day_id, gtc_id = day.order_id, gtc.order_id
    # a partial fill of the DAY order first: what is left of it is what gets cancelled
    assert connect("scalper-2").submit("AAPL", "sell", 4, P, time_in_force="ioc").accepted
    assert _sessions(hub) == baseline + 1
    assert [o.order_id for o in observer.open_orders()] == sorted([other_day.order_id, day_id, gtc_id])

    if ending == "close":
        session.close()  # half-close: the hub answers everything, then ends the stream
    elif ending == "abort":
        session.abort()  # the call is cancelled (RST_STREAM), no half-close
    elif ending == "channel_close":
        client.channel.close()  # the whole connection goes, no half-close
    else:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()

    wait_until(lambda: _sessions(hub) == baseline, timeout=10, what="the hub to notice the session ended")
    expected = sorted([other_day.order_id, gtc_id] + ([] if cancel_on_disconnect else [day_id]))
    if cancel_on_disconnect:
        wait_until(lambda: [o.order_id for o in observer.open_orders()] == expected, timeout=5,
                   what="the DAY order to be cancelled")
    else:
        assert [o.order_id for o in observer.open_orders()] == expected
    leaves = {o.order_id: o.leaves_quantity for o in observer.open_orders()}
    assert leaves[gtc_id] == 20 and leaves[other_day.order_id] == 5
    if not cancel_on_disconnect:
        assert leaves[day_id] == 6
    bids = engine_depth(hub, "AAPL")[0]
    assert bids == ([(P - TICK, 20), (P - 5 * TICK, 5)] if cancel_on_disconnect
                    else [(P, 6), (P - TICK, 20), (P - 5 * TICK, 5)])

    # the drop copy tells the participant what happened: NEW x3, TRADE, and the cancel (if any)
    reports = read_n(drop, 5 if cancel_on_disconnect else 4)
    assert [(r.order_id, r.exec_type) for r in reports[:4]] == [
        (other_day.order_id, cpb.EXEC_NEW), (day_id, cpb.EXEC_NEW), (gtc_id, cpb.EXEC_NEW), (day_id, cpb.EXEC_TRADE)]
    if cancel_on_disconnect:
        cancel = reports[4]
        assert (cancel.order_id, cancel.exec_type, cancel.leaves_quantity) == (day_id, cpb.EXEC_CANCELLED, 0)
    # still fully usable afterwards
    assert observer.submit("AAPL", "sell", 1, P + 50 * TICK).accepted


def test_cancel_on_disconnect_spares_other_sessions(server, connect) -> None:
    """Only the DAY orders entered on the ending session go; a sibling session's stay."""
    hub = server.hub
    client = connect("mm-1")
    keeper = client.open_session(cancel_on_disconnect=True, timeout=10)
    leaver = client.open_session(cancel_on_disconnect=True, timeout=10)
    kept = keeper.submit("MSFT", "sell", 10, 421_0000, time_in_force="day")
    gone = [leaver.submit("MSFT", "sell", 10, 421_0000 + i * 100, time_in_force="day") for i in range(1, 4)]
    assert kept.accepted and all(g.accepted for g in gone)
    leaver.close()
    wait_until(lambda: [o.order_id for o in client.open_orders()] == [kept.order_id], timeout=5,
               what="the leaving session's DAY orders to be cancelled")
    assert engine_depth(hub, "MSFT")[1] == [(421_0000, 10)]
    assert keeper.heartbeat().client_time_ns > 0


def test_calls_cancelled_while_replies_stream_end_quietly_and_close_their_sessions(server, caplog) -> None:
    """A client that cancels while its replies are being sent: the session's sends find the call
    over (grpc raises its private ExecuteBatchError), which is the client going away, not a failure
    to log; every session still closes (cancel-on-disconnect applies)."""
    import grpc

    from hub.v1 import order_entry_pb2 as oepb
    from hub.v1 import order_entry_pb2_grpc as oepb_grpc

    def requests(tag: int):
        for i in range(200):
            yield oepb.SessionRequest(request_id=i + 1, new_order=oepb.NewOrderRequest(
                client_order_id=f"c{tag}-{i}", symbol="AAPL", side=cpb.BUY, order_type=cpb.LIMIT,
                time_in_force=cpb.DAY, price=P - (1 + i % 5) * TICK, quantity=1, stp_mode=cpb.STP_ALLOW))

    caplog.set_level("WARNING", logger="hub.service")
    for trial in range(12):
        with grpc.insecure_channel(server.target) as channel:
            call = oepb_grpc.OrderEntryStub(channel).Session(
                requests(trial), metadata=(("authorization", "Bearer dev-scalper-1"),))
            for seen, _reply in enumerate(call, 1):
                if seen == (1 if trial < 3 else 3 * trial):  # right after the opening, or mid-stream
                    call.cancel()
                    break
    wait_until(lambda: _sessions(server.hub) == 0, what="every session to close")
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")], caplog.text[-2000:]


def test_a_session_stream_ends_only_once_the_session_is_closed(server, monkeypatch) -> None:
    """A client that half-closes and reads its stream to the end finds the session closed and its
    DAY orders cancelled at that moment, not some time later (the stream's end is the promise).
    The close is slowed down here (as a slow ledger commit or a batch window would) so that a
    stream ending early would show."""
    import time

    import grpc

    from hub.v1 import order_entry_pb2 as oepb
    from hub.v1 import order_entry_pb2_grpc as oepb_grpc

    hub = server.hub
    cancel_day_orders = hub._cancel_day_orders

    def slow_cancel(*args):
        time.sleep(0.1)
        return cancel_day_orders(*args)

    monkeypatch.setattr(hub, "_cancel_day_orders", slow_cancel)
    for trial in range(3):
        requests = [
            oepb.SessionRequest(request_id=1, open=oepb.SessionOptions(cancel_on_disconnect=True)),
            oepb.SessionRequest(request_id=2, new_order=oepb.NewOrderRequest(
                client_order_id=f"end-{trial}", symbol="AAPL", side=cpb.BUY, order_type=cpb.LIMIT,
                time_in_force=cpb.DAY, price=P - 9 * TICK, quantity=1, stp_mode=cpb.STP_ALLOW)),
        ]
        with grpc.insecure_channel(server.target) as channel:
            replies = list(oepb_grpc.OrderEntryStub(channel).Session(
                iter(requests), metadata=(("authorization", "Bearer dev-scalper-1"),)))
        acks = [r.order_ack for r in replies if r.WhichOneof("body") == "order_ack"]
        assert len(acks) == 1 and acks[0].accepted
        # no waiting: the end of the stream came after the close
        assert _sessions(hub) == 0, f"trial {trial}: the stream ended before its session closed"
        assert engine_depth(hub, "AAPL")[0] == [], f"trial {trial}: the DAY order outlived its session"
