"""Smoke test of the matching benchmark: a tiny flow, one round, JSON out, engines agree.

No timing assertions: the figures depend on the machine."""

from __future__ import annotations

import dataclasses
import json

import pytest

from matching import bench

pytest.importorskip("matching._cengine")


def _run_json(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    code = bench.main(["--commands", "2000", "--rounds", "1", "--json", *extra])
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json must print exactly one JSON object"
    return code, json.loads(out)


def test_bench_json_has_keys_and_engines_agree(capsys: pytest.CaptureFixture[str]) -> None:
    code, summary = _run_json(capsys)

    assert code == 0
    assert summary["agree"] is True and summary["disagreements"] == []
    expected = {bench.CYTHON_BATCH, bench.CYTHON_PER_COMMAND, bench.REFERENCE}
    if bench.liquibook is not None:
        expected.add(bench.LIQUIBOOK)
        assert summary["liquibook"] == "included"
    else:
        assert summary["liquibook"].startswith("skipped")
    assert set(summary["events_per_s"]) == expected
    assert all(rate > 0 for rate in summary["events_per_s"].values())
    assert "cython_batch/reference" in summary["ratios"]
    assert "cython_per_command/reference" in summary["ratios"]
    assert ("cython_batch/liquibook" in summary["ratios"]) == (bench.liquibook is not None)
    counts = summary["counts"]
    assert counts["commands"] == 2000
    assert counts["trades"] > 0 and counts["traded_quantity"] >= counts["trades"]
    flow = counts["flow"]
    assert flow["passive_adds"] + flow["cancels"] + flow["ioc_limits"] + flow["market_iocs"] == 2000
    assert min(flow["cancels"], flow["ioc_limits"], flow["market_iocs"]) > 0


def test_bench_without_liquibook(capsys: pytest.CaptureFixture[str]) -> None:
    code, summary = _run_json(capsys, "--no-liquibook", "--chunk", "300")

    assert code == 0 and summary["agree"] is True
    assert bench.LIQUIBOOK not in summary["events_per_s"]
    assert summary["liquibook"].startswith("skipped")


def test_flow_is_seeded() -> None:
    a = bench.generate_flow(500, seed=3, chunk=100)
    b = bench.generate_flow(500, seed=3, chunk=100)
    c = bench.generate_flow(500, seed=4, chunk=100)

    assert a.commands == b.commands and a.chunks == b.chunks
    assert a.commands != c.commands


def test_disagreement_is_reported() -> None:
    flow = bench.generate_flow(300, seed=7, chunk=100)
    good = bench.run_cython_batch(flow)
    bad = dataclasses.replace(good, engine=bench.REFERENCE, traded_quantity=good.traded_quantity + 1,
                              digest="0" * 64)

    problems = bench.disagreements({bench.CYTHON_BATCH: [good], bench.REFERENCE: [bad]})

    assert any("traded_quantity" in p for p in problems)
    assert any("digest" in p for p in problems)
