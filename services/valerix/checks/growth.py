"""Bounded growth: the whole system under a steady open-model load (the bench's k6 script) with
short retentions, the rows of every table of the three databases counted at a fixed interval,
then a verdict per table. Writes test-results/growth-report.{json,md}.

A plain load confirms every order at once, which writes no inbox row and leaves no message on
the bus (the subscriptions' filters drop the events nobody handles). So a light Gremlin (every
``gremlin_every``-th ReserveStock delayed past the 2 s reservation deadline) sends a share of the
orders down the asynchronous path: VerifyOrder and OrderVerified through the bus, an inbox row
in each service. Every order sends an Idempotency-Key, as the storefront does.

Criterion (``judge``): a table kept only for a while reaches its steady state ``steady =
retention + housekeeping interval`` after the load starts (the first rows are trimmed by then);
from then on it saws between ``retention`` worth of rows (just after a trim) and ``steady`` worth
(just before the next). It is **flat** when the largest count at or after ``2 x steady`` is at
most ``TOLERANCE`` (1.25) x ``steady / retention`` x the largest count in the first cycle
``[steady, 2 x steady)``, plus ``SLACK_ROWS`` (200). The ``steady / retention`` factor is the
sawtooth's own height: the first cycle's samples may all fall just after a trim and a later one
just before a trim. The slack keeps a table holding only in-flight rows (``bus_messages``: a
second or two of traffic) from being judged on noise. A run must reach ``3 x steady`` (a cycle
after the first one) to judge a table at all; a shorter run says so and fails.
Business tables (orders and their history, reservations) grow with the orders by design and are
only reported; the catalogue and configuration tables are fixed. A table this module does not
know is judged as a retention table, so a new one that grows is noticed."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from valerix.chaos.scenarios import settle
from valerix.chaos.switches import OFF_VALUES, gremlin_values, write_local
from valerix.checks import invariants
from valerix.checks.bench import BenchConfig, restock, run_k6
from valerix.checks.report_files import write_report
from valerix.local.config import Ports, StackConfig
from valerix.local.stack import Stack

TOLERANCE = 1.25
SLACK_ROWS = 200
FINAL_WITHIN = 60.0
DATABASES = ("order_db", "inventory_db", "bus_db")

# Tables kept only for a while, and what bounds each (bus_duplicates: the entities' duplicate
# window, which the topology sets, not an environment variable).
RETAINED = {
    "outbox": "OUTBOX_RETENTION_S (sent rows)",
    "inbox": "INBOX_RETENTION_S",
    "idempotency_keys": "IDEMPOTENCY_RETENTION_S",
    "bus_messages": "completed at once; dead letters DEAD_LETTER_RETENTION_S",
    "bus_duplicates": "the bus entities' duplicate_window",
}
KEPT = ("orders", "order_items", "order_status_history", "reservations", "reservation_lines")
FIXED = ("products", "bus_entities", "schema_migrations")
KEPT_VERDICT = "grows with orders (kept by design)"
FIXED_VERDICT = "catalogue / configuration (not judged)"

TABLES = """SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY relname"""
DUPLICATE_WINDOW = "SELECT coalesce(extract(epoch FROM max(duplicate_window)), 0) AS s FROM bus_entities"


@dataclass(frozen=True)
class Flatness:
    flat: bool | None            # None: the run is too short to tell
    window_max: int | None       # the largest count in [steady, 2 x steady)
    after_max: int | None        # the largest count at or after 2 x steady


def judge(series: Sequence[tuple[float, int]], retention: float, housekeeping: float,
          tolerance: float = TOLERANCE, slack: int = SLACK_ROWS) -> Flatness:
    """``series``: (seconds since the load started, rows). See the module's docstring."""
    steady = retention + housekeeping
    window = [rows for at, rows in series if steady <= at < 2 * steady]
    after = [rows for at, rows in series if at >= 2 * steady]
    if not window or not after or max(at for at, _ in series) < 3 * steady:
        return Flatness(None, max(window, default=None), max(after, default=None))
    bound = tolerance * steady / retention * max(window) + slack
    return Flatness(max(after) <= bound, max(window), max(after))


