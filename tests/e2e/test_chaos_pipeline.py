"""The chaos pipeline in its short form: every scenario, real processes, invariants checked."""

from __future__ import annotations

import json

import pytest

from valerix.checks.pipeline import run

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def test_short_chaos_pipeline_keeps_every_invariant(tmp_path):
    ok, results = run(tmp_path, seconds=4, concurrency=4, settle_bound=45)
    report = json.loads((tmp_path / "chaos-report.json").read_text())
    summary = (tmp_path / "chaos-report.md").read_text()
    assert [r.scenario for r in results] == ["baseline", "gremlin", "schrodinger-crash", "schrodinger-error"]
    for result in results:
        assert result.invariants["ok"], (result.scenario, result.invariants)
        assert result.settle_seconds is not None, f"{result.scenario}: orders not final within the bound"
        assert result.answered.get("other", 0) == 0 and result.answered.get("no-answer", 0) == 0, result.answered
    gremlin = results[1]
    assert gremlin.answered.get("202", 0) > 0 and gremlin.max_latency_ms < 2500
    assert any("pending_verification" in j["journey"] for j in gremlin.affected)
    assert results[2].restarts > 0, "Schrödinger crash mode never crashed the inventory process"
    assert ok and report["ok"] and "| gremlin |" in summary
