"""The recovery use cases the order worker runs: verdicts and the sweeper, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from valerix.contracts.events import OrderVerified
from valerix.kit.uow import UnitOfWork
from valerix.order import db, service
from valerix.order.domain import Order, OrderLine
from valerix.order.service import SweepPolicy

from support.db import outbox_types


def insert(pool, status: str = "pending") -> str:
    order = Order.place([OrderLine("SKU-001", 1)])
    with UnitOfWork(pool) as uow:
        db.insert_order(uow.conn, order)
        if status == "pending_verification":
            order.await_verification("grpc_timeout")
            db.save_status(uow.conn, order, verify_sent=True)
        uow.commit()
    return order.id


def status_of(pool, order_id: str) -> dict:
    with pool.connection() as conn:
        return conn.execute("SELECT status, reason, reservation_id, verify_attempts FROM orders WHERE id = %s",
                            (order_id,)).fetchone()


def age(pool, order_id: str, seconds: float) -> None:
    with pool.connection() as conn:
        conn.execute("UPDATE orders SET created_at = created_at - make_interval(secs => %s), "
                     "updated_at = updated_at - make_interval(secs => %s), "
                     "last_verify_at = last_verify_at - make_interval(secs => %s) WHERE id = %s",
                     (seconds, seconds, seconds, order_id))


def verdict(pool, order_id: str, outcome: str, reservation_id: str | None = None) -> None:
    with UnitOfWork(pool) as uow:
        service.apply_verification(uow, OrderVerified(orderId=order_id, outcome=outcome, reservationId=reservation_id,
                                                      reason=None if outcome == "reserved" else "insufficient_stock"))
        uow.commit()


@pytest.mark.parametrize("outcome, final", [("reserved", "confirmed"), ("rejected", "failed")])
def test_a_verdict_finalises_a_waiting_order(order_pool, outcome, final):
    order_id = insert(order_pool, "pending_verification")
    verdict(order_pool, order_id, outcome, "RES-1" if outcome == "reserved" else None)
    assert status_of(order_pool, order_id)["status"] == final
    assert outbox_types(order_pool)[-1] == ("OrderConfirmed" if final == "confirmed" else "OrderFailed")


def test_a_late_verdict_never_changes_a_final_order(order_pool):
    order_id = insert(order_pool, "pending_verification")
    verdict(order_pool, order_id, "rejected")
    verdict(order_pool, order_id, "reserved", "RES-LATE")
    assert status_of(order_pool, order_id)["status"] == "failed"


def test_the_sweeper_resends_verification_then_fails_and_releases(order_pool):
    orphan = insert(order_pool, "pending")                      # the API died before finishing
    waiting = insert(order_pool, "pending_verification")
    fresh = insert(order_pool, "pending_verification")
    age(order_pool, orphan, 20)
    age(order_pool, waiting, 20)
    policy = SweepPolicy(resend_after=10, fail_after=120)
    with UnitOfWork(order_pool) as uow:
        assert service.sweep(uow, policy) == {"resent": 2, "failed": 0}
        uow.commit()
    assert status_of(order_pool, orphan)["status"] == "pending_verification"
    assert status_of(order_pool, waiting)["verify_attempts"] == 2
    assert status_of(order_pool, fresh)["verify_attempts"] == 1
    assert outbox_types(order_pool).count("VerifyOrder") == 2
    age(order_pool, waiting, 200)
    with UnitOfWork(order_pool) as uow:
        actions = service.sweep(uow, policy, now=datetime.now(UTC) + timedelta(seconds=1))
        uow.commit()
    assert actions["failed"] == 1
    assert status_of(order_pool, waiting) | {} == {"status": "failed", "reason": "verification_timeout",
                                                   "reservation_id": None, "verify_attempts": 2}
    assert outbox_types(order_pool)[-1] == "OrderFailed"   # inventory releases anything held on it