def table_name(column: str) -> str:
    """"order.outbox" -> "outbox"."""
    return column.split(".", 1)[1]


@dataclass
class GrowthConfig:
    rate: float = 50.0              # orders/s offered (open model)
    minutes: float = 60.0
    retention: float = 300.0        # every retention setting, seconds
    housekeeping: float = 30.0      # HOUSEKEEPING_INTERVAL_S
    sample: float = 60.0            # seconds between row counts
    gremlin_every: int = 20         # every Nth ReserveStock answered late (202); 0 = no chaos
    out: Path = Path("test-results")

    def chaos(self) -> dict[str, str]:
        # 2.5-4 s: past the order service's 2 s reservation deadline, so the order answers 202.
        late = gremlin_values(True, self.gremlin_every, 2500, 4000, 17) if self.gremlin_every else {}
        return {**OFF_VALUES, **late}

    def env(self) -> dict[str, str]:
        keep = f"{self.retention:g}"
        return {"OUTBOX_RETENTION_S": keep, "INBOX_RETENTION_S": keep, "DEAD_LETTER_RETENTION_S": keep,
                "IDEMPOTENCY_RETENTION_S": keep, "HOUSEKEEPING_INTERVAL_S": f"{self.housekeeping:g}",
                "LOG_LEVEL": "WARNING",
                # Every late order verified through the bus, not settled by its late answer
                # (order/late_answers.py): the inboxes and the bus must carry traffic.
                "VERIFY_HOLD_MS": "0"}


@dataclass
class Sample:
    at: float                # seconds since the load started
    rows: dict[str, int]     # "<service>.<table>" -> rows


@dataclass
class Verdict:
    table: str
    kind: str                # retention | kept | fixed | unclassified
    bound: str
    steady: float | None     # seconds after which the table is judged
    window_max: int | None
    after_max: int | None
    verdict: str
    ok: bool


@dataclass
class GrowthResult:
    config: dict[str, Any]
    duplicate_window: float
    k6: dict[str, Any]
    answered: dict[str, int]
    samples: list[Sample]
    verdicts: list[Verdict]
    settle_seconds: float | None
    invariants: dict[str, Any]
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (all(v.ok for v in self.verdicts) and bool(self.invariants.get("ok"))
                and self.settle_seconds is not None and not self.errors)


def count_rows(urls: dict[str, str]) -> dict[str, int]:
    """Exact row counts of every table of the three databases (count(*): small at these sizes)."""
    rows: dict[str, int] = {}
    for name in DATABASES:
        with psycopg.connect(urls[name], connect_timeout=10) as conn:
            for schema, table in conn.execute(TABLES).fetchall():
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
                found = conn.execute(query).fetchone()
                rows[f"{name.removesuffix('_db')}.{table}"] = int(found[0]) if found else 0
    return rows


def duplicate_window(bus_url: str) -> float:
    with psycopg.connect(bus_url, connect_timeout=10) as conn:
        found = conn.execute(DUPLICATE_WINDOW).fetchone()
    return float(found[0]) if found else 0.0


class RowCounter(threading.Thread):
    """Counts every table every ``every`` seconds until stopped; a failed count is skipped."""

    def __init__(self, urls: dict[str, str], every: float, say: Callable[[str], None]) -> None:
        super().__init__(name="growth-counter", daemon=True)
        self.urls, self.every, self.say = urls, every, say
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.done = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        taken = 0
        while True:
            at = round(time.monotonic() - self.started, 1)
            try:
                self.samples.append(Sample(at, count_rows(self.urls)))
                self.say(f"{at:g} s: " + ", ".join(f"{k} {v}" for k, v in self.samples[-1].rows.items()
                                                   if table_name(k) in RETAINED))
            except psycopg.Error as error:
                self.errors.append(f"{at:g} s: {error!r}")
            taken += 1
            if self.done.wait(max(0.0, self.started + taken * self.every - time.monotonic())):
                return

    def finish(self) -> list[Sample]:
        self.done.set()
        self.join(timeout=60)
        return self.samples


