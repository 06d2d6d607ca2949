"""A ten-second run of the load benchmark (scripts/bench): k6 drives the real system, and the
run must be correct: no 5xx, every order answered and final, the invariants of DESIGN §4 hold,
the report written. Speed targets are for BENCHMARKS.md, not for CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valerix.checks.bench import BenchConfig, run
from valerix.checks.bench_report import STACK_GROUPS

pytestmark = pytest.mark.e2e


def test_a_short_benchmark_is_correct_and_reported(tmp_path: Path, measured) -> None:
    [result] = run(BenchConfig(["normal"], duration=10, vus=4, out=tmp_path, restock=20_000))

    summary = result["summary"]
    assert summary["orders"] > 50, summary
    assert summary["server_errors"] == 0 and summary["errors"] == 0, summary["by_status"]
    # Stock was topped up, so nothing is refused; a 202 (a reservation slower than the 2 s deadline on
    # a crowded machine) is a correct answer and must end final like the rest.
    assert set(summary["by_status"]) <= {"201", "202"}, summary["by_status"]
    assert result["seconds_to_final"] is not None
    assert result["invariants"]["ok"], result["invariants"]
    assert result["correct"] is True
    assert set(STACK_GROUPS) <= set(result["processes"]), result["processes"].keys()
    assert all(p["peak_rss_mib"] > 10 and p["cpu_seconds"] > 0 for p in result["processes"].values())
    # What it cost, in every run of scripts/test (a report, not a timing assert): CPU ms per
    # order over every process with PostgreSQL, and the commits behind each order.
    cpu, commits = result["cpu_ms_per_order"], result["database_per_order"]["commits"]
    measured(f"bench smoke: {cpu} CPU ms per order (every process, PostgreSQL included), "
             f"{result['summary']['confirmed_per_s']} confirmed orders/s at 4 VUs, commits per order {commits}")
    assert cpu > 0 and commits["order_db"] >= 2, (cpu, commits)  # an order is saved, then settled
    rows = result["database_per_order"]["rows"]
    assert rows["order_db.orders"]["inserted"] == pytest.approx(1.0, abs=0.05), rows
    written = json.loads((tmp_path / "bench-normal.json").read_text())
    assert written["summary"]["orders"] == summary["orders"]
    assert "confirmed orders/s" in (tmp_path / "bench-normal.md").read_text()
