"""Orders saved and settled in shared transactions (the order API's group commits): each order
whole, only pending orders moved, and a refused Idempotency-Key fails only its own request."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from valerix.kit.uow import DuplicateKey, UnitOfWork
from valerix.order import db, service
from valerix.order.domain import Order, OrderLine

from support.db import outbox_types


def _history(pool, order_id: str) -> list[tuple[str | None, str, str | None]]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT from_status, to_status, reason FROM order_status_history "
                            "WHERE order_id = %s ORDER BY id", (order_id,)).fetchall()
    return [(r["from_status"], r["to_status"], r["reason"]) for r in rows]


def _row(pool, order_id: str) -> dict:
    with pool.connection() as conn:
        return conn.execute("SELECT status, reason, reservation_id, verify_attempts, "
                            "(SELECT array_agg(product_id || 'x' || quantity ORDER BY line_no) FROM order_items "
                            " WHERE order_id = o.id) AS items FROM orders o WHERE id = %s", (order_id,)).fetchone()


def test_a_batch_of_new_orders_is_saved_whole_with_lines_and_first_history(order_pool):
    one = Order.place([OrderLine("SKU-002", 1), OrderLine("SKU-001", 2)], customer_id="c-1")
    two = Order.place([OrderLine("SKU-004", 3)])
    with UnitOfWork(order_pool) as uow:
        db.insert_orders(uow.conn, [one, two])
        uow.commit()
    assert _row(order_pool, one.id)["items"] == ["SKU-002x1", "SKU-001x2"]
    assert _row(order_pool, two.id)["items"] == ["SKU-004x3"]
    assert _history(order_pool, one.id) == _history(order_pool, two.id) == [(None, "pending", None)]


def test_settling_a_batch_moves_only_the_orders_still_pending(order_pool):
    confirmed, failed, waiting, taken = (Order.place([OrderLine("SKU-001", 1)]) for _ in range(4))
    with UnitOfWork(order_pool) as uow:
        db.insert_orders(uow.conn, [confirmed, failed, waiting, taken])
        uow.commit()
    for order in (confirmed, failed, waiting, taken):
        order.changes.clear()   # saved (the service clears them once its commit is done)
    with UnitOfWork(order_pool) as uow:   # the sweeper got to one of them first
        moved_first = db.lock_order(uow.conn, taken.id)
        assert moved_first is not None
        moved_first.fail("verification_timeout")
        db.save_status(uow.conn, moved_first)
        uow.commit()
    confirmed.confirm("RES-1")
    failed.fail("insufficient_stock")
    waiting.await_verification("grpc_timeout")
    taken.confirm("RES-LATE")
    with UnitOfWork(order_pool) as uow:
        moved = db.advance_from_pending(uow.conn, [(confirmed, False), (failed, False), (waiting, True),
                                                   (taken, False)])
        uow.commit()
    assert set(moved) == {confirmed.id, failed.id, waiting.id}
    assert _row(order_pool, confirmed.id)["status"] == "confirmed"
    assert _row(order_pool, confirmed.id)["reservation_id"] == "RES-1"
    assert (_row(order_pool, failed.id)["status"], _row(order_pool, failed.id)["reason"]) == \
        ("failed", "insufficient_stock")
    assert _row(order_pool, waiting.id)["verify_attempts"] == 1
    assert _row(order_pool, taken.id)["status"] == "failed"
    assert _history(order_pool, waiting.id) == [(None, "pending", None),
                                                ("pending", "pending_verification", "grpc_timeout")]
    assert _history(order_pool, taken.id) == [(None, "pending", None),
                                              ("pending", "failed", "verification_timeout")]


def test_concurrent_placements_share_commits_and_each_is_answered_alone(order_deps, order_pool):
    """40 requests at once, two of them with the same Idempotency-Key: every order is saved
    and confirmed whole, and the repeated key is refused (in flight) without failing the
    others it may have shared a transaction with."""
    barrier = threading.Barrier(40)

    def place(i: int) -> service.Placed | service.Replayed | Exception:
        key = "same-key" if i in (7, 8) else f"key-{i}"
        barrier.wait()
        try:
            return service.place_order(order_deps, [OrderLine("SKU-005", 1)], key, customer_id="c-batch")
        except (service.RequestInFlight, DuplicateKey) as error:
            return error

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(place, range(40)))
    placed = [r for r in results if isinstance(r, service.Placed)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(placed) == 39 and len(refused) == 1 and isinstance(refused[0], service.RequestInFlight)
    assert all(p.order["status"] == "confirmed" for p in placed)
    for p in placed:
        assert _history(order_pool, p.order["id"]) == [(None, "pending", None), ("pending", "confirmed", None)]
    with order_pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM orders").fetchone()["n"] == 39
        assert conn.execute("SELECT count(*) AS n FROM idempotency_keys").fetchone()["n"] == 39
    assert outbox_types(order_pool).count("OrderCreated") == 39


def test_a_batch_refused_by_a_repeated_key_leaves_each_order_whole_to_save_alone(order_deps, order_pool):
    """What the group commit does when a batch fails: each order is saved again alone, and must
    still carry its first history row (nothing is marked saved before the commit)."""
    first = service._NewOrder(Order.place([OrderLine("SKU-001", 1)]), ("c-1", "k", "hash"))
    second = service._NewOrder(Order.place([OrderLine("SKU-001", 1)]), ("c-1", "k", "hash"))
    with pytest.raises(DuplicateKey):
        service._save_new_orders(order_deps, [first, second])
    service._save_new_orders(order_deps, [first])
    assert _history(order_pool, first.order.id) == [(None, "pending", None)]
    assert _row(order_pool, second.order.id) is None