def verdicts(samples: Sequence[Sample], retention: float, housekeeping: float,
             duplicate_window_s: float) -> list[Verdict]:
    columns = sorted({c for s in samples for c in s.rows}, key=column_order)
    found = []
    for column in columns:
        table = table_name(column)
        series = [(s.at, s.rows[column]) for s in samples if column in s.rows]
        if table in KEPT or table in FIXED:
            kind = "kept" if table in KEPT else "fixed"
            most = max((rows for _, rows in series), default=None)
            found.append(Verdict(column, kind, "", None, None, most, KEPT_VERDICT if kind == "kept" else FIXED_VERDICT,
                                 True))
            continue
        kind = "retention" if table in RETAINED else "unclassified"
        keep = duplicate_window_s if table == "bus_duplicates" else retention
        steady = keep + housekeeping
        flatness = judge(series, keep, housekeeping)
        if flatness.flat is None:
            verdict = f"run too short to judge (needs ≥ {3 * steady / 60:.1f} min)"
        else:
            verdict = "flat" if flatness.flat else "GROWING"
        found.append(Verdict(column, kind, RETAINED.get(table, f"judged with a {retention:g} s retention"), steady,
                             flatness.window_max, flatness.after_max, verdict, bool(flatness.flat)))
    return found


def column_order(column: str) -> tuple[int, str]:
    table = table_name(column)
    rank = 0 if table in RETAINED else 2 if table in KEPT else 3 if table in FIXED else 1
    return rank, column


def run(config: GrowthConfig, say: Callable[[str], None] = print) -> GrowthResult:
    seconds = config.minutes * 60
    home = Path(tempfile.mkdtemp(prefix="valerix-growth-"))
    stack = Stack(StackConfig(home=home, ports=Ports.free(), with_prometheus=False, with_backup=False,
                              extra_env=config.env()))
    config.out.mkdir(parents=True, exist_ok=True)
    try:
        stack.start(wait=90)
        # orders.js orders 1-3 units of one of its five products: 3 units per order and product
        # can never run out.
        restock(stack.urls["inventory_db"], int(config.rate * seconds * 3) + 1000)
        window = duplicate_window(stack.urls["bus_db"])
        if seconds < 3 * (window + config.housekeeping):
            say(f"note: bus_duplicates (a {window:g} s duplicate window) needs "
                f"{3 * (window + config.housekeeping) / 60:g} min to be judged; this run will say it is too short")
        say(f"growth: {config.rate:g} orders/s for {config.minutes:g} min, retention {config.retention:g} s, "
            f"housekeeping every {config.housekeeping:g} s, rows counted every {config.sample:g} s, "
            + (f"every {config.gremlin_every}th ReserveStock late" if config.gremlin_every else "no chaos"))
        write_local(stack.home / "chaos", config.chaos())
        time.sleep(1.2)  # the services re-read the chaos directory within a second
        counter = RowCounter(stack.urls, config.sample, say)
        counter.start()
        k6 = run_k6(stack.order_url, "growth", BenchConfig(["growth"], duration=seconds), config.rate, config.out,
                    stem="growth", script_env={"IDEMPOTENCY": "1", "THRESHOLDS": "off"})
        samples = counter.finish()
        write_local(stack.home / "chaos", OFF_VALUES)
        records = k6.pop("records")
        say(f"{len(records)} orders sent; waiting until every order is final")
        settle_seconds, _ = settle(stack.urls["order_db"], FINAL_WITHIN,
                                   lambda at, left: say(f"{left} orders not final yet ({at:g} s)"))
        acknowledged = [r["id"] for r in records if r["s"] in (201, 202) and r.get("id")]
        report = invariants.check(stack.urls["order_db"], stack.urls["inventory_db"], acknowledged)
        result = GrowthResult(config={**asdict(config), "out": str(config.out)}, duplicate_window=window, k6=k6,
                              answered=dict(Counter(str(r["s"]) for r in records)), samples=samples,
                              verdicts=verdicts(samples, config.retention, config.housekeeping, window),
                              settle_seconds=settle_seconds, invariants=report.as_dict(), errors=counter.errors)
    finally:
        stack.stop()
        if (stack.home / "log").exists():  # for a post-mortem
            shutil.copytree(stack.home / "log", config.out / "growth-logs", dirs_exist_ok=True)
        stack.destroy()
    write(config.out, result)
    return result


