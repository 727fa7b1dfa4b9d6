"""Smoke test of ``python -m hub.fairness_bench``: it measures all three figures, passes its checks
and prints one JSON object. No timing target is asserted (the numbers depend on the machine), only
that the figures exist, are consistent and that the ON gateway really held orders behind the floor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hub import fairness_bench

ROOT = Path(__file__).resolve().parents[2]


def test_quick_fairness_bench_prints_one_json_object_with_all_figures_and_passes_its_checks() -> None:
    proc = subprocess.run([sys.executable, "-m", "hub.fairness_bench", "--quick", "--orders", "80", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)  # exactly one JSON document
    assert r["ok"]

    a = r["lateness_in_process"]
    assert a["failed"] == 0 and a["lateness"]["count"] == a["orders"] == 80
    assert 0 <= a["lateness"]["p50_us"] <= a["lateness"]["p99_us"] <= a["lateness"]["max_us"]
    assert a["submit_to_result"]["p50_us"] >= a["floor_us"] == 100.0  # every order waited out the floor

    g = r["gateway"]
    for name in ("on", "off"):
        assert g[name]["count"] == g["orders_per_server"] > 0
        assert 0 < g[name]["p50_us"] <= g[name]["p99_us"] <= g[name]["max_us"]
    assert g["on"]["p50_us"] >= g["floor_us"]  # ON acks include the 100 us floor
    assert g["server_lateness"]["count"] == g["orders_per_server"]  # every ON order was held and released
    assert g["p50_allowed_us"] == 1.1 * g["off"]["p50_us"] + g["floor_us"]
    assert not any(g["rejected"].values()) and not g["errors"]

    fees = r["fees"]
    if "skipped" not in fees:
        assert 0 < fees["on_trade_us_per_fill"] <= fees["with_ledger_records_us_per_fill"]


def test_report_table_names_every_figure() -> None:
    result = fairness_bench.run(fairness_bench.parse_args(["--quick", "--orders", "40", "--skip-gateway",
                                                           "--fills", "200"]))
    text = fairness_bench.format_report(result)
    assert "(a) floor release lateness" in text and "p99" in text
    assert "(c) fee computation" in text
    assert "checks: ok" in text
