"""A connection pool that records what a unit of work asks of it, for unit tests: no database."""

from __future__ import annotations

import contextlib
from typing import Any

from valerix.kit.uow import INSERT_OUTBOX


class FakeConnection:
    """Records what the unit of work asks of its connection; no database."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.outbox: list[str] = []
        self.closed = False

    def pipeline(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def execute(self, query: str, params: dict[str, Any] | None = None) -> None:
        self.statements.append("INSERT OUTBOX" if query == INSERT_OUTBOX else query)
        if query == INSERT_OUTBOX:
            assert params is not None
            assert len({len(column) for column in params.values()}) == 1  # one row per event
            self.outbox += params["event_types"]

    def commit(self) -> None:
        self.statements.append("COMMIT")

    def rollback(self) -> None:
        self.statements.append("ROLLBACK")


class FakePool:
    def __init__(self) -> None:
        self.conn = FakeConnection()

    def getconn(self) -> FakeConnection:
        return self.conn

    def putconn(self, conn: FakeConnection) -> None:
        pass
