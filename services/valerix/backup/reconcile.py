"""After a restore: settle what the cut split between order_db and inventory_db, using the
services' own use cases (the code their workers run), before any traffic reaches the copy.

The cut exports order_db's snapshot first and inventory_db's a few milliseconds later, so only
operations running inside that window can disagree, and only in these ways:
  * an order still pending / pending_verification  -> reserve-or-read at inventory, then finalise
    (exactly the verification path; a late reservation is found, a tombstone is honoured)
  * a failed/cancelled order, or no order at all (placed after the order cut), holding stock
    -> release it (what the OrderCancelled handler does)
  * a confirmed order whose stock inventory already gave back (cancelled after the order cut)
    -> cancel it: inventory is the newer witness
  * a shipped order whose reservation is still held (OrderShipped in flight) -> mark it shipped
Like checks.invariants, this is an operator tool that reads both databases; no service does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
from psycopg.rows import dict_row

from valerix.contracts.events import OrderCancelled, OrderVerified
from valerix.inventory import db as inventory_db
from valerix.inventory import service as inventory_service
from valerix.inventory.domain import Line
from valerix.kit import db
from valerix.kit.uow import UnitOfWork
from valerix.order import db as order_db
from valerix.order import service as order_service

REASON = "restore_reconcile"


def _state(order_url: str, inventory_url: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    with psycopg.connect(order_url, row_factory=dict_row) as oc, \
            psycopg.connect(inventory_url, row_factory=dict_row) as ic:
        return order_db.orders_by_status(oc), inventory_db.reservations_by_status(ic)


def reconcile(order_url: str, inventory_url: str) -> dict[str, int]:
    orders_pool = db.make_pool(order_url, name="backup-reconcile-order", max_size=2)
    stock_pool = db.make_pool(inventory_url, name="backup-reconcile-inventory", max_size=2)
    done: Counter[str] = Counter()
    try:
        orders, _ = _state(order_url, inventory_url)
        for order_id in sorted(orders["pending"] | orders["pending_verification"]):
            done[_verify(orders_pool, stock_pool, order_id)] += 1
        orders, reservations = _state(order_url, inventory_url)
        for order_id in sorted(reservations["reserved"] & orders["shipped"]):
            with UnitOfWork(stock_pool) as uow:   # OrderShipped was in flight at the cut
                inventory_service.ship(uow, order_id)
                uow.commit()
            done["shipped"] += 1
        for order_id in sorted(reservations["reserved"] - orders["confirmed"] - orders["shipped"]):
            with UnitOfWork(stock_pool) as uow:
                inventory_service.release(uow, order_id, REASON)
                uow.commit()
            done["released"] += 1
        for order_id in sorted(orders["confirmed"] - reservations["reserved"]):
            with UnitOfWork(orders_pool) as uow:
                order = order_db.lock_order(uow.conn, order_id)
                assert order is not None
                order.cancel(REASON)
                order_db.save_status(uow.conn, order)
                uow.add_event(OrderCancelled(orderId=order.id))
                uow.commit()
            done["cancelled"] += 1
    finally:
        orders_pool.close()
        stock_pool.close()
    return dict(done)


def _verify(orders_pool: Any, stock_pool: Any, order_id: str) -> str:
    with UnitOfWork(orders_pool) as uow:
        view = order_db.get_order(uow.conn, order_id)
    assert view is not None
    lines = [Line(item["productId"], int(item["quantity"])) for item in view["items"]]
    with UnitOfWork(stock_pool) as uow:
        outcome = inventory_service.verify(uow, order_id, lines)
        uow.commit()
    verdict = OrderVerified(orderId=order_id, outcome="reserved" if outcome.success else "rejected",
                            reservationId=outcome.reservation_id if outcome.success else None,
                            reason=None if outcome.success else (outcome.rejection or outcome.status).value)
    with UnitOfWork(orders_pool) as uow:
        order_service.apply_verification(uow, verdict)
        uow.commit()
    return "verified"
