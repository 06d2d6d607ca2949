"""Unit of work: one transaction per use case; events raised inside it go to the outbox
in the same transaction, so nothing is published that did not commit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from valerix.contracts.events import Envelope, EventData

Conn = psycopg.Connection[dict[str, Any]]

INSERT_OUTBOX = """
INSERT INTO outbox (event_id, destination, event_type, payload)
VALUES (%(event_id)s, %(destination)s, %(event_type)s, %(payload)s)
"""


class DuplicateKey(Exception):
    """A unique constraint refused a write of this unit of work (psycopg's UniqueViolation,
    surfacing as a kit error so the service layer needs no database types)."""


class Savepoint:
    """One ``SAVEPOINT`` of a unit of work and the number of events raised before it."""

    def __init__(self, uow: UnitOfWork, name: str) -> None:
        self._uow, self.name, self.done = uow, name, False
        self._events_before = len(uow._events)
        uow.conn.execute(sql.SQL("SAVEPOINT {}").format(sql.Identifier(name)))

    def rollback(self) -> None:
        self._uow.conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(self.name)))
        del self._uow._events[self._events_before:]
        self.done = True

    def release(self) -> None:
        self._uow.conn.execute(sql.SQL("RELEASE SAVEPOINT {}").format(sql.Identifier(self.name)))
        self.done = True


class UnitOfWork:
    def __init__(self, pool: ConnectionPool[Conn]) -> None:
        self._pool = pool
        self._events: list[tuple[str, Envelope]] = []
        self._conn: Conn | None = None
        self._committed = False
        self._savepoints: list[Savepoint] = []

    @property
    def conn(self) -> Conn:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._conn

    def __enter__(self) -> UnitOfWork:
        self._conn = self._pool.getconn()
        # Pipeline mode: statements whose results nobody reads (inserts, NOTIFY, COMMIT) are sent
        # without waiting for each answer, so a unit of work costs a few round trips, not one each.
        self._pipeline = self._conn.pipeline()
        self._pipeline.__enter__()
        self._events, self._committed, self._savepoints = [], False, []
        return self

    def add_event(self, data: EventData) -> Envelope:
        envelope = Envelope.wrap(data)
        self._events.append((data.destination, envelope))
        return envelope

    @contextmanager
    def savepoint(self) -> Iterator[Savepoint]:
        """A savepoint the block may roll back (``savepoint.rollback()``): the writes *and* the
        events raised since it began are discarded together, so a rolled-back attempt never
        leaves a phantom event in the outbox. An exception escaping the block rolls back too."""
        savepoint = Savepoint(self, f"uow_{len(self._savepoints)}")
        self._savepoints.append(savepoint)
        try:
            yield savepoint
        except BaseException:
            if not savepoint.done:
                savepoint.rollback()
            raise
        finally:
            self._savepoints.pop()
        if not savepoint.done:
            savepoint.release()

    def commit(self) -> None:
        conn = self.conn
        if self._events:
            with conn.cursor() as cur:
                cur.executemany(INSERT_OUTBOX, [
                    {"event_id": env.eventId, "destination": dest, "event_type": env.eventType,
                     "payload": json.dumps(env.model_dump(mode="json"))}
                    for dest, env in self._events
                ])
        conn.commit()
        self._committed = True
        self._events = []

    def rollback(self) -> None:
        self.conn.rollback()
        self._events = []

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn, self._conn = self.conn, None
        raised: psycopg.Error | None = None
        try:
            try:
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
