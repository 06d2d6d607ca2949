"""Unit of work: one transaction per use case; events raised inside it go to the outbox
in the same transaction, so nothing is published that did not commit."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from valerix.contracts.events import Envelope, EventData

Conn = psycopg.Connection[dict[str, Any]]

# Every event of the unit of work in one statement (arrays, not a statement per event).
INSERT_OUTBOX = """
INSERT INTO outbox (event_id, destination, event_type, payload, publish_after)
SELECT e, d, t, p, now() + make_interval(secs => h)
FROM unnest(%(event_ids)s::uuid[], %(destinations)s::text[], %(event_types)s::text[], %(payloads)s::jsonb[],
            %(holds)s::float8[]) AS events(e, d, t, p, h)
"""
# A held event the relay has not taken yet is withdrawn; one already on its way goes out anyway.
WITHDRAW_OUTBOX = "DELETE FROM outbox WHERE event_id = ANY(%s::uuid[]) AND sent_at IS NULL AND leased_until IS NULL"


# Which event types reach the outbox: None publishes every one; a set publishes only those.
# Set once per process at start-up (``publish_only``), like logging; a unit of work raises its
# events either way, so the use cases do not know who listens.
_published: frozenset[str] | None = None


def publish_only(event_types: frozenset[str] | None) -> None:
    """Publishes only ``event_types`` from now on in this process (None: every event)."""
    global _published
    _published = event_types


def publishes(event_type: str) -> bool:
    return _published is None or event_type in _published


class DuplicateKey(Exception):
    """A unique constraint refused a write of this unit of work (psycopg's UniqueViolation,
    surfacing as a kit error so the service layer needs no database types)."""


class UnitOfWork:
    def __init__(self, pool: ConnectionPool[Conn]) -> None:
        self._pool = pool
        self._events: list[tuple[str, Envelope, float | None]] = []
        self._conn: Conn | None = None
        self._committed = False

    @property
    def conn(self) -> Conn:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._conn

    def __enter__(self) -> UnitOfWork:
        # Plain mode, a round trip per statement: since concurrent requests share transactions
        # (group commit), a unit of work is a few statements for many orders, and psycopg's
        # pipeline mode cost more client CPU than the round trips it saved (BENCHMARKS.md, tenth round).
        self._conn = self._pool.getconn()
        self._events, self._committed = [], False
        return self

    def add_event(self, data: EventData, *, event_id: str | None = None,
                  hold_seconds: float | None = None) -> Envelope | None:
        """Queues the event for the outbox, written with the commit; None when this process
        does not publish its type (see ``publish_only``). ``hold_seconds``: the relay publishes
        it no sooner than that after the commit, so ``withdraw`` can still take it back."""
        if not publishes(data.event_type):
            return None
        envelope = Envelope.wrap(data, event_id)
        self._events.append((data.destination, envelope, hold_seconds))
        return envelope

    def withdraw(self, event_ids: list[str]) -> None:
        """Deletes held events the relay has not taken yet (with this unit of work's commit)."""
        if event_ids:
            self.conn.execute(WITHDRAW_OUTBOX, (event_ids,))

    def commit(self) -> None:
        conn = self.conn
        if self._events:
            conn.execute(INSERT_OUTBOX, {
                "event_ids": [env.eventId for _, env, _ in self._events],
                "destinations": [dest for dest, _, _ in self._events],
                "event_types": [env.eventType for _, env, _ in self._events],
                "payloads": [env.model_dump_json() for _, env, _ in self._events],
                "holds": [hold for _, _, hold in self._events]})
        conn.commit()
        self._committed = True
        self._events = []

    def rollback(self) -> None:
        self.conn.rollback()
        self._events = []

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn, self._conn = self.conn, None
        try:
            if not self._committed and not conn.closed:
                conn.rollback()
        finally:
            self._pool.putconn(conn)
        if isinstance(exc, psycopg.errors.UniqueViolation):
            raise DuplicateKey(str(exc)) from exc
