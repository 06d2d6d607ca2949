"""Inventory use cases: reserve, release, verify, check. Each runs inside the caller's unit of
work (the gRPC call's or the consumer's), which commits it with its events."""

from __future__ import annotations

import logging
from typing import Any

from valerix.contracts.events import LowStockAlert, OrderVerified, StockReleased, StockReserved
from valerix.inventory import db
from valerix.inventory.domain import (
    Line,
    Outcome,
    Rejection,
    ReservationStatus,
    Shortage,
    crossed_low_stock,
    lock_order,
    new_reservation_id,
    releasable,
)
from valerix.kit.uow import UnitOfWork

log = logging.getLogger(__name__)


def reserve(uow: UnitOfWork, order_id: str, lines: list[Line]) -> Outcome:
    """Reserves every line or none, once per order id; a repeat replays the first outcome."""
    ordered = lock_order(lines)
    reservation_id = new_reservation_id()
    claimed, held = db.claim_and_lock(uow.conn, order_id, reservation_id, ReservationStatus.RESERVED,
                                      [line.product_id for line in ordered])
    if not claimed:
        existing = db.lock_reservation(uow.conn, order_id)
        assert existing is not None
        return _replay(existing)
    shortages = _shortages(ordered, held)
    if shortages:
        return _reject(uow, order_id, shortages, unknown=len(held) < len(ordered))
    remaining = db.take(uow.conn, order_id, [(line.product_id, line.quantity) for line in ordered])
    if len(remaining) != len(ordered):  # the rows are locked and were checked: this would be a bug
        raise RuntimeError(f"reservation of {order_id} took {len(remaining)} of {len(ordered)} lines")
    for line in ordered:
        stock, threshold = remaining[line.product_id], int(held[line.product_id]["low_stock_threshold"])
        uow.add_event(StockReserved(orderId=order_id, productId=line.product_id, quantity=line.quantity,
                                    remainingStock=stock, reservationId=reservation_id))
        if crossed_low_stock(stock + line.quantity, stock, threshold):
            uow.add_event(LowStockAlert(productId=line.product_id, currentStock=stock, threshold=threshold))
    return Outcome(ReservationStatus.RESERVED, reservation_id, remaining=remaining)


def _shortages(lines: list[Line], held: dict[str, dict[str, Any]]) -> list[Shortage]:
    """The lines that do not fit, by the stock read under the lock (an unknown product has 0)."""
    found = {product_id: int(row["stock"]) for product_id, row in held.items()}
    return [Shortage(line.product_id, line.quantity, found.get(line.product_id, 0)) for line in lines
            if line.product_id not in found or found[line.product_id] < line.quantity]


def _reject(uow: UnitOfWork, order_id: str, shortages: list[Shortage], *, unknown: bool) -> Outcome:
    """Nothing was taken: records why."""
    rejection = Rejection.UNKNOWN_PRODUCT if unknown else Rejection.INSUFFICIENT_STOCK
    db.set_reservation_status(uow.conn, order_id, ReservationStatus.REJECTED, rejection,
                              [vars(s) for s in shortages])
    return Outcome(ReservationStatus.REJECTED, None, rejection, tuple(shortages))


def _replay(row: dict[str, Any]) -> Outcome:
    status = ReservationStatus(row["status"])
    shortages = tuple(Shortage(**s) for s in row["shortages"] or [])
    rejection = Rejection(row["reason"]) if status is ReservationStatus.REJECTED and row["reason"] else None
    return Outcome(status, row["reservation_id"], rejection, shortages, replayed=True)


def release(uow: UnitOfWork, order_id: str, reason: str) -> bool:
    """Gives an order's stock back. Releasing an order that never reserved leaves a
    tombstone, so a late ReserveStock for it (its caller long gone) reserves nothing."""
    conn = uow.conn
    if db.claim_reservation(conn, order_id, None, ReservationStatus.RELEASED):
        db.set_reservation_status(conn, order_id, ReservationStatus.RELEASED, reason)
        return False
    row = db.lock_reservation(conn, order_id)
    assert row is not None
    if not releasable(ReservationStatus(row["status"])):
        return False
    for line in db.reservation_lines(conn, order_id):
        new_stock = db.return_stock(conn, line["product_id"], int(line["quantity"]))
        uow.add_event(StockReleased(orderId=order_id, productId=line["product_id"],
                                    quantity=int(line["quantity"]), newStock=new_stock, reason=reason))
    db.set_reservation_status(conn, order_id, ReservationStatus.RELEASED, reason)
    return True


def ship(uow: UnitOfWork, order_id: str) -> bool:
    """Marks a held reservation shipped ("updates on shipment"): its stock stays out of the
    count for good and no later release can give it back. A repeat changes nothing."""
    row = db.lock_reservation(uow.conn, order_id)
    if row is None or ReservationStatus(row["status"]) is not ReservationStatus.RESERVED:
        if row is None or ReservationStatus(row["status"]) is not ReservationStatus.SHIPPED:
            log.error("a shipped order holds no reservation", extra={"status": row and row["status"]})
        return False
    db.set_reservation_status(uow.conn, order_id, ReservationStatus.SHIPPED, "order_shipped")
    return True


def reconcile(uow: UnitOfWork, released: list[str], held: list[str], shipped: list[str]) -> dict[str, int]:
    """The reconciler's inventory half: makes reservations match the order service's final
    states. Released (failed, cancelled) orders give back what they still hold; shipped ones are
    marked shipped; a confirmed or shipped order whose reservation is gone cannot be repaired
    here (its stock may be sold again) and is reported. Returns the drift found, by kind."""
    drift = {"released_held_reservation": 0, "marked_shipped": 0, "confirmed_without_reservation": 0}
    for order_id in released:
        if release(uow, order_id, "reconciler"):
            drift["released_held_reservation"] += 1
    for order_id in [*held, *shipped]:
        row = db.lock_reservation(uow.conn, order_id)
        status = ReservationStatus(row["status"]) if row else None
        if status is ReservationStatus.RESERVED and order_id in shipped:
            ship(uow, order_id)
            drift["marked_shipped"] += 1
        elif status not in (ReservationStatus.RESERVED, ReservationStatus.SHIPPED):
            log.error("a confirmed order holds no reservation", extra={"orderId": order_id, "status": status})
            drift["confirmed_without_reservation"] += 1
    return drift


def verify(uow: UnitOfWork, order_id: str, lines: list[Line]) -> Outcome:
    """The recovery path for an order whose caller timed out: reserve-or-read, then answer."""
    outcome = reserve(uow, order_id, lines)
    uow.add_event(OrderVerified(
        orderId=order_id, outcome="reserved" if outcome.success else "rejected",
        reservationId=outcome.reservation_id if outcome.success else None,
        reason=None if outcome.success else (outcome.rejection or outcome.status).value))
    return outcome


def check_stock(uow: UnitOfWork, product_ids: list[str] | None = None) -> list[dict[str, Any]]:
    return db.list_products(uow.conn, product_ids)