def write(out: Path, result: GrowthResult) -> None:
    write_report(out, "growth-report", {"ok": result.ok, **asdict(result)}, markdown(result))


def series_table(samples: Sequence[Sample], columns: Sequence[str], rows: int | None = None) -> list[str]:
    """Rows = sample time (m:ss since the load started), columns = tables; ``rows`` keeps about
    that many evenly spaced samples (always the last)."""
    step = max(1, -(-len(samples) // rows)) if rows else 1
    chosen = [s for i, s in enumerate(samples) if i % step == 0 or i == len(samples) - 1]
    lines = ["| m:ss | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {int(s.at) // 60}:{int(s.at) % 60:02d} | " + " | ".join(str(s.rows.get(c, "")) for c in columns)
              + " |" for s in chosen]
    return lines


def markdown(result: GrowthResult) -> str:
    c = result.config
    columns = [v.table for v in result.verdicts if v.kind != "fixed"]
    answered = ", ".join(f"{k}: {v}" for k, v in sorted(result.answered.items()))
    lines = ["# Growth report", "",
             f"{c['rate']:g} orders/s offered for {c['minutes']:g} min ({answered}); retention "
             f"{c['retention']:g} s for outbox, inbox, idempotency keys and dead letters, the bus's duplicate "
             f"window {result.duplicate_window:g} s, housekeeping every {c['housekeeping']:g} s, rows counted every "
             f"{c['sample']:g} s, "
             + (f"every {c['gremlin_every']}th ReserveStock answered late (Gremlin, 2.5-4 s)"
                if c.get("gremlin_every") else "no chaos")
             + ". Every order final "
             + (f"{result.settle_seconds} s after the load" if result.settle_seconds is not None
                else f"NOT within {FINAL_WITHIN:g} s")
             + f"; invariants {'hold' if result.invariants.get('ok') else 'BROKEN'}.", "",
             f"Flat: the largest count from 2 x steady on ≤ {TOLERANCE:g} x steady / retention x the largest in "
             f"[steady, 2 x steady) + {SLACK_ROWS} rows, where steady = retention + housekeeping interval.", "",
             "| table | kind | bounded by | steady after s | max in first cycle | max after | verdict |",
             "|---|---|---|---|---|---|---|"]
    for v in result.verdicts:
        mark = "" if v.kind in ("kept", "fixed") else (" ✅" if v.ok else " ❌")
        lines.append(f"| {v.table} | {v.kind} | {v.bound} | {'' if v.steady is None else f'{v.steady:g}'} | "
                     f"{'' if v.window_max is None else v.window_max} | {'' if v.after_max is None else v.after_max} | "
                     f"{v.verdict}{mark} |")
    lines += ["", "## Rows over time (for docs/reliability.md)", "", *series_table(result.samples, columns, 13),
              "", "## Every sample", "", *series_table(result.samples, columns)]
    if result.errors:
        lines += ["", "Counts that failed: " + "; ".join(result.errors)]
    return "\n".join(lines) + "\n"
