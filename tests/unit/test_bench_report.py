"""The benchmark's arithmetic and verdicts, on hand-made k6 records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from valerix.checks import bench_report as br


def records(statuses: list[int], ms: float = 10.0, per_second: int = 100) -> list[dict[str, Any]]:
    return [{"id": f"o{i}", "s": s, "ms": ms, "t": 1_000_000 + i * 1000 / per_second + ms}
            for i, s in enumerate(statuses)]


def result(recs: list[dict[str, Any]], ok: bool = True, settle: float | None = 0.5) -> dict[str, Any]:
    checks = [{"name": n, "ok": ok, "detail": "holds", "examples": []} for n in (
        "every acknowledged order exists", "stock never negative", "initial = stock + active reservations",
        "every reservation belongs to a confirmed order")]
    return {"summary": br.summarize(recs), "invariants": {"ok": ok, "checks": checks}, "seconds_to_final": settle}


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (br.percentile(values, 50), br.percentile(values, 99), br.percentile(values, 100)) == (50, 99, 100)
    assert br.percentile([], 99) == 0.0


def test_summary_counts_outcomes_and_throughput() -> None:
    s = br.summarize(records([201] * 80 + [202] * 10 + [409] * 5 + [500] * 5))
    assert s["by_status"] == {"201": 80, "202": 10, "409": 5, "500": 5}
    assert (s["affected"], s["errors"], s["server_errors"]) == (10, 5, 5)
    refused = br.summarize(records([201] * 8 + [503] * 2))
    assert (refused["refused"], refused["errors"], refused["server_errors"]) == (2, 0, 0)
    assert 99 <= s["answered_per_s"] <= 101 and 79 <= s["confirmed_per_s"] <= 81


def test_correctness_fails_on_server_errors_lost_orders_or_unsettled_runs() -> None:
    assert br.correct(result(records([201] * 10)))
    assert not br.correct(result(records([201] * 9 + [500])))
    assert not br.correct(result(records([201] * 9 + [0])))
    assert not br.correct(result(records([201] * 10), ok=False))
    assert not br.correct(result(records([201] * 10), settle=None))


def test_targets_judge_each_scenario() -> None:
    slow = result(records([201] * 100, ms=300))
    slow["cpu_ms_per_order"] = 4.6
    verdicts = {t["target"]: t["met"] for t in br.targets("normal", slow, None)}
    assert verdicts == {"invariants (DESIGN §4)": True, "confirmed orders/s": False, "p99 ms": False,
                        "errors (503 included)": True, "CPU ms per order (with PostgreSQL)": False}
    steady = result(records([201] * 100, ms=90))
    steady["cpu_ms_per_order"] = 4.5
    verdicts = {t["target"]: t["met"] for t in br.targets("steady", steady, None)}
    assert verdicts == {"invariants (DESIGN §4)": True, "p99 ms": True,
                        "errors (503 included)": True, "CPU ms per order (with PostgreSQL)": True}
    gremlin = result(records([201] * 80 + [202] * 20, ms=20) + records([202], ms=2500), settle=12)
    verdicts = {t["target"]: t["met"] for t in br.targets("gremlin", gremlin, 45.0)}
    assert not verdicts["max response ms"] and not verdicts["seconds until all final"]
    assert verdicts["unaffected p99 ms"] and verdicts["accepted orders/s vs normal"]


def test_records_skip_lines_that_are_not_orders(tmp_path: Path) -> None:
    path = tmp_path / "orders.ndjson"
    path.write_text("\n".join([json.dumps({"id": "a", "s": 201, "ms": 3.0, "t": 1}), "not json", "[1]", ""]))
    assert br.read_records(path) == [{"id": "a", "s": 201, "ms": 3.0, "t": 1}]
    assert br.read_records(tmp_path / "missing") == []


def test_the_command_offers_every_scenario_the_bench_knows() -> None:
    from valerix.checks.bench import SCENARIOS
    from valerix.checks.bench_cli import CHOICES

    assert set(CHOICES) == {*SCENARIOS, "all"}


def test_answers_over_the_bound_say_where_their_time_went() -> None:
    recs = records([201] * 10)
    recs[0] |= {"ms": 3000.0, "q": 100.0, "a": 400.0}     # 2500 ms before or after the process
    recs[1] |= {"ms": 2500.0, "q": 1800.0, "a": 600.0}    # queued in the process
    recs[2] |= {"ms": 2400.0, "s": 202}                   # no Server-Timing: counted, not split
    over = br.summarize(recs)["over_bound"]
    assert (over["n"], over["timed"], over["by_status"]) == (3, 2, {"201": 2, "202": 1})
    assert over["median_ms"] == {"outside": 100.0, "queued": 100.0, "handler": 400.0}   # nearest rank: the lower
    row = br._over_bound_row(over)
    assert row == ["| answers over 2200 ms | 3 (201: 2, 202: 1); median ms outside the process / queued in it / "
                   "in the handler: 100.0 / 100.0 / 400.0 |"]
    assert br._over_bound_row(br.summarize(records([201] * 3))["over_bound"]) == []


def test_every_answer_s_time_is_split_by_its_server_timing_steps() -> None:
    recs = records([201] * 4)
    for i, rec in enumerate(recs[:3]):                    # the fourth has no Server-Timing
        rec |= {"ms": 50.0 + i, "q": 2.0, "a": 40.0 + i, "save": 10.0, "reserve": 20.0 + i, "settle": 8.0}
    recs[2].pop("settle")                                 # an order whose settling never ran
    split = br.summarize(recs)["time_split_ms"]
    assert list(split) == ["outside", "queued", "save", "reserve", "settle", "rest of handler"]
    assert split["outside"] == {"p50": 8.0, "p99": 8.0}
    assert split["reserve"] == {"p50": 21.0, "p99": 22.0}
    assert split["settle"] == {"p50": 8.0, "p99": 8.0}    # only where the step ran
    assert split["rest of handler"] == {"p50": 2.0, "p99": 10.0}
    assert br._time_split_row(split)[0].startswith(
        "| where answers' time went, p50 / p99 ms (Server-Timing) | outside 8.0 / 8.0, queued 2.0 / 2.0, save 10.0 /")
    assert br.summarize(records([201] * 2))["time_split_ms"] == {} and br._time_split_row({}) == []


def test_an_open_model_run_says_how_many_arrivals_k6_dropped(tmp_path: Path) -> None:
    summary = tmp_path / "k6-summary.json"
    summary.write_text(json.dumps({"metrics": {"dropped_iterations": {"count": 30, "rate": 0.5},
                                               "vus_max": {"value": 139, "min": 100, "max": 139}}}))
    generator = br.load_generator(summary)
    assert generator == {"dropped_iterations": 30, "vus_max": 139}
    run = result(records([201] * 970, ms=20))
    run["k6"] = {"mode": "open model, 400 orders/s offered", **generator}
    (dropped,) = [t for t in br.targets("steady", run, None) if t["target"].startswith("iterations k6 dropped")]
    assert (dropped["value"], dropped["met"]) == ("30 (3.0%)", False)
    run["k6"]["dropped_iterations"] = 5
    assert all(t["met"] for t in br.targets("steady", run, None) if t["target"].startswith("iterations"))
    run.update(machine={"loadavg_before": 1, "loadavg_after": 2, "busy_percent": 90}, description="x",
               scenario="steady", targets=br.targets("steady", run, None))
    assert "k6 ran at most 139 VUs and dropped 5 iterations." in br.markdown(run)


def test_k6_leaves_dropped_iterations_out_when_there_were_none(tmp_path: Path) -> None:
    summary = tmp_path / "k6-summary.json"
    summary.write_text(json.dumps({"metrics": {"vus_max": {"value": 50, "min": 50, "max": 50}}}))
    assert br.load_generator(summary) == {"dropped_iterations": 0, "vus_max": 50}
    assert br.load_generator(tmp_path / "missing.json") == {}
    run = result(records([201] * 10))
    run["k6"] = {"dropped_iterations": 0, "vus_max": 50}
    assert not [t for t in br.targets("normal", run, None) if t["target"].startswith("iterations")]
