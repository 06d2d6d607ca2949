"""The soak in its 60-second form: a few hundred orders under every fault of the full soak
(Gremlin, Schrödinger crash and error, kill -9 of every process kind, a PostgreSQL crash),
then its end-of-run checks, on the real stack."""

from __future__ import annotations

import json

import pytest

from valerix.checks.soak import FAULTS, run

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def test_short_soak_loses_nothing_and_heals(tmp_path):
    result = run(tmp_path, orders=400, concurrency=4, max_seconds=120, say=lambda line: print(line))
    checks = {c["check"]: c for c in result.checks["results"]}
    report = json.loads((tmp_path / "soak-report.json").read_text())
    table = (tmp_path / "soak-report.md").read_text()
    print(table)

    assert [f.fault for f in result.faults] == [f.name for f in FAULTS]
    assert all(f.at_order < result.orders for f in result.faults), "a fault fired after the load"
    assert checks["acknowledged orders lost"]["value"] == 0
    assert checks["oversold units"]["value"] == 0
    assert checks["held reservations for final orders"]["value"] == 0
    assert result.settle_seconds is not None, "orders not final within 60 s"
    assert result.invariants["ok"], result.invariants
    postgres = next(f for f in result.faults if f.fault == "postgres-crash")
    assert postgres.recovered_seconds is not None and postgres.recovered_seconds <= 45
    assert all(c["ok"] for c in checks.values()), checks
    assert result.answered.get("201", 0) > 0 and result.answered.get("202", 0) > 0, result.answered
    assert result.ok and report["ok"] and "| postgres-crash |" in table
