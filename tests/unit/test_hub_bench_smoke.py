"""Smoke test of ``python -m hub.bench``: it starts both servers, measures everything, checks itself,
and prints one JSON object. No timing target is asserted here (the numbers depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RATIOS = ("unary_p50_ratio", "unary_p99_ratio", "streaming_p50_ratio", "streaming_p99_ratio", "throughput_ratio")


def test_quick_bench_prints_one_json_object_with_positive_figures_and_passes_its_checks() -> None:
    proc = subprocess.run([sys.executable, "-m", "hub.bench", "--quick", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # exactly one JSON document: anything else on stdout fails here

    for key in (*RATIOS, "mass_quote_orders_per_s"):
        assert result[key] > 0, key
    assert result["settings"]["python_loop_ns"] > 0, "the machine's speed is printed beside the figures"
    stolen = result["settings"]["cpu_steal_fraction"]  # and what the hypervisor took (Linux)
    assert stolen is None or 0 <= stolen <= 1
    for mode in ("unary", "streaming"):
        for target in ("hub", "echo"):
            stats = result[mode][target]
            assert stats["count"] > 0
            assert 0 < stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]
    for name in ("throughput", "mass_quote_unary", "mass_quote_session"):
        for target in ("hub", "echo"):
            assert result[name][target]["orders_per_s"] > 0, (name, target)

    checks = result["correctness"]
    assert checks["ok"], checks
    assert checks["hub_replies"] == checks["hub_requests"] > 0
    assert checks["last_sequence"] >= checks["commands_caused"] > 0
    assert len(checks["state_digest"]) == 64


def test_the_aio_echo_floor_answers_like_the_threaded_one_and_checks_the_token() -> None:
    """``hub.echo_aio`` (the bench's floor, on the gateway's grpc.aio stack): the same replies as
    the threaded echo for a session and a unary order, and a call without a valid token is refused."""
    import asyncio

    import grpc

    from hub.bench import OPERATOR_TOKEN, TRADER_TOKENS, EchoReplies, _metadata
    from hub.config import HubConfig
    from hub.echo_aio import build_aio_echo_server
    from hub.v1 import order_entry_pb2 as oepb
    from hub.v1 import order_entry_pb2_grpc as oepb_grpc

    order = oepb.NewOrderRequest(symbol="AAPL", side=2, order_type=1, time_in_force=1, price=189_0000, quantity=1)

    async def drive() -> None:
        server, port = build_aio_echo_server(HubConfig.default().with_network(port=0))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = oepb_grpc.OrderEntryStub(channel)
                ack = await stub.SubmitOrder(order, metadata=_metadata(TRADER_TOKENS[0]))
                expected = EchoReplies().order_ack(order)
                assert (ack.accepted, len(ack.executions)) == (True, len(expected.executions)) == (True, 5)
                call = stub.Session(metadata=_metadata(TRADER_TOKENS[1]))
                await call.write(oepb.SessionRequest(request_id=7, new_order=order))
                opened, reply = await call.read(), await call.read()
                await call.done_writing()
                assert opened.opened.session_id == "echo" and reply.request_id == 7 and reply.order_ack.accepted
                for metadata, code in ((_metadata("not-a-token"), grpc.StatusCode.UNAUTHENTICATED),
                                       ((), grpc.StatusCode.UNAUTHENTICATED),
                                       (_metadata(OPERATOR_TOKEN), grpc.StatusCode.PERMISSION_DENIED)):
                    try:
                        await stub.SubmitOrder(order, metadata=metadata)
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == code
                    else:
                        raise AssertionError(f"{metadata} was not refused")
        finally:
            await server.stop(None)

    asyncio.run(drive())


def test_the_hypervisors_share_of_cpu_time_is_read_from_proc_stat(tmp_path: Path) -> None:
    from hub.machine import cpu_times, describe, steal_fraction

    before, after = tmp_path / "before", tmp_path / "after"
    # user nice system idle iowait irq softirq steal guest guest_nice
    before.write_text("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 50 0 25 400 5 0 2 18 0 0\n")
    after.write_text("cpu  200 0 100 1500 10 0 5 185 0 0\n")
    assert cpu_times(str(before)) == (35, 1000)
    assert cpu_times(str(after)) == (185, 2000)
    assert steal_fraction(cpu_times(str(before)), cpu_times(str(after))) == 0.15
    assert cpu_times(str(tmp_path / "missing")) is None and steal_fraction(None, (1, 2)) is None
    assert "steal): 15.0 %" in describe(20.0, 0.15) and "steal" not in describe(20.0)


def test_the_gateway_floor_answers_through_the_real_gateway_and_enters_nothing() -> None:
    """``hub.gateway_floor`` (``--diagnose``'s ``gateway`` variant): the hub's real server (token
    check included) answers order entry and mass quotes like the echo, and no engine sees any of it."""
    import grpc

    from hub.bench import TRADER_TOKENS, EchoReplies, _metadata
    from hub.config import HubConfig
    from hub.gateway_floor import GatewayOnlyHub
    from hub.journal import EntryKind
    from hub.server import run_server
    from hub.v1 import order_entry_pb2 as oepb
    from hub.v1 import order_entry_pb2_grpc as oepb_grpc

    sell = oepb.NewOrderRequest(client_order_id="s-1", symbol="AAPL", side=2, order_type=1, time_in_force=1,
                                price=189_0000, quantity=1)
    quotes = oepb.MassQuoteRequest(account=3001, quotes=[oepb.Quote(symbol="AAPL", bid_price=188_0000, bid_quantity=1,
                                                                    ask_price=190_0000, ask_quantity=1)])
    with run_server(HubConfig.default().with_network(port=0), hub_class=GatewayOnlyHub) as (hub, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = oepb_grpc.OrderEntryStub(channel)
            ack = stub.SubmitOrder(sell, metadata=_metadata(TRADER_TOKENS[0]), timeout=10)
            expected = EchoReplies().order_ack(sell)
            assert (ack.accepted, ack.client_order_id, len(ack.executions)) == (True, "s-1", len(expected.executions))
            session = stub.Session(iter([oepb.SessionRequest(request_id=3, new_order=sell)]),
                                   metadata=_metadata(TRADER_TOKENS[1]), timeout=10)
            replies = list(session)
            assert replies[0].HasField("opened") and replies[1].request_id == 3 and replies[1].order_ack.accepted
            quote_ack = stub.MassQuote(quotes, metadata=_metadata("dev-mm-1"), timeout=10)
            assert quote_ack.accepted and quote_ack.quotes[0].bid_order_id and len(quote_ack.executions) == 4
            try:
                stub.SubmitOrder(sell, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
            else:
                raise AssertionError("a call without a token was answered")
        assert hub.resting_count() == 0
        kinds = {entry.kind for entry in hub.journal.entries()}
        assert EntryKind.ENGINE not in kinds and EntryKind.ADMIN in kinds  # sessions only, no engine step


def test_the_gateway_floor_is_served_in_memory_from_the_command_line(monkeypatch, tmp_path) -> None:
    """``--serve-hub --gateway-only`` reaches ``serve_hub``, which journals in memory (its orders
    are never entered: a ledger would hold sessions alone) and serves ``GatewayOnlyHub``."""
    import contextlib

    import hub.bench
    import hub.server
    from hub.gateway_floor import GatewayOnlyHub

    served: list[tuple] = []

    @contextlib.contextmanager
    def fake_run_server(config, journal, gc_policy=None, hub_class=None):  # noqa: ANN001, ANN202
        served.append((journal, hub_class))
        yield None, 1

    monkeypatch.setattr(hub.server, "run_server", fake_run_server)
    monkeypatch.setattr(hub.bench, "wait_for_stop", lambda stop: None)
    assert hub.bench.main(["--serve-hub", "--gateway-only", "--data-dir", str(tmp_path)]) == 0
    assert served == [(None, GatewayOnlyHub)]  # None: the in-memory journal
