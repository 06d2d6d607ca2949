"""The unit of work's savepoints: events raised inside a rolled-back savepoint go with it."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from valerix.contracts.events import LowStockAlert, StockReserved
from valerix.kit.uow import UnitOfWork


class FakeConnection:
    """Records what the unit of work asks of its connection; no database."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.outbox: list[str] = []
        self.closed = False

    def pipeline(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def execute(self, query: Any, params: Any = None) -> None:
        self.statements.append(query if isinstance(query, str) else query.as_string(None))

    @contextlib.contextmanager
    def cursor(self) -> Any:
        yield self

    def executemany(self, query: str, rows: list[dict[str, Any]]) -> None:
        self.outbox += [row["event_type"] for row in rows]

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


def reserved(product: str) -> StockReserved:
    return StockReserved(orderId="ORD-1", productId=product, quantity=1, remainingStock=1, reservationId="RES-1")


def test_events_of_a_rolled_back_savepoint_are_discarded():
    pool = FakePool()
    with UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        uow.add_event(reserved("SKU-A"))
        with uow.savepoint() as savepoint:
            uow.add_event(reserved("SKU-B"))
            uow.add_event(LowStockAlert(productId="SKU-B", currentStock=1, threshold=5))
            savepoint.rollback()
        uow.commit()
    assert pool.conn.outbox == ["StockReserved"]
    assert pool.conn.statements == ['SAVEPOINT "uow_0"', 'ROLLBACK TO SAVEPOINT "uow_0"', "COMMIT"]


def test_events_of_a_released_savepoint_are_kept():
    pool = FakePool()
    with UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        with uow.savepoint():
            uow.add_event(reserved("SKU-A"))
        uow.commit()
    assert pool.conn.outbox == ["StockReserved"]
    assert 'RELEASE SAVEPOINT "uow_0"' in pool.conn.statements


def test_an_exception_rolls_the_savepoint_back_with_its_events():
    pool = FakePool()
    with UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        with pytest.raises(LookupError), uow.savepoint():
            uow.add_event(reserved("SKU-A"))
            raise LookupError
        with uow.savepoint() as inner:
            uow.add_event(reserved("SKU-B"))
            with uow.savepoint() as nested:
                uow.add_event(reserved("SKU-C"))
                nested.rollback()
            assert inner.name != nested.name
        uow.commit()
    assert pool.conn.outbox == ["StockReserved"]
    assert 'ROLLBACK TO SAVEPOINT "uow_0"' in pool.conn.statements
