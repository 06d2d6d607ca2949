"""Connection pools, the unit of work, and the SQL migration runner shared by every service."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

Row = dict[str, Any]
# The database did not answer (down, restarting, pool exhausted, timed out): the caller cannot
# know more than "try again". The HTTP layer maps these to 503 + Retry-After; a use case that
# has already committed its write catches them to answer with what it knows instead.
UNAVAILABLE: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout)
# Every session runs with bounded waits so a stuck lock can never hang a request forever.
SESSION_SETTINGS = {"statement_timeout": "15000", "lock_timeout": "10000",
                    "idle_in_transaction_session_timeout": "60000"}
SESSION_OPTIONS = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())   # libpq's options=


def connect_admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def make_pool(url: str, *, name: str, min_size: int = 1, max_size: int = 10,
              timeout: float = 5.0) -> ConnectionPool[psycopg.Connection[Row]]:
    pool: ConnectionPool[psycopg.Connection[Row]] = _StampingPool(
        url,
        name=name,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs={"row_factory": dict_row, "connect_timeout": 5, "options": SESSION_OPTIONS,
                "application_name": name, "prepare_threshold": 2},
        # The pool's reconnection back-off doubles without a cap (1, 2, 4 ... s): after a
        # 6-minute outage its next attempt would come minutes after the database is back. Giving
        # an attempt up after 30 s lets the next request start a fresh one, so the gap between
        # attempts stays under ~16 s however long the outage.
        reconnect_timeout=30,
        # A database restart (a pod rescheduled, a failover) leaves every idle connection dead;
        # without a check each of them fails one request with 503 after the database is back.
        # Only a connection idle for a while is checked: under load a check per checkout is a
        # round trip per transaction, and a connection used a moment ago is known to work.
        check=check_if_idle,
    )
    pool.open(wait=False)
    return pool


CHECK_AFTER_IDLE_S = 1.0
_RETURNED_AT = "_valerix_returned_at"


class _StampingPool(ConnectionPool[psycopg.Connection[Row]]):
    """Stamps each connection when it comes back, for ``check_if_idle``. Not the pool's
    ``reset`` hook: with one set, psycopg_pool hands every returned connection to a worker
    thread (a queue, a wake-up and a notify per transaction)."""

    def putconn(self, conn: psycopg.Connection[Row]) -> None:
        setattr(conn, _RETURNED_AT, time.monotonic())
        super().putconn(conn)


def check_if_idle(conn: psycopg.Connection[Any]) -> None:
    """The pool's ``check``: a round trip only for a connection idle ``CHECK_AFTER_IDLE_S`` or more."""
    if time.monotonic() - getattr(conn, _RETURNED_AT, float("-inf")) >= CHECK_AFTER_IDLE_S:
        ConnectionPool.check_connection(conn)


def ping(pool: ConnectionPool[Any], timeout: float = 1.0) -> None:
    with pool.connection(timeout=timeout) as conn:
        conn.execute("SELECT 1")


# --- migrations -------------------------------------------------------------------------

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


def migration_files(*packages: str) -> list[tuple[str, str]]:
    """(name, sql) for every ``migrations/*.sql`` of the given packages, in package then file order."""
    found: list[tuple[str, str]] = []
    for package in packages:
        folder = resources.files(package) / "migrations"
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
        found += [(f"{package}:{n}", (folder / n).read_text(encoding="utf-8")) for n in names]
    return found


def migrate(url: str, migrations: Iterable[tuple[str, str]]) -> list[str]:
    """Applies pending migrations, each in its own transaction, under an advisory lock
    so that several processes starting at once apply each file exactly once."""
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('valerix.migrations'))")
        try:
            conn.execute(MIGRATIONS_TABLE)
            done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
            for name, body in migrations:
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(body.encode())
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                log.info("migration applied", extra={"migration": name})
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('valerix.migrations'))")
    return applied


def schema_version(url: str) -> str | None:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT max(name) FROM schema_migrations").fetchone()
    return row[0] if row else None

