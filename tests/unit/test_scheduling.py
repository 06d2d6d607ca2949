"""scripts/test's two xdist workers: the outage test runs beside the rest, everything else in
one scope, in collection order (tests/support/scheduling.py)."""

from __future__ import annotations

from pathlib import Path

from support.scheduling import BESIDE, IN_ORDER, RUN_BESIDE, BesideTheRest

ROOT = Path(__file__).resolve().parents[2]


def split(nodeid: str) -> str:
    return BesideTheRest._split_scope(object.__new__(BesideTheRest), nodeid)


def test_the_outage_test_runs_beside_and_everything_else_in_one_scope() -> None:
    assert split("tests/e2e/test_self_healing.py::test_a_six_minute_inventory_database_outage_heals_by_itself") == BESIDE
    assert {split("tests/e2e/test_bench_smoke.py::test_a_short_benchmark_is_correct_and_reported"),
            split("tests/unit/test_ports.py::test_free_port_stays_out_of_the_restart_safe_band"),
            split("tests/e2e/test_self_healing_more.py::test_x")} == {IN_ORDER}


def test_every_file_named_to_run_beside_exists() -> None:
    # A renamed file would silently fall back into the serial scope and cost CI its 6 minutes.
    assert all((ROOT / path).is_file() for path in RUN_BESIDE), RUN_BESIDE
