"""Housekeeping: what a service keeps only for a while is trimmed on a schedule, in small
batches (short transactions, no long locks), and what it keeps is measured.

Retention (settings, seconds): sent outbox rows ``OUTBOX_RETENTION_S`` (24 h: long enough to
look into a recent incident), inbox entries ``INBOX_RETENTION_S`` (7 days: far past the last
possible redelivery, which the bus bounds at max_delivery_count times the lock duration, and past the
bus's duplicate window), dead-lettered messages of the embedded bus ``DEAD_LETTER_RETENTION_S``
(14 days, the default message time-to-live Azure Service Bus suggests: time for an operator to resubmit).
Completed bus messages need no trimming: completing one deletes it. An unsent outbox row is
never trimmed, however old."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from valerix.kit import metrics

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass(frozen=True)
class Retention:
    """``query`` deletes at most ``%(batch)s`` rows older than ``%(keep)s``."""

    table: str
    keep: timedelta
    query: str


def outbox(keep: timedelta) -> Retention:
    return Retention("outbox", keep, """
        DELETE FROM outbox WHERE id IN (
            SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - %(keep)s
            ORDER BY sent_at LIMIT %(batch)s)""")


def inbox(keep: timedelta) -> Retention:
    return Retention("inbox", keep, """
        DELETE FROM inbox WHERE (consumer, event_id) IN (
            SELECT consumer, event_id FROM inbox WHERE handled_at < now() - %(keep)s
            ORDER BY handled_at LIMIT %(batch)s)""")


def trim(pool: ConnectionPool[Any], service: str, retention: Retention, batch: int = BATCH) -> int:
    """Deletes every row past the retention, a batch per transaction; returns how many."""
    total = 0
    while True:
        with pool.connection() as conn:
            deleted = conn.execute(retention.query, {"keep": retention.keep, "batch": batch}).rowcount
        total += deleted
        metrics.ROWS_TRIMMED.labels(service=service, table=retention.table).inc(deleted)
        if deleted < batch:
            return total


TABLE_ROWS = "SELECT relname AS name, n_live_tup AS n FROM pg_stat_user_tables WHERE relname = ANY(%s)"
# A held row counts from when it is due, not from when it was written.
OLDEST_UNSENT = ("SELECT greatest(coalesce(extract(epoch FROM now() - min(coalesce(publish_after, created_at))), 0), 0)"
                 " AS age FROM outbox WHERE sent_at IS NULL")


def measure(pool: ConnectionPool[Any], service: str, tables: Sequence[str]) -> None:
    """Rows per table (the statistics' live-row estimate: no count(*) scan of a big table) and
    the age of the oldest unpublished outbox row (0 when the outbox is drained)."""
    with pool.connection() as conn:
        for row in conn.execute(TABLE_ROWS, (list(tables),)):
            metrics.TABLE_ROWS.labels(service=service, table=row["name"]).set(int(row["n"]))
        age = conn.execute(OLDEST_UNSENT).fetchone()
    metrics.OUTBOX_OLDEST_UNSENT.labels(service=service).set(float(age["age"]) if age else 0.0)


class Housekeeping:
    """One periodic step: trim each retention, then measure (a failure skips to the next round)."""

    def __init__(self, pool: ConnectionPool[Any], service: str, retentions: Sequence[Retention],
                 tables: Sequence[str], extra: Sequence[Any] = ()) -> None:
        self._pool, self._service = pool, service
        self._retentions, self._tables, self._extra = list(retentions), list(tables), list(extra)

    def step(self) -> dict[str, int]:
        trimmed = {r.table: trim(self._pool, self._service, r) for r in self._retentions}
        for task in self._extra:
            trimmed.update(task())
        measure(self._pool, self._service, self._tables)
        if any(trimmed.values()):
            log.info("housekeeping trimmed rows", extra={"trimmed": trimmed})
        return trimmed
