"""The outbox relay: publishes committed outbox rows to the bus, in order, and marks them sent.

Runs in each service's worker process (never in the API), so a slow or absent bus only
grows the backlog. Delivery is at-least-once from here and exactly-once on the bus: a relay
killed after publishing but before marking rows sent publishes them again on restart with
the same message id (the eventId), and the bus's duplicate detection drops the copies.

Commit order: ids come from a sequence, so a transaction can commit a lower id after a
higher one is already visible. The relay takes only rows whose inserting transaction
(column ``xid``) is older than the oldest transaction still running. Once that holds, no
running transaction can still add a row that belongs before them, so the published
sequence never has a row inserted behind it, and causally related events (a transaction
that began after another committed) always go out in that order. The one exception is a row
held back on purpose (``publish_after``, see ``UnitOfWork.add_event``): it goes out when it is
due, after rows committed later. Only a command whose handler is idempotent and which nothing
later depends on is held (the order service's VerifyOrder after a reservation timed out).

No transaction is open while the bus is called (a slow broker must not hold a transaction
past the database's idle-in-transaction timeout, which would republish the batch forever).
A step claims a batch in one short transaction by leasing it (``leased_until``), publishes
with no transaction open, and marks the rows sent in a second short transaction. While a
lease runs no other relay claims anything, so one batch is in flight at a time and commit
order holds; a relay that dies mid-batch leaves a lease that simply expires, and the next
claim republishes the batch (the bus drops the copies by message id, consumers have an inbox).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from valerix.contracts.events import Envelope
from valerix.kit import metrics
from valerix.kit.bus.port import Bus
from valerix.kit.loops import doubling, run_steps

log = logging.getLogger(__name__)

# Several worker replicas may run; one claims at a time, and none while a lease runs.
LEADER = "SELECT pg_try_advisory_xact_lock(hashtext('valerix.outbox.relay')) AS leader"
IN_FLIGHT = "SELECT EXISTS (SELECT 1 FROM outbox WHERE sent_at IS NULL AND leased_until > now()) AS busy"
CLAIM = """
UPDATE outbox SET leased_until = now() + make_interval(secs => %(lease)s)
WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot())
               AND (publish_after IS NULL OR publish_after <= now())
             ORDER BY id LIMIT %(n)s)
