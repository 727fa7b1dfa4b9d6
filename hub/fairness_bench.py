"""Fairness benchmark: what the fairness controls cost, measured on this machine in one run.

    python -m hub.fairness_bench [--orders N] [--rate R] [--gateway-rate R] [--rounds K] [--quick] [--json]

(a) Latency-floor release lateness. An in-process hub on the real clock with the default rules
    (participant_class preset: institution orders wait 100 us) takes ``--orders`` institution
    orders at a steady ``--rate`` (default 1000/s) from two threads (two institutions); lateness is how long after
    its release time each held order was actually sequenced (``hub.scheduler.lateness``), with the
    process CPU time per wall second (the scheduler's last-stretch spin shows up there). The same
    figures are taken inside the rules-ON gateway of (b), under gRPC load.
(b) Gateway order-to-ack over a streaming session, rules ON (default preset, institution token:
    the 100 us floor applies) versus OFF (preset off), measured in the same run. Two server
    processes (``--serve on|off``, journal in memory so the ledger's cost does not blur the
    difference), one session each, paced NewOrders at ``--gateway-rate`` (default 250/s: a latency
    measurement, far from saturation) (alternately buy and sell 1 AAPL at the reference price,
    self-trade allowed, so the book stays at most one order deep), in ``--rounds`` rounds
    alternating which server goes first. Target: ON p50 <= 1.1 x OFF p50 + the floor.
(c) Fee computation cost per fill: ``compliance.fees.FeeEngine.on_trade`` (both sides priced),
    and with the two ledger records built (``to_dict`` + canonical JSON) as the hub does per fill.
    Skipped, and said so, when compliance/fees.py is not there.

Exit status 1 if a check fails (a request not answered, an order not accepted); the targets are
reported, not enforced. ``--json`` prints one JSON object instead of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from hub.config import HubConfig
from hub.fairness import FairnessConfig, Preset

HOST = "127.0.0.1"
P = 190_0000  # AAPL reference price
INSTITUTION_TOKEN = "dev-inst-1"
TARGET_RATIO = 1.1


def bench_config(preset: Preset) -> HubConfig:
    """Embedded defaults with the fairness preset, and pre-trade rate limits / the latency kill
    switch (when the hub has them) raised out of the flow's way: they are not what is measured."""
    config = replace(HubConfig.default(), fairness=FairnessConfig(preset=preset)).with_network(host=HOST, port=0)
    risk = getattr(config, "risk", None)
    if risk is not None:
        many = 1_000_000
        risk = replace(risk, rates=replace(risk.rates, orders_per_second=many, order_burst=many,
                                           session_messages_per_second=many, session_burst=many),
                       breakers=replace(risk.breakers, latency_threshold_ns=3_600 * 10**9))
        config = replace(config, risk=risk)
    return config.validated()


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    return float(sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))])


