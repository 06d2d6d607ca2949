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
that began after another committed) always go out in that order.
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
from valerix.kit.bus.listen import ANY, Listener
from valerix.kit.bus.port import Bus
from valerix.kit.loops import doubling, run_steps

log = logging.getLogger(__name__)

CHANNEL = "outbox"
# Several worker replicas may run; one relay at a time keeps the order.
LEADER = "SELECT pg_try_advisory_xact_lock(hashtext('valerix.outbox.relay')) AS leader"
READY = """
SELECT id, event_id, destination, payload, created_at FROM outbox
WHERE sent_at IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY id LIMIT %s
"""
MARK_SENT = "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY(%s)"
MARK_FAILED = "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s"
BACKLOG = "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"

# Test hook for the crash test: "<stage>:<file>" makes the relay write <file> and stop at
# <stage> ("selected" or "published") until it is killed.
HOLD_ENV = "VALERIX_RELAY_TEST_HOLD"


class Relay:
    def __init__(self, pool: ConnectionPool[Any], bus: Bus, service: str, *, batch_size: int = 100,
                 poll_seconds: float = 1.0, max_backoff_seconds: float = 30.0) -> None:
        self._pool = pool
        self._bus = bus
        self._service = service
        self._batch = batch_size
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._hold = os.environ.get(HOLD_ENV, "")
        self._backlog_at = float("-inf")

    def step(self) -> int:
        """Publishes one batch; returns how many rows were published (0 when not the leader)."""
        published: list[int] = []
        with self._pool.connection() as conn, conn.transaction():
            if not conn.execute(LEADER).fetchone()["leader"]:
                return 0
            rows = conn.execute(READY, (self._batch,)).fetchall()
            self._test_hold("selected", rows)
            failure: tuple[int, Exception] | None = None
            try:
                self._bus.publish_batch([(r["destination"], Envelope.model_validate(r["payload"])) for r in rows])
                published = [r["id"] for r in rows]
            except Exception:
                # Find the row that fails, publishing those before it (the order is kept).
                for row in rows:
                    try:
                        self._bus.publish(row["destination"], Envelope.model_validate(row["payload"]))
                    except Exception as error:  # nothing after a failed row goes out
                        failure = (row["id"], error)
                        break
                    published.append(row["id"])
            now = datetime.now(UTC)
            for row in rows[:len(published)]:
                metrics.OUTBOX_PUBLISH_LAG.labels(service=self._service).observe(
                    max((now - row["created_at"]).total_seconds(), 0.0))
            self._test_hold("published", rows)
            if published:
                conn.execute(MARK_SENT, (published,))
            if failure is not None:
                conn.execute(MARK_FAILED, (repr(failure[1])[:2000], failure[0]))
        metrics.OUTBOX_PUBLISHED.labels(service=self._service).inc(len(published))
        if time.monotonic() - self._backlog_at >= 1.0 or not published:
            self.backlog()
        if failure is not None:
            raise RuntimeError(f"publishing outbox row {failure[0]} failed") from failure[1]
        return len(published)

    def backlog(self) -> int:
        self._backlog_at = time.monotonic()
        with self._pool.connection() as conn:
            n = int(conn.execute(BACKLOG).fetchone()["n"])
        metrics.OUTBOX_BACKLOG.labels(service=self._service).set(n)
        return n

    def run_forever(self, stop: threading.Event) -> None:
        """Publishes until stop is set: woken by NOTIFY outbox, polling as the fallback,
        backing off exponentially while the bus or the database fails."""
        conninfo = self._pool.conninfo
        listener = Listener(conninfo if isinstance(conninfo, str) else conninfo(), CHANNEL).start()
        def step() -> tuple[int, int]:
            return listener.mark(ANY), self.step()

        def pause(result: tuple[int, int]) -> None:
            seen, count = result
            if count < self._batch:
                listener.wait(ANY, seen, self._poll, stop)

        try:
            run_steps(stop, step, message="outbox relay step failed", pause=pause,
                      backoff=doubling(self._max_backoff), extra={"service": self._service})
        finally:
            listener.close()

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
        Relay(pool, bus, service, poll_seconds=float(os.environ.get("RELAY_POLL_SECONDS", "1"))) \
            .run_forever(process.stop_event())
    finally:
        bus.close()
        pool.close()


if __name__ == "__main__":
    main()
