"""Inventory use cases: reserve, release, verify, check. Each runs inside the caller's unit of
work (the gRPC call's or the consumer's), which commits it with its events."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
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
    return reserve_many(uow, [(order_id, lock_order(lines))])[0]


def reserve_many(uow: UnitOfWork, requests: Sequence[tuple[str, list[Line]]]) -> list[Outcome]:
    """Reserves each order's lines (valid, in ``lock_order``'s order) all or none, once per
    order id, in one transaction: the batch's products are locked once, in id order, and the
    stock is given out in the batch's order, so each order is decided on exactly the stock
    the orders before it left (as if each had its own transaction, one after the other)."""
    reservation_ids = {order_id: new_reservation_id() for order_id, _ in requests}
    products = sorted({line.product_id for _, lines in requests for line in lines})
    claimed, held = db.claim_and_lock_many(uow.conn, reservation_ids, ReservationStatus.RESERVED, products)
    stock = {product_id: int(row["stock"]) for product_id, row in held.items()}
    decided: dict[str, Outcome] = {}
    takes: list[tuple[str, str, int]] = []
    refusals: list[tuple[str, Rejection, list[Shortage]]] = []
    for order_id, lines in requests:
        if order_id not in claimed or order_id in decided:
            continue
        shortages = [Shortage(line.product_id, line.quantity, stock.get(line.product_id, 0)) for line in lines
                     if stock.get(line.product_id, 0) < line.quantity]
        if shortages:
            rejection = (Rejection.UNKNOWN_PRODUCT if any(line.product_id not in held for line in lines)
                         else Rejection.INSUFFICIENT_STOCK)
            refusals.append((order_id, rejection, shortages))
            decided[order_id] = Outcome(ReservationStatus.REJECTED, None, rejection, tuple(shortages))
            continue
        for line in lines:
            before = stock[line.product_id]
            stock[line.product_id] = before - line.quantity
            takes.append((order_id, line.product_id, line.quantity))
            _raise_reserved(uow, order_id, reservation_ids[order_id], line, before, stock[line.product_id],
                            int(held[line.product_id]["low_stock_threshold"]))
        decided[order_id] = Outcome(ReservationStatus.RESERVED, reservation_ids[order_id],
                                    remaining={line.product_id: stock[line.product_id] for line in lines})
    db.take_and_refuse(uow.conn, takes, [(order_id, rejection, [vars(s) for s in shortages])
                                         for order_id, rejection, shortages in refusals])
    repeats = [order_id for order_id, _ in requests if order_id not in claimed]
    if repeats:
        decided.update({row["order_id"]: _replay(row) for row in db.lock_reservations(uow.conn, repeats)})
    outcomes: list[Outcome] = []
    answered: set[str] = set()
    for order_id, _ in requests:
        # The same order twice in one batch: the second is a repeat of the first.
        outcome = decided[order_id]
        outcomes.append(replace(outcome, replayed=True) if order_id in answered else outcome)
        answered.add(order_id)
    return outcomes


def _raise_reserved(uow: UnitOfWork, order_id: str, reservation_id: str, line: Line, before: int, after: int,
                    threshold: int) -> None:
    uow.add_event(StockReserved(orderId=order_id, productId=line.product_id, quantity=line.quantity,
                                remainingStock=after, reservationId=reservation_id))
    if crossed_low_stock(before, after, threshold):
        uow.add_event(LowStockAlert(productId=line.product_id, currentStock=after, threshold=threshold))


def _replay(row: dict[str, Any]) -> Outcome:
    status = ReservationStatus(row["status"])
    shortages = tuple(Shortage(**s) for s in row["shortages"] or [])
    if status is ReservationStatus.REJECTED:
        # The row was claimed with a reservation id before the stock was checked; a refusal
        # holds nothing, and its first answer carried no id, so neither does a repeat.
        return Outcome(status, None, Rejection(row["reason"]) if row["reason"] else None, shortages, replayed=True)
    return Outcome(status, row["reservation_id"], None, shortages, replayed=True)


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