def summary_us(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {"count": len(s), "p50_us": percentile(s, 0.5) / 1000, "p99_us": percentile(s, 0.99) / 1000,
            "max_us": (s[-1] / 1000) if s else 0.0}


def _pace(due: float) -> None:
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


# -- (a) RELEASE LATENESS IN PROCESS -----------------------------------------------------------------


def release_lateness(orders: int, rate: float, lanes: int = 2) -> dict[str, Any]:
    from hub.auth import Identity
    from hub.core import Hub, OrderSpec
    from hub.v1 import common_pb2 as cpb

    config = bench_config(Preset.PARTICIPANT_CLASS)
    hub = Hub(config)
    who = {p.id: Identity.of(p) for p in config.participants}
    institutions = [who["inst-1"], who["inst-2"]]
    floor = config.fairness.latency_floor_ns
    to_result: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def lane(k: int, t0: float) -> None:
        mine: list[int] = []
        for i in range(k, orders, lanes):
            _pace(t0 + i / rate)
            side = cpb.BUY if (i // lanes) % 2 == 0 else cpb.SELL
            spec = OrderSpec("AAPL", side, cpb.LIMIT, cpb.GTC, P, 1, stp_mode=cpb.STP_ALLOW)
            start = time.perf_counter_ns()
            outcome, reason, text = hub.submit_order(institutions[k % len(institutions)], spec)
            mine.append(time.perf_counter_ns() - start)
            if outcome is None or reason:
                failures.append(f"{reason} {text}")
        with lock:
            to_result.extend(mine)

    # Warm up (imports, first engine calls), then measure from a clean slate.
    warm = [threading.Thread(target=lane, args=(k, time.perf_counter())) for k in range(lanes)]
    saved = orders
    orders = min(200, saved)
    for t in warm:
        t.start()
    for t in warm:
        t.join()
    orders = saved
    hub.scheduler.lateness.reset()
    to_result.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    t0 = time.perf_counter() + 0.01
    threads = [threading.Thread(target=lane, args=(k, t0)) for k in range(lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    hub.scheduler.close()
    return {"orders": orders, "rate_per_s": rate, "lanes": lanes, "floor_us": floor / 1000,
            "lateness": hub.scheduler.lateness.percentiles(),
            "submit_to_result": summary_us(to_result),
            "cpu_per_wall_s": cpu / wall if wall else 0.0, "failures": failures[:5], "failed": len(failures)}


# -- (b) GATEWAY ON VERSUS OFF --------------------------------------------------------------------------


def serve(preset: str) -> int:
    """Child process: a hub with the preset, journal in memory; prints its port, then answers
    ``lateness`` / ``reset`` lines on stdin with one JSON line; exits at end of input."""
    from hub.server import run_server

    config = bench_config(Preset(preset))
    with run_server(config, grace=0.5) as (hub, port):
        print(json.dumps({"port": port, "floor_ns": config.fairness.latency_floor_ns}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "lateness":
                print(json.dumps(hub.scheduler.lateness.percentiles()), flush=True)
            elif command == "reset":
                hub.scheduler.lateness.reset()
                print("{}", flush=True)
    return 0


class ServerProcess:
    def __init__(self, preset: Preset) -> None:
        self.preset = preset
        self.proc = subprocess.Popen([sys.executable, "-m", "hub.fairness_bench", "--serve", preset.value],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        hello = json.loads(self._line(timeout=60))
        self.port: int = hello["port"]
        self.floor_ns: int = hello["floor_ns"]

    def _line(self, timeout: float) -> str:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not box or not box[0]:
            raise RuntimeError(f"hub server ({self.preset.value}) did not answer (exit code {self.proc.poll()})")
        return box[0]

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._line(timeout=30))

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)


class Lane:
    """One streaming session to one server, paced NewOrders, order-to-ack per order."""

    def __init__(self, server: ServerProcess) -> None:
        from hub.client import HubClient

        self.server = server
        self.client = HubClient(f"{HOST}:{server.port}", INSTITUTION_TOKEN, timeout=30)
        if not self.client.wait_ready(60):
            raise RuntimeError(f"hub ({server.preset.value}) not serving: {self.client.last_health}")
        self.session = self.client.open_session(timeout=30)
        self.sent = 0
        self.rejected: list[str] = []
        self.errors: list[str] = []

    def run(self, count: int, rate: float) -> list[int]:
        latencies = [0] * count
        remaining = [count]
        done = threading.Event()
        lock = threading.Lock()

        def finished(i: int, start: int, future) -> None:
            now = time.perf_counter_ns()
            try:
                ack = future.result()
                if not ack.accepted:
                    self.rejected.append(f"{ack.reject_reason} {ack.reject_text}")
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.errors.append(repr(exc))
            latencies[i] = now - start
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        t0 = time.perf_counter() + 0.005
        for i in range(count):
            _pace(t0 + i / rate)
            side = "buy" if self.sent % 2 == 0 else "sell"
            self.sent += 1
            start = time.perf_counter_ns()
            future = self.session.submit_async("AAPL", side, 1, P, stp_mode="allow")
            future.add_done_callback(lambda f, i=i, start=start: finished(i, start, f))
        if not done.wait(60):
            self.errors.append(f"{remaining[0]} of {count} orders unanswered after 60 s")
        return latencies

    def close(self) -> None:
        self.client.close()


def gateway_on_off(orders: int, rate: float, rounds: int, warmup: int) -> dict[str, Any]:
    servers = {"on": ServerProcess(Preset.PARTICIPANT_CLASS), "off": ServerProcess(Preset.OFF)}
    lanes: dict[str, Lane] = {}
    try:
        lanes = {name: Lane(s) for name, s in servers.items()}
        for lane in lanes.values():
            lane.run(warmup, rate)
        servers["on"].ask("reset")
        samples: dict[str, list[int]] = {"on": [], "off": []}
        cpu0 = {name: s.cpu_seconds() for name, s in servers.items()}
        per_round = max(1, orders // rounds)
        for r in range(rounds):
            for name in (("on", "off") if r % 2 == 0 else ("off", "on")):
                samples[name].extend(lanes[name].run(per_round, rate))
        cpu = {name: s.cpu_seconds() - cpu0[name] for name, s in servers.items()}
        lateness = servers["on"].ask("lateness")
        floor_us = servers["on"].floor_ns / 1000
        on, off = summary_us(samples["on"]), summary_us(samples["off"])
        allowed = TARGET_RATIO * off["p50_us"] + floor_us
        return {
            "orders_per_server": per_round * rounds, "rate_per_s": rate, "rounds": rounds, "floor_us": floor_us,
            "on": on | {"server_cpu_us_per_order": cpu["on"] / (per_round * rounds) * 1e6},
            "off": off | {"server_cpu_us_per_order": cpu["off"] / (per_round * rounds) * 1e6},
            "p50_on_minus_off_us": on["p50_us"] - off["p50_us"],
            "p50_allowed_us": allowed, "p50_target_met": on["p50_us"] <= allowed,
            "p50_ratio_to_target": on["p50_us"] / allowed if allowed else 0.0,
            "p99_on_minus_off_us": on["p99_us"] - off["p99_us"],
            "server_lateness": lateness,
            "rejected": {n: len(lane.rejected) for n, lane in lanes.items()},
            "errors": {n: lane.errors[:3] for n, lane in lanes.items() if lane.errors},
        }
    finally:
        for lane in lanes.values():
            lane.close()
        for s in servers.values():
            s.stop()


# -- (c) FEE COMPUTATION --------------------------------------------------------------------------------


def fee_cost(fills: int) -> dict[str, Any]:
    try:
        from compliance.fees import DEFAULT_FEE_SCHEDULES, FeeEngine
    except ImportError as exc:
        return {"skipped": f"compliance.fees not available ({exc})"}
    from ledger.records import canonical_json
    from matching.instruments import DEFAULT_INSTRUMENTS
    from matching.types import Side, Trade

    classes = {"scalper-1": "scalper", "inst-1": "institution", "mm-1": "market_maker"}
    pairs = [("mm-1", "scalper-1"), ("scalper-1", "inst-1"), ("inst-1", "mm-1"), ("scalper-1", "mm-1")]
    instruments = list(DEFAULT_INSTRUMENTS)
    trades = [(inst, Trade(i, inst.instrument_id, i, inst.reference_price, inst.min_quantity * (1 + i % 3), Side.BUY,
                           1, 1, 2, 2, 0, 0)) for i, inst in enumerate(instruments)]
    ts0 = 1_767_225_600_000_000_000  # 2026-01-01: fixed fees fall due once, at the first fill

    def run(with_records: bool) -> float:
        engine = FeeEngine(DEFAULT_FEE_SCHEDULES)
        for pid, cls in classes.items():
            engine.register_participant(pid, cls)
        start = time.perf_counter_ns()
        for i in range(fills):
            inst, trade = trades[i % len(trades)]
            maker, taker = pairs[i % len(pairs)]
            result = engine.on_trade(ts0 + i * 1000, inst, trade, maker_id=maker, maker_class=classes[maker],
                                     taker_id=taker, taker_class=classes[taker])
            if with_records:
                canonical_json({"fees": [result.maker.to_dict(), result.taker.to_dict()]})
        return (time.perf_counter_ns() - start) / fills / 1000

    run(False)  # warm up
    return {"fills": fills, "on_trade_us_per_fill": min(run(False) for _ in range(3)),
            "with_ledger_records_us_per_fill": min(run(True) for _ in range(3))}


# -- REPORT -----------------------------------------------------------------------------------------------


def format_report(r: dict[str, Any]) -> str:
    lines = ["fairness benchmark" + (f" (load average {r['load_average']})" if r.get("load_average") else "")]
    a = r["lateness_in_process"]
    late = a["lateness"]
    lines += ["", f"(a) floor release lateness, in process: {a['orders']} institution orders at {a['rate_per_s']:.0f}/s, "
              f"{a['lanes']} threads, floor {a['floor_us']:.0f} us",
              f"    lateness p50 {late['p50_us']:8.1f} us   p99 {late['p99_us']:8.1f} us   max {late['max_us']:8.1f} us"
              f"   (n={late['count']})",
              f"    submit-to-result p50 {a['submit_to_result']['p50_us']:.1f} us  p99 "
              f"{a['submit_to_result']['p99_us']:.1f} us;  process CPU {a['cpu_per_wall_s']:.2f} s per wall s"]
    b = r.get("gateway")
    if b:
        lat = b["server_lateness"]
        lines += ["", f"(b) gateway order-to-ack, streaming session, {b['orders_per_server']} orders per server at "
                  f"{b['rate_per_s']:.0f}/s, {b['rounds']} interleaved rounds",
                  f"    {'':10} {'p50 us':>9} {'p99 us':>9} {'max us':>9} {'server CPU us/order':>20}"]
        for name in ("on", "off"):
            s = b[name]
            lines.append(f"    rules {name:4} {s['p50_us']:9.1f} {s['p99_us']:9.1f} {s['max_us']:9.1f} "
                         f"{s['server_cpu_us_per_order']:20.1f}")
        lines += [f"    ON - OFF: p50 {b['p50_on_minus_off_us']:+.1f} us, p99 {b['p99_on_minus_off_us']:+.1f} us "
                  f"(floor {b['floor_us']:.0f} us)",
                  f"    target ON p50 <= 1.1 x OFF p50 + floor = {b['p50_allowed_us']:.1f} us: "
                  f"{'met' if b['p50_target_met'] else 'NOT met'} ({b['p50_ratio_to_target']:.2f} of the allowance)",
                  f"    lateness inside the ON gateway: p50 {lat['p50_us']:.1f} us  p99 {lat['p99_us']:.1f} us  "
                  f"max {lat['max_us']:.1f} us (n={lat['count']})"]
        if any(b["rejected"].values()) or b["errors"]:
            lines.append(f"    REJECTED {b['rejected']}  ERRORS {b['errors']}")
    c = r["fees"]
    lines += [""]
    if "skipped" in c:
        lines.append(f"(c) fee computation: skipped: {c['skipped']}")
    else:
        lines.append(f"(c) fee computation per fill ({c['fills']} fills): FeeEngine.on_trade "
                     f"{c['on_trade_us_per_fill']:.2f} us; with the two ledger fee records "
                     f"{c['with_ledger_records_us_per_fill']:.2f} us")
    lines.append("")
    lines.append("checks: " + ("ok" if r["ok"] else "FAILED"))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hub.fairness_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=2000, help="orders per measurement (default 2000)")
    p.add_argument("--rate", type=float, default=1000.0, help="(a): offered orders per second (default 1000)")
    p.add_argument("--gateway-rate", type=float, default=250.0,
                   help="(b): orders per second per server (default 250: latency, not saturation; each ON order "
                        "holds its session for the floor, so near saturation queueing would dominate)")
    p.add_argument("--rounds", type=int, default=6, help="interleaved ON/OFF rounds (default 6)")
    p.add_argument("--fills", type=int, default=20_000, help="fills priced for (c) (default 20000)")
    p.add_argument("--skip-gateway", action="store_true", help="only (a) and (c): no server processes")
    p.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    p.add_argument("--serve", choices=[x.value for x in Preset], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    orders, fills, rounds = args.orders, args.fills, args.rounds
    if args.quick:
        orders, fills, rounds = min(orders, 200), min(fills, 2000), min(rounds, 2)
    result: dict[str, Any] = {"load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                              "cpus": os.cpu_count()}
    result["lateness_in_process"] = release_lateness(orders, args.rate)
    if not args.skip_gateway:
        result["gateway"] = gateway_on_off(orders, args.gateway_rate, rounds, warmup=50 if args.quick else 300)
    result["fees"] = fee_cost(fills)
    gateway = result.get("gateway", {})
    result["ok"] = (not result["lateness_in_process"]["failed"] and not any(gateway.get("rejected", {}).values())
                    and not gateway.get("errors"))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(args.serve)
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
