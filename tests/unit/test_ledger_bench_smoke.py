"""Smoke test of ``python -m ledger.bench``: a small workload through every measurement, one JSON object
out, the run's own checks passed. No timing target is asserted here (the numbers depend on the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ledger import hashing as ledger_hashing

ROOT = Path(__file__).resolve().parents[2]


def test_quick_ledger_bench_prints_one_json_object_with_positive_figures_and_passes_its_checks() -> None:
    env = dict(os.environ)
    pg_url = env.get("HUB_TEST_POSTGRES_URL", "")
    proc = subprocess.run([sys.executable, "-m", "ledger.bench", "--quick", "--json", "--pg-url", pg_url], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("\n") == 1, "--json prints exactly one line"
    result = json.loads(proc.stdout)

    for key in ("append_records_per_s", "verify_records_per_s", "replay_records_per_s", "ledger_on_off_p50_ratio",
                "ledger_on_off_p99_ratio", "python_loop_ns"):
        assert result[key] > 0, key
    assert result["hashing"].startswith("native" if ledger_hashing.NATIVE else "hashlib")
    workload = result["workload"]
    assert workload["records"] >= 20_000 and workload["commands"] > 0 and workload["events"] > 0

    backends = ["sqlite_process", "sqlite_power"] + (["postgresql_process"] if pg_url else [])
    assert sorted(result["appends"]) == sorted(backends)
    for name, a in result["appends"].items():
        assert a["ok"], name
        assert a["records"] == workload["records"] and a["entries"] == workload["entries"]
        assert a["records_per_s"] > 0 and a["entries_per_s"] > 0 and a["records_per_cpu_s"] > 0
        assert 0 < a["commits"] <= a["entries"] and a["mean_batch_records"] >= a["mean_batch_entries"] >= 1
        assert a["checkpoints"] > 0
    for section in ("verify", "replay"):
        for name, figures in result[section].items():
            assert figures["ok"], (section, name, figures)
            assert figures["records"] == workload["records"] and figures["records_per_s"] > 0
    assert result["replay"]["sqlite_process"]["checkpoint_verified"]
    assert result["replay"]["sqlite_process"]["commands_per_s"] > 0
    if not pg_url:
        assert "skipped" in result["postgresql"]

    gateway = result["gateway"]
    for name in ("ledger_on", "ledger_off"):
        stats = gateway[name]
        assert stats["count"] > 0 and stats["all_acked_and_accepted"], (name, stats)
        assert 0 < stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]
    assert gateway["served_ledger"]["ok"] and gateway["served_ledger"]["records"] > 0
    assert result["ledger_on_off_p50_ratio"] == gateway["ledger_on"]["p50_us"] / gateway["ledger_off"]["p50_us"]

    assert result["correctness"]["ok"], result["correctness"]
    assert set(result["targets_met"]) == {"append_records_per_s>=100000", "verify_records_per_s>=300000",
                                          "ledger_on_off_p50_ratio<=1.25"}
