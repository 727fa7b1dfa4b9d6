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
