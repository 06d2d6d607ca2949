"""The automated chaos pipeline: start the system, drive orders under each failure mode,
let it settle, check every invariant, and write a report (test-results/chaos-report.*)."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valerix.chaos.scenarios import Scenario, journeys, settle
from valerix.chaos.switches import OFF_VALUES as OFF
from valerix.chaos.switches import gremlin_values, schrodinger_values, write_local
from valerix.checks import invariants
from valerix.checks.driver import Sent, drive
from valerix.local.config import Ports, StackConfig
from valerix.local.stack import Stack

SCENARIOS = [
    Scenario("baseline", {}, "no chaos"),
    Scenario("gremlin", gremlin_values(True, 3, 2000, 5000, 42),
             "every 3rd ReserveStock delayed 2-5 s (deterministic pattern, seeded)"),
    Scenario("schrodinger-crash", schrodinger_values(True, 0.15, "crash", 7),
             "15 % of committed reservations kill the inventory process before it answers"),
    Scenario("schrodinger-error", schrodinger_values(True, 0.2, "error", 11),
             "20 % of committed reservations answer INTERNAL"),
]


@dataclass
class ScenarioResult:
    scenario: str
    description: str
    sent: int
    answered: dict[str, int]
    latency_ms: dict[str, float]
    max_latency_ms: float
    settle_seconds: float | None
    affected: list[dict[str, Any]]
    invariants: dict[str, Any]
    restarts: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.invariants["ok"]) and self.settle_seconds is not None


def _bucket(status: int) -> str:
    return str(status) if status in (201, 202, 409, 422) else ("no-answer" if status == 0 else "other")


def crash_count(stack: Stack) -> int:
    """Schrödinger crashes so far, as supervisor saw them (exit status 70, restarted)."""
    log = stack.home / "log" / "supervisord.log"
    return log.read_text().count("exited: inventory-api (exit status 70") if log.exists() else 0


def run_scenario(stack: Stack, scenario: Scenario, seconds: float, concurrency: int,
                 settle_bound: float) -> ScenarioResult:
    chaos_dir = stack.home / "chaos"
    write_local(chaos_dir, {**OFF, **scenario.chaos})
    time.sleep(1.2)  # the services re-read the chaos directory within a second
    crashes_before = crash_count(stack)
    sent: list[Sent] = drive(stack.order_url, seconds, concurrency=concurrency)
    restarts = crash_count(stack) - crashes_before
    write_local(chaos_dir, OFF)
    settle_seconds, _ = settle(stack.urls["order_db"], settle_bound)
    acknowledged = [s.order_id for s in sent if s.order_id and s.status in (201, 202)]
    report = invariants.check(stack.urls["order_db"], stack.urls["inventory_db"], acknowledged)
    affected_ids = [s.order_id for s in sent if s.order_id and s.status not in (201, 409)]
    latencies = sorted(s.latency * 1000 for s in sent) or [0.0]
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return ScenarioResult(
        scenario=scenario.name, description=scenario.description, sent=len(sent),
        answered=dict(Counter(_bucket(s.status) for s in sent)),
        latency_ms={"p50": round(q[49], 1), "p95": round(q[94], 1), "p99": round(q[98], 1)},
        max_latency_ms=round(latencies[-1], 1), settle_seconds=settle_seconds,
        affected=journeys(stack.urls["order_db"], [i for i in affected_ids if i]),
        invariants=report.as_dict(), restarts=restarts)


def markdown(results: list[ScenarioResult]) -> str:
    columns = ["scenario", "sent", "201", "202", "409", "other", "p50 ms", "p99 ms", "max ms", "crashes", "settle s",
               "invariants"]
    lines = ["# Chaos pipeline report", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in results:
        a = r.answered
        other = sum(v for k, v in a.items() if k not in ("201", "202", "409"))
        cells = [r.scenario, r.sent, a.get("201", 0), a.get("202", 0), a.get("409", 0), other, r.latency_ms["p50"],
                 r.latency_ms["p99"], r.max_latency_ms, r.restarts, r.settle_seconds,
                 "ok" if r.invariants["ok"] else "FAILED"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for r in results:
        lines += ["", f"## {r.scenario}: {r.description}", ""]
        for c in r.invariants["checks"]:
            lines.append(f"- {'✅' if c['ok'] else '❌'} {c['name']}: {c['detail']}"
                         + (f" (e.g. {', '.join(c['examples'])})" if c["examples"] else ""))
        if r.affected:
            lines += ["", f"Affected orders ({len(r.affected)}):", ""]
            lines += [f"- `{j['orderId']}`: {j['journey']}" for j in r.affected[:25]]
            if len(r.affected) > 25:
                lines.append(f"- … and {len(r.affected) - 25} more (all in the JSON report)")
    return "\n".join(lines) + "\n"


def run(out_dir: Path, seconds: float = 15.0, concurrency: int = 6, settle_bound: float = 60.0,
        scenarios: list[str] | None = None, home: Path | None = None) -> tuple[bool, list[ScenarioResult]]:
    chosen = [s for s in SCENARIOS if not scenarios or s.name in scenarios]
    workdir = Path(tempfile.mkdtemp(prefix="valerix-chaos-")) if home is None else home
    stack = Stack(StackConfig(home=workdir, ports=Ports.free(), with_prometheus=False, with_backup=False,
                              extra_env={"SWEEPER_RESEND_AFTER_S": "5"}))
    results: list[ScenarioResult] = []
    try:
        stack.start(wait=90)
        for scenario in chosen:
            results.append(run_scenario(stack, scenario, seconds, concurrency, settle_bound))
    finally:
        stack.destroy() if home is None else stack.stop()
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = bool(results) and all(r.ok for r in results)
    (out_dir / "chaos-report.json").write_text(json.dumps(
        {"ok": ok, "seconds_per_scenario": seconds, "concurrency": concurrency,
         "scenarios": [vars(r) for r in results]}, indent=2, default=str))
    (out_dir / "chaos-report.md").write_text(markdown(results))
    return ok, results
