"""Smoke test of ``python -m hub.risk_bench``: a quick run measures every figure, passes its checks
(every case decided as expected, the post-kill order refused KILL_SWITCH, every resting order's
cancel found in the durable ledger after the kill record) and prints one JSON object. No timing
target is asserted: the numbers depend on the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_risk_bench_prints_one_json_object_with_all_figures_and_passes_its_checks() -> None:
    proc = subprocess.run([sys.executable, "-m", "hub.risk_bench", "--quick", "--orders", "300", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["ok"] and r["python_loop_ns"] > 0

    check = r["check"]
    assert len(check["cases"]) == 6 and check["resting_orders"] > 0
    for row in check["cases"]:
        # both timed (the hub path includes the engine's check, but a quick run's minimum of three
        # short runs can come out in either order on a loaded machine)
        assert row["engine_ns"] > 0 and row["hub_ns"] > 0, row
    d = check["hot_path_per_call_us"]
    assert 0 < d["p50"] <= d["p99"] <= d["max"]
    assert 0 < check["risk_share_of_submit"] < 1

    kill = r["kill"]
    (run,) = kill["runs"]
    assert run["orders"] == run["cancelled_in_ledger"] == 300
    assert run["post_kill_order_reason"] == "KILL_SWITCH"
    assert 0 < run["switch_set_ms"] <= run["post_kill_order_refused_ms"] <= run["post_kill_order_reject_acked_ms"]
    assert run["switch_set_ms"] <= run["last_cancel_committed_ms"] <= run["all_settled_committed_ms"]
    assert run["kill_returned_ms"] <= run["all_settled_committed_ms"]
    assert run["settled_in_ledger"] == 300
    # compact: the kill, one risk-cancel record per asset class, one settle step (300 orders) and the probe's
    # reject; not 2-4 records per order
    assert 3 <= run["ledger_records_written"] <= 1 + 4 + 1 + 1
    assert kill["lock_free_check"]["ok"]
    one = kill["one_asset_class"]
    assert one["ok"] and one["runs"] == 1 and one["refused_ms"] > 0 and one["last_cancel_committed_ms"] > 0
