"""The check-cost benchmark runs (timings are printed by ``python -m compliance.risk.bench``,
never asserted)."""

from __future__ import annotations

from compliance.risk import bench


def test_bench_runs(capsys) -> None:
    assert bench.main(["--number", "200", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "accept: full chain" in out and "on_trade" in out
