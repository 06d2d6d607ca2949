"""The unit of work: its events go to the outbox in one statement with the commit, or nowhere."""

from __future__ import annotations

import pytest

from valerix.contracts.events import LowStockAlert, StockReserved
from valerix.kit.uow import UnitOfWork

from support.fake_pool import FakePool


def reserved(product: str) -> StockReserved:
    return StockReserved(orderId="ORD-1", productId=product, quantity=1, remainingStock=1, reservationId="RES-1")


def test_every_event_goes_to_the_outbox_in_one_statement_before_the_commit():
    pool = FakePool()
    with UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        uow.add_event(reserved("SKU-A"))
        uow.add_event(LowStockAlert(productId="SKU-A", currentStock=1, threshold=5))
        uow.commit()
    assert pool.conn.outbox == ["StockReserved", "LowStockAlert"]
    assert pool.conn.statements == ["INSERT OUTBOX", "COMMIT"]


def test_a_unit_without_events_writes_no_outbox_row():
    pool = FakePool()
    with UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        uow.commit()
    assert pool.conn.statements == ["COMMIT"]


def test_an_exception_rolls_back_and_drops_the_events():
    pool = FakePool()
    with pytest.raises(LookupError), UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        uow.add_event(reserved("SKU-A"))
        raise LookupError
    assert pool.conn.outbox == []
    assert pool.conn.statements == ["ROLLBACK"]