RETURNING id, event_id, destination, payload, coalesce(publish_after, created_at) AS due_at
"""
MARK_SENT = ("UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL, leased_until = NULL "
             "WHERE id = ANY(%s)")
MARK_FAILED = "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s"
RELEASE = "UPDATE outbox SET leased_until = NULL WHERE id = ANY(%s) AND sent_at IS NULL"
BACKLOG = "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"

# Test hook for the crash test: "<stage>:<file>" makes the relay write <file> and stop at
# <stage> ("selected" or "published") until it is killed.
HOLD_ENV = "VALERIX_RELAY_TEST_HOLD"


class Relay:
    def __init__(self, pool: ConnectionPool[Any], bus: Bus, service: str, *, batch_size: int = 100,
                 poll_seconds: float = 0.05, idle_poll_seconds: float = 0.4, max_backoff_seconds: float = 30.0,
                 lease_seconds: float = 10.0) -> None:
        self._pool = pool
        self._bus = bus
        self._service = service
        self._batch = batch_size
        self._poll = poll_seconds
        self._idle_poll = max(idle_poll_seconds, poll_seconds)
        self._max_backoff = max_backoff_seconds
        self._lease = lease_seconds
        self._hold = os.environ.get(HOLD_ENV, "")
        self._backlog_at = float("-inf")

    def step(self) -> int:
        """Publishes one batch; returns how many rows were published (0 when another relay
        holds the lease, or nothing is ready)."""
        rows = self._claim()
        if not rows:
            self._refresh_backlog()
            return 0
        self._test_hold("selected", rows)
        published, failure = self._publish(rows)
        now = datetime.now(UTC)
        for row in rows[:len(published)]:
            metrics.OUTBOX_PUBLISH_LAG.labels(service=self._service).observe(
                max((now - row["due_at"]).total_seconds(), 0.0))
        self._test_hold("published", rows)
        with self._pool.connection() as conn, conn.transaction():
            if published:
                conn.execute(MARK_SENT, (published,))
            if failure is not None:
                conn.execute(MARK_FAILED, (repr(failure[1])[:2000], failure[0]))
                conn.execute(RELEASE, ([r["id"] for r in rows],))
        metrics.OUTBOX_PUBLISHED.labels(service=self._service).inc(len(published))
        self._refresh_backlog()
        if failure is not None:
            raise RuntimeError(f"publishing outbox row {failure[0]} failed") from failure[1]
        return len(published)

    def _claim(self) -> list[Any]:
        with self._pool.connection() as conn, conn.transaction():
            if not conn.execute(LEADER).fetchone()["leader"] or conn.execute(IN_FLIGHT).fetchone()["busy"]:
                return []
            rows = conn.execute(CLAIM, {"lease": self._lease, "n": self._batch}).fetchall()
        return sorted(rows, key=lambda r: r["id"])

    def _publish(self, rows: list[Any]) -> tuple[list[int], tuple[int, Exception] | None]:
        """Publishes in order with no transaction open; stops at the first row that fails."""
        try:
            self._bus.publish_batch([(r["destination"], Envelope.model_validate(r["payload"])) for r in rows])
            return [r["id"] for r in rows], None
        except Exception:
            published: list[int] = []
            for row in rows:  # find the row that fails, publishing those before it
                try:
                    self._bus.publish(row["destination"], Envelope.model_validate(row["payload"]))
                except Exception as error:  # nothing after a failed row goes out
                    return published, (row["id"], error)
                published.append(row["id"])
            return published, None

    def _refresh_backlog(self) -> None:
        if time.monotonic() - self._backlog_at >= 1.0:
            self.backlog()

    def backlog(self) -> int:
        self._backlog_at = time.monotonic()
        with self._pool.connection() as conn:
            n = int(conn.execute(BACKLOG).fetchone()["n"])
        metrics.OUTBOX_BACKLOG.labels(service=self._service).set(n)
        return n

    def run_forever(self, stop: threading.Event) -> None:
        """Publishes until stop is set, polling every ``poll_seconds`` while rows come (a full
        batch goes again at once); each empty poll doubles the wait up to ``idle_poll_seconds``.
        Backs off exponentially while the bus or the database fails.

        Polling, not LISTEN/NOTIFY: a NOTIFY in every writing transaction takes PostgreSQL's
        global notification lock at commit, so those commits cannot be group-committed, and it
        wakes the relay once per order. Most orders now publish nothing (only events a service
        receives are published), so an idle relay slows down: at most ``idle_poll_seconds`` more
        before a first event after a quiet spell goes out (issue #13)."""
        wait = self._poll

        def pause(count: int) -> None:
            nonlocal wait
            wait = self._poll if count else min(wait * 2, self._idle_poll)
            if count < self._batch:
                stop.wait(wait)

        run_steps(stop, self.step, message="outbox relay step failed", pause=pause,
                  backoff=doubling(self._max_backoff), extra={"service": self._service})

    def _test_hold(self, stage: str, rows: list[Any]) -> None:
        want, _, marker = self._hold.partition(":")
        if want == stage and rows:
            Path(marker).write_text(",".join(str(r["id"]) for r in rows))
            while True:
                time.sleep(1)


def main() -> None:
    """`python -m valerix.kit.outbox SERVICE DATABASE_URL`: a relay alone (the bus from the
    environment), for the crash tests and for operators draining a backlog by hand."""
    import sys

    from valerix.kit import db, logs, process
    from valerix.kit.bus import open_bus

    service, url = sys.argv[1], sys.argv[2]
    logs.configure(f"{service}-relay", os.environ.get("LOG_LEVEL", "INFO"))
    pool = db.make_pool(url, name=f"{service}-relay", max_size=2)
    bus = open_bus()
    try:
        Relay(pool, bus, service, poll_seconds=float(os.environ.get("RELAY_POLL_SECONDS", "0.05"))) \
            .run_forever(process.stop_event())
    finally:
        bus.close()
        pool.close()


if __name__ == "__main__":
    main()
