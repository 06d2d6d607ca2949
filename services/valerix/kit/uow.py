"""Unit of work: one transaction per use case; events raised inside it go to the outbox
in the same transaction, so nothing is published that did not commit."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from valerix.contracts.events import Envelope, EventData

Row = dict[str, Any]
Conn = psycopg.Connection[Row]

# The unit of work's events as outbox rows, from the arrays ``outbox_params`` names: every event
# in one statement, not a statement per event.
OUTBOX_ROWS = ("SELECT * FROM unnest(%(event_ids)s::uuid[], %(destinations)s::text[], %(event_types)s::text[], "
               "%(payloads)s::jsonb[]) AS e(event_id, destination, event_type, payload)")
OUTBOX_COLUMNS = "outbox (event_id, destination, event_type, payload)"
INSERT_OUTBOX = f"INSERT INTO {OUTBOX_COLUMNS} {OUTBOX_ROWS}"


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
        self._events: list[tuple[str, Envelope]] = []
        self._conn: Conn | None = None
        self._pipeline: AbstractContextManager[Any] | None = None
        self._committed = False

    @property
    def conn(self) -> Conn:
        """The unit's connection, in a transaction in pipeline mode: statements whose results
        nobody reads (inserts, COMMIT) are sent without waiting for each answer, so a unit of
        work costs a few round trips, not one each."""
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        if self._pipeline is None:
            self._pipeline = self._conn.pipeline()
            self._pipeline.__enter__()
        return self._conn

    def __enter__(self) -> UnitOfWork:
        self._conn = self._pool.getconn()
        self._pipeline = None
        self._events, self._committed = [], False
        return self

    def add_event(self, data: EventData) -> Envelope | None:
        """Queues the event for the outbox, written with the commit; None when this process
        does not publish its type (see ``publish_only``)."""
        if not publishes(data.event_type):
            return None
        envelope = Envelope.wrap(data)
        self._events.append((data.destination, envelope))
        return envelope

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def outbox_params(self) -> dict[str, list[str]]:
        """The unit's events as the arrays ``OUTBOX_ROWS`` reads."""
        return {"event_ids": [env.eventId for _, env in self._events],
                "destinations": [dest for dest, _ in self._events],
                "event_types": [env.eventType for _, env in self._events],
                "payloads": [env.model_dump_json() for _, env in self._events]}

    def commit(self) -> None:
        conn = self.conn
        if self._events:
            conn.execute(INSERT_OUTBOX, self.outbox_params())
        conn.commit()
        self._committed = True
        self._events = []

    def commit_as_one(self, statement: str, params: dict[str, Any]) -> list[Row]:
        """Does the whole unit as ``statement``, committed on its own (autocommit): one round
        trip, and no BEGIN, COMMIT or pipeline to drive. A single statement is atomic, so this is
        the same all-or-nothing as ``commit``. The statement writes the unit's events itself when
        ``has_events`` (an outbox CTE over ``OUTBOX_ROWS``; their arrays are added to ``params``).
        Nothing else may have run in this unit. Returns the statement's rows."""
        if self._conn is None or self._pipeline is not None:
            raise RuntimeError("commit_as_one is the whole unit of work: nothing may run before it")
        conn = self._conn
        conn.autocommit = True
        try:
            cursor = conn.execute(statement, {**params, **self.outbox_params()} if self._events else params)
            rows = cursor.fetchall() if cursor.description is not None else []
        finally:
            # A broken connection cannot change mode; the pool discards it when it comes back.
            if conn.info.transaction_status is TransactionStatus.IDLE:
                conn.autocommit = False
        self._committed = True
        self._events = []
        return rows

    def rollback(self) -> None:
        self.conn.rollback()
        self._events = []

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("unit of work left twice")
        raised: psycopg.Error | None = None
        try:
            try:
                if self._pipeline is not None:
                    self._pipeline.__exit__(exc_type, exc, tb)
            except psycopg.Error as error:
                if exc is None:
                    raised = error
            if raised is None and not self._committed and not conn.closed:
                conn.rollback()
        finally:
            self._pool.putconn(conn)
        failure = exc or raised
        if isinstance(failure, psycopg.errors.UniqueViolation):
            raise DuplicateKey(str(failure)) from failure
        if raised is not None:
            raise raised
