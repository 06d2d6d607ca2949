"""What the databases did per order during a run, from PostgreSQL's cumulative statistics:
commits and rollbacks per database, rows written per table. (pg_stat_statements would give
statements too, but the pgserver build ships no contrib modules.)"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import psycopg

DATABASES = ("order_db", "inventory_db", "bus_db")
ACTIVITY = "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
TABLE_WRITES = "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"

Snapshot = dict[str, dict[str, Any]]


def snapshot(urls: Mapping[str, str]) -> Snapshot:
    """The counters of each database, after asking this backend to flush its own share (the
    service backends flush theirs at most a second after their last transaction)."""
    found: Snapshot = {}
    for name in DATABASES:
        if name not in urls:
            continue
        with psycopg.connect(urls[name], autocommit=True) as conn:
            commits, rollbacks = conn.execute(ACTIVITY).fetchone() or (0, 0)
            tables = {r[0]: {"inserted": r[1], "updated": r[2], "deleted": r[3]}
                      for r in conn.execute(TABLE_WRITES).fetchall()}
        found[name] = {"commits": int(commits), "rollbacks": int(rollbacks), "tables": tables}
    return found


def per_order(before: Snapshot, after: Snapshot, orders: int) -> dict[str, Any]:
    """Commits per order in each database and in all, and the rows each table gained, changed
    and lost per order (tables untouched during the run are left out)."""
    orders = max(1, orders)
    result: dict[str, Any] = {"commits": {}, "rows": {}}
    for name, now in after.items():
        then = before.get(name, {"commits": 0, "rollbacks": 0, "tables": {}})
        result["commits"][name] = round((now["commits"] - then["commits"]) / orders, 2)
        for table, counts in now["tables"].items():
            old = then["tables"].get(table, {})
            delta = {k: round((v - old.get(k, 0)) / orders, 2) for k, v in counts.items()}
            if any(delta.values()):
                result["rows"][f"{name}.{table}"] = delta
    result["commits"]["all"] = round(sum(result["commits"].values()), 2)
    return result


def inserted(snap: Snapshot, database: str, table: str) -> int:
    return int(snap.get(database, {}).get("tables", {}).get(table, {}).get("inserted", 0))


def snapshot_when_counted(urls: Mapping[str, str], before: Snapshot, orders: int, bound: float = 15.0) -> Snapshot:
    """A snapshot once the statistics count every order of the run: a busy backend reports its
    counters up to 10 s after its last transaction (PGSTAT_IDLE_INTERVAL), and a snapshot taken
    earlier would undercount everything per order."""
    deadline = time.monotonic() + bound
    while True:
        snap = snapshot(urls)
        counted = inserted(snap, "order_db", "orders") - inserted(before, "order_db", "orders")
        if counted >= orders or time.monotonic() >= deadline or "order_db" not in urls:
            return snap
        time.sleep(0.5)
