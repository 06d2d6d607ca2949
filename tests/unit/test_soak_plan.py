"""The soak's fault plan and its end-of-run verdict (the run itself is tests/e2e/test_soak.py)."""

from __future__ import annotations

from itertools import pairwise

from valerix.checks.driver import Sent
from valerix.checks.invariants import Check, Report
from valerix.checks.soak import FAULTS, Injected, end_checks


def test_every_process_kind_and_the_database_are_killed_and_windows_never_overlap():
    assert {f.kill for f in FAULTS if f.kill} == {"order-api", "order-worker", "inventory-api", "inventory-worker",
                                                  "postgres"}
    modes = {(f.chaos or {}).get("SCHRODINGER_FAILURE") for f in FAULTS}
    assert {"crash", "error"} <= modes and any((f.chaos or {}).get("GREMLIN_MODE") == "true" for f in FAULTS)
    windows = sorted((f.at, f.until) for f in FAULTS if f.chaos)
    assert all(start < end <= 0.9 for start, end in windows)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(windows))


def _report(lost: int = 0) -> Report:
    checks = [Check("every acknowledged order exists", lost == 0, f"{lost} acknowledged orders are missing"),
              Check("failed and cancelled orders hold nothing", True, "holds")]
    return Report(checks, {"confirmed": 3, "failed": 1, "oversold_units": 0})


def _sent(n: int) -> list[Sent]:
    return [Sent(f"o{i}", 201, "confirmed", None, 0.01, 0.0) for i in range(n)]


def _faults(recovered: float | None = 2.0) -> list[Injected]:
    return [Injected(f.name, f.description, 1, 0.1, killed=f.kill, recovered_seconds=recovered if f.kill else None)
            for f in FAULTS]


def test_a_clean_run_passes_and_each_failure_fails_it():
    assert end_checks(_report(), _sent(4), _faults(), 4, 1.0)["ok"]
    assert not end_checks(_report(lost=2), _sent(4), _faults(), 4, 1.0)["ok"]
    assert not end_checks(_report(), _sent(4), _faults(), 4, None)["ok"]            # not final in time
    assert not end_checks(_report(), _sent(4), _faults(recovered=None), 4, 1.0)["ok"]  # a kill never healed
    assert not end_checks(_report(), _sent(4), _faults()[:-1], 4, 1.0)["ok"]         # a fault missing
    lost = next(r for r in end_checks(_report(lost=2), _sent(4), _faults(), 4, 1.0)["results"]
                if r["check"] == "acknowledged orders lost")
    assert lost["value"] == 2 and not lost["ok"]
