"""Order use cases: place, read, list, cancel, and the recovery steps the worker runs."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from valerix.contracts.events import (
    EventData,
    FinalStatesAsserted,
    Line,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderShipped,
    OrderVerified,
    VerifyOrder,
)
from valerix.kit.group_commit import GroupCommit
from valerix.kit.logs import order_id as log_order_id
from valerix.kit.timing import step
from valerix.kit.uow import DuplicateKey, UnitOfWork
from valerix.order import db, metrics
from valerix.order.domain import IllegalTransition, Order, OrderLine, OrderStatus
from valerix.order.inventory_client import Catalogue, InventoryClient, InventoryUnavailable, Reservation

log = logging.getLogger(__name__)


class UnknownProducts(Exception):
    def __init__(self, product_ids: list[str]) -> None:
        super().__init__(", ".join(product_ids))
        self.product_ids = product_ids


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was first used with another body."""


class OrderNotFound(Exception):
    pass


class TooLate(Exception):
    """The request queued so long that the reservation deadline, counted from its arrival,
    can no longer be met: refused before anything is written, so a retry is safe."""


# Less budget than this left on arrival at the handler: refuse (503) rather than write an
# order that would surely answer 202 after its deadline.
MIN_RESERVE_BUDGET_S = 0.25


class RequestInFlight(Exception):
    """The Idempotency-Key's first request is still being answered (IETF Idempotency-Key
    draft: 409, try again shortly)."""


# How long a key without a stored answer counts as in flight: past it, its first request
# died before answering, and a repeat answers from the order as it is now.
IN_FLIGHT_SECONDS = 10.0


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    inventory: InventoryClient
    catalogue: Catalogue
    database_url: str = ""  # the order database, where the storefront's live feed LISTENs
    # Of the reservation deadline (2 s, counted from the request's arrival), the time kept back
    # to record the outcome and answer: the caller hears within the deadline, not after it.
    settle_allowance: float = 0.2
    # A reservation that timed out on the stream is usually answered a moment later, and that
    # late answer settles the order (order/late_answers.py): its VerifyOrder waits this long in
    # the outbox first, and is withdrawn when the answer comes. 0: sent at once.
    verify_hold: float = 0.0
    # Concurrent requests save their new orders, and then their outcomes, in shared
    # transactions (each order still all or nothing): a commit per batch, not per order.
    saving: GroupCommit[_NewOrder, None] = field(init=False, repr=False)
    settling: GroupCommit[_Settlement, dict[str, Any] | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.saving = GroupCommit("save_order", partial(_save_new_orders, self))
        self.settling = GroupCommit("settle_order", partial(_settle, self))


@dataclass(frozen=True)
class _NewOrder:
    order: Order
    key: tuple[str, str, str] | None   # (customer scope, Idempotency-Key, request fingerprint)


@dataclass(frozen=True)
class _Settlement:
    """A placed order's outcome, to save if the order is still pending: its new state (in
    ``order``) and the event that announces it."""

    order: Order
    event: EventData
    hold: float = 0.0   # seconds the relay holds the event back (see ``verify_event_id``)


@dataclass(frozen=True)
class Placed:
    """The order as placing it left it: its row (id, status, reason, reservation_id, items,
    created_at, updated_at). ``first``: this request placed it, so its answer is the one to
    remember for the Idempotency-Key (otherwise the key's first request has not stored one yet)."""

    order: dict[str, Any]
    first: bool = True


@dataclass(frozen=True)
class Replayed:
    """The answer first given for an Idempotency-Key, exactly as it was stored."""

    status: int
    body: dict[str, Any]
    order_id: str


@dataclass(frozen=True)
class OrderRecord:
    order: dict[str, Any]
    history: list[dict[str, Any]]


def request_fingerprint(lines: list[OrderLine]) -> str:
    canonical = json.dumps([[line.product_id, line.quantity] for line in lines], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def place_order(deps: Deps, lines: list[OrderLine], idempotency_key: str | None = None,
                customer_id: str | None = None, arrived: float | None = None) -> Placed | Replayed:
    # The reservation's 2 s budget counts from the request's arrival (``arrived``, queueing in
    # the server included), so the time spent waiting and saving the order comes out of it, and
    # ``settle_allowance`` of it is kept for recording the outcome: the caller hears back within
    # the deadline.
    started = time.monotonic() if arrived is None else arrived
    if _reserve_budget(deps, started) < MIN_RESERVE_BUDGET_S:
        metrics.REFUSED_LATE.inc()
        raise TooLate()
    order = Order.place(lines, customer_id=customer_id)
    fingerprint = request_fingerprint(lines) if idempotency_key else ""   # only a key needs it
    scope = _key_scope(customer_id)
    if idempotency_key and (replay := _replay(deps, scope, idempotency_key, fingerprint)) is not None:
        return replay
    unknown = deps.catalogue.unknown([line.product_id for line in order.lines])
    if unknown:
        raise UnknownProducts(unknown)
    log_order_id.set(order.id)
    try:
        with step("save"):
            deps.saving.submit(_NewOrder(order, (scope, idempotency_key, fingerprint) if idempotency_key else None))
    except DuplicateKey:
        assert idempotency_key  # order ids are random; only the key can collide
        replay = _replay(deps, scope, idempotency_key, fingerprint)
        assert replay is not None
        return replay
    try:
        return Placed(_reserve(deps, order, started))
    except Exception:
        # The order exists, so the caller must learn where it is, never a 5xx: the sweeper
        # verifies it with inventory and finalises it (a pending order is its to move).
        log.exception("the order is saved but placing it failed afterwards; the sweeper will verify it")
        return Placed(_unsettled_view(order))


def _save_new_orders(deps: Deps, batch: Sequence[_NewOrder]) -> list[None]:
    with deps.uow() as uow:
        db.insert_orders(uow.conn, [new.order for new in batch])
        keys = [(*new.key, new.order.id) for new in batch if new.key]
        if keys:
            db.insert_idempotency_keys(uow.conn, keys)
        for new in batch:
            uow.add_event(OrderCreated(orderId=new.order.id, items=_lines(new.order)))
        uow.commit()
    for new in batch:
        new.order.changes.clear()
    return [None] * len(batch)


def _reserve(deps: Deps, order: Order, started: float) -> dict[str, Any]:
    requested_at = datetime.now(UTC)
    try:
        with step("reserve"):
            reservation = deps.inventory.reserve(order.id, order.lines, timeout=_reserve_budget(deps, started))
    except InventoryUnavailable as error:
        log.warning("inventory did not answer; verifying asynchronously", extra={"reason": error.reason})
        return _await_verification(deps, order, error.reason, requested_at)
    return _confirm_or_fail(deps, order, reservation)


def _reserve_budget(deps: Deps, started: float) -> float:
    """Seconds left for ReserveStock: the deadline from arrival, less what settling needs."""
    return deps.inventory.reserve_deadline - deps.settle_allowance - (time.monotonic() - started)


def _unsettled_view(order: Order) -> dict[str, Any]:
    """The answer for a saved order whose outcome we could not learn or record."""
    now = datetime.now(UTC)
    return {"id": order.id, "status": OrderStatus.PENDING_VERIFICATION.value, "reason": None,
            "reservation_id": None, "created_at": now, "updated_at": now,
            "items": [{"productId": line.product_id, "quantity": line.quantity} for line in order.lines]}


def remember_answer(deps: Deps, idempotency_key: str, status: int, body: dict[str, Any],
                    customer_id: str | None = None) -> None:
    """Stores the answer given to the key's first request; repeats of the key (by the same
    customer) get it back. Failing to store it costs nothing but the exact replay: once the key
    is no longer in flight, a repeat answers from the order as it is."""
    try:
        with deps.uow() as uow:
            db.store_response(uow.conn, _key_scope(customer_id), idempotency_key, status, body)
            uow.commit()
    except Exception:
        log.exception("could not store the answer of an Idempotency-Key")


def _key_scope(customer_id: str | None) -> str:
    """Idempotency-Keys are per customer: another customer's key is just a new key."""
    return customer_id or ""


def _lines(order: Order) -> list[Line]:
    return [Line(productId=line.product_id, quantity=line.quantity) for line in order.lines]


def _confirm_or_fail(deps: Deps, order: Order, reservation: Reservation) -> dict[str, Any]:
    """pending -> confirmed or failed, as inventory answered in time."""
    event: EventData
    if reservation.success:
        order.confirm(reservation.reservation_id)
        event = OrderConfirmed(orderId=order.id, reservationId=reservation.reservation_id)
    else:
        order.fail(reservation.outcome)
        shortage = reservation.shortages[0] if reservation.shortages else {}
        event = OrderFailed(orderId=order.id, reason=reservation.outcome,
                            requestedQuantity=shortage.get("requested"), availableStock=shortage.get("available"))
    with step("settle"):
        return deps.settling.submit(_Settlement(order, event)) or _current(deps, order.id)


def _await_verification(deps: Deps, order: Order, reason: str, requested_at: datetime) -> dict[str, Any]:
    """pending -> pending_verification, asking inventory through the bus (VerifyOrder), held
    back ``verify_hold`` for a timed-out reservation's late answer."""
    order.await_verification(reason)
    event = VerifyOrder(orderId=order.id, items=_lines(order), originalRequestTime=requested_at,
                        reason=reason)  # type: ignore[arg-type]
    hold = deps.verify_hold if reason == "grpc_timeout" else 0.0
    with step("settle"):
        return deps.settling.submit(_Settlement(order, event, hold)) or _current(deps, order.id)


_VERIFY_IDS = uuid.UUID("5a0c6f43-7a3e-4d55-9d0e-6f1b2c3d4e5f")


def verify_event_id(order_id: str) -> str:
    """The eventId of the VerifyOrder placing an order sends: derived from the order id, so a
    late answer can withdraw it without looking it up."""
    return str(uuid.uuid5(_VERIFY_IDS, order_id))


def settle_late(deps: Deps, answers: Sequence[tuple[str, Reservation]]) -> None:
    """Settles orders from reservation answers that came after their caller's deadline, as the
    inventory worker's verdict would (a final order stays as it is), and withdraws the
    VerifyOrders still held for them: one transaction for the batch."""
    with deps.uow() as uow:
        for order_id, reservation in sorted(answers, key=lambda answer: answer[0]):  # lock in id order
            apply_verification(uow, OrderVerified(
                orderId=order_id, outcome="reserved" if reservation.success else "rejected",
                reservationId=reservation.reservation_id if reservation.success else None,
                reason=None if reservation.success else reservation.outcome))
        uow.withdraw([verify_event_id(order_id) for order_id, _ in answers])
        uow.commit()
    metrics.LATE_ANSWERS.inc(len(answers))


def _settle(deps: Deps, batch: Sequence[_Settlement]) -> list[dict[str, Any] | None]:
    """Saves each placed order's new state if it is still pending (one conditional UPDATE, so
    each row is built from what we just wrote), with its event. None for an order something
    else moved first: its event is dropped, and the caller reads the order as it is."""
    with deps.uow() as uow:
        moved = db.advance_from_pending(uow.conn, [(s.order, s.order.status is OrderStatus.PENDING_VERIFICATION)
                                                   for s in batch])
        for settlement in batch:
            if settlement.order.id in moved and settlement.hold:
                uow.add_event(settlement.event, event_id=verify_event_id(settlement.order.id),
                              hold_seconds=settlement.hold)
            elif settlement.order.id in moved:
                uow.add_event(settlement.event)
        uow.commit()
    views: list[dict[str, Any] | None] = []
    for settlement in batch:
        placed, row = settlement.order, moved.get(settlement.order.id)
        if row is None:
            views.append(None)
            continue
        placed.changes.clear()
        metrics.ORDERS.labels(status=placed.status.value).inc()
        views.append({"id": placed.id, "status": placed.status.value, "reason": placed.reason,
                      "reservation_id": placed.reservation_id, **row,
                      "items": [{"productId": line.product_id, "quantity": line.quantity} for line in placed.lines]})
    return views


def _current(deps: Deps, order_id: str) -> dict[str, Any]:
    with deps.uow() as uow:
        row = db.get_order(uow.conn, order_id)
    assert row is not None
    return row


def _replay(deps: Deps, scope: str, key: str, fingerprint: str) -> Placed | Replayed | None:
    with deps.uow() as uow:
        found = db.find_idempotency(uow.conn, scope, key, IN_FLIGHT_SECONDS)
        if found is None:
            return None
        if found["request_hash"] != fingerprint:
            raise IdempotencyMismatch(key)
        if found["response_status"] is None and found["in_flight"]:
            raise RequestInFlight(key)
        # A definitive answer replays exactly; a pending one (202) shows where the order is now.
        if found["response_status"] not in (None, 202):
            return Replayed(found["response_status"], found["response_body"], found["order_id"])
        row = db.get_order(uow.conn, found["order_id"])
    assert row is not None
    return Placed(row, first=False)


def get_order(deps: Deps, order_id: str, owner: str | None = None) -> OrderRecord:
    """``owner``: the customer the caller is limited to (None: an operator). Another
    customer's order is reported missing, so nothing reveals that it exists."""
    with deps.uow() as uow:
        row = db.get_order(uow.conn, order_id)
        if row is None or (owner is not None and row["customer_id"] != owner):
            raise OrderNotFound(order_id)
        return OrderRecord(row, db.history(uow.conn, order_id))


def list_orders(deps: Deps, status: OrderStatus | None, limit: int,
                after: tuple[datetime, str] | None, owner: str | None = None) -> list[dict[str, Any]]:
    with deps.uow() as uow:
        return db.list_orders(uow.conn, status, limit, after, owner)


def cancel_order(deps: Deps, order_id: str, owner: str | None = None) -> OrderRecord:
    """confirmed -> cancelled; the stock comes back now if inventory answers, and through
    the OrderCancelled event (which inventory's worker also handles) if it does not."""
    with deps.uow() as uow:
        order = db.lock_order(uow.conn, order_id)
        if order is None or not order.visible_to(owner):
            raise OrderNotFound(order_id)
        order.cancel()
        db.save_status(uow.conn, order)
        uow.add_event(OrderCancelled(orderId=order.id))
        record = _record(uow, order_id)  # read before the commit: nothing after it may fail the answer
        uow.commit()
    metrics.ORDERS.labels(status=OrderStatus.CANCELLED.value).inc()
    try:
        deps.inventory.release(order_id, "order_cancelled")
    except InventoryUnavailable as error:
        log.warning("release deferred to the OrderCancelled event", extra={"reason": error.reason})
    except Exception:
        log.exception("release deferred to the OrderCancelled event")
    return record


def _record(uow: UnitOfWork, order_id: str) -> OrderRecord:
    row = db.get_order(uow.conn, order_id)
    assert row is not None
    return OrderRecord(row, db.history(uow.conn, order_id))


def ship_order(deps: Deps, order_id: str) -> OrderRecord:
    """confirmed -> shipped (operators only; the API checks the role). Shipping a shipped
    order again answers the same; inventory marks the reservation shipped when it hears
    OrderShipped. The row lock makes a racing cancel and ship take turns: one of them wins."""
    with deps.uow() as uow:
        order = db.lock_order(uow.conn, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        shipping = order.status is not OrderStatus.SHIPPED
        if shipping:
            order.ship()
            db.save_status(uow.conn, order)
            uow.add_event(OrderShipped(orderId=order.id, reservationId=order.reservation_id or "",
                                       items=_lines(order)))
        record = _record(uow, order_id)  # read before the commit: nothing after it may fail the answer
        uow.commit()
    if shipping:
        metrics.ORDERS.labels(status=OrderStatus.SHIPPED.value).inc()
    return record


# --- recovery (run by the worker) -------------------------------------------------------

def apply_verification(uow: UnitOfWork, verified: OrderVerified) -> None:
    """Finalises an order from inventory's verdict; a verdict for a final order changes nothing."""
    log_order_id.set(verified.orderId)
    order = db.lock_order(uow.conn, verified.orderId)
    if order is None:
        log.error("verification for an unknown order")
        return
    if order.status.is_final:
        return
    if verified.outcome == "reserved" and verified.reservationId:
        order.confirm(verified.reservationId)
        uow.add_event(OrderConfirmed(orderId=order.id, reservationId=verified.reservationId))
    else:
        order.fail(verified.reason or "rejected")
        uow.add_event(OrderFailed(orderId=order.id, reason=verified.reason or "rejected"))
    db.save_status(uow.conn, order)
    metrics.ORDERS.labels(status=order.status.value).inc()


@dataclass(frozen=True)
class ReconcilePolicy:
    after: float = 300.0   # seconds an order is final before its state is asserted to inventory
    batch: int = 500


def assert_final_states(uow: UnitOfWork, policy: ReconcilePolicy) -> int:
    """The reconciler's order half: tells inventory, once per final state, what it must hold
    (FinalStatesAsserted); inventory repairs any drift (a release or shipment its own event
    never achieved) and counts it. Returns how many orders were asserted."""
    rows = db.unasserted_final(uow.conn, policy.after, policy.batch)
    if not rows:
        return 0
    by_status: dict[str, list[str]] = {}
    for row in rows:
        by_status.setdefault(row["status"], []).append(row["id"])
    uow.add_event(FinalStatesAsserted(
        released=by_status.get("failed", []) + by_status.get("cancelled", []),
        held=by_status.get("confirmed", []), shipped=by_status.get("shipped", [])))
    db.mark_asserted(uow.conn, [row["id"] for row in rows])
    metrics.ASSERTED.inc(len(rows))
    return len(rows)


@dataclass(frozen=True)
class SweepPolicy:
    resend_after: float = 10.0     # seconds without news before asking inventory again
    fail_after: float = 120.0      # seconds after creation when we give up and fail the order
    batch: int = 200


def sweep(uow: UnitOfWork, policy: SweepPolicy, now: datetime | None = None) -> dict[str, int]:
    """Re-sends verification for orders stuck past a bound, and fails (releasing anything
    held, through OrderFailed) those stuck past a longer one. Every order ends final."""
    now = now or datetime.now(UTC)
    actions = {"resent": 0, "failed": 0}
    for row in db.unfinished(uow.conn, policy.resend_after, policy.batch):
        order = db.lock_order(uow.conn, row["id"])
        assert order is not None
        age = (now - row["created_at"]).total_seconds()
        try:
            if age >= policy.fail_after:
                order.fail("verification_timeout")
                uow.add_event(OrderFailed(orderId=order.id, reason="verification_timeout"))
                db.save_status(uow.conn, order)
                metrics.ORDERS.labels(status="failed").inc()
                actions["failed"] += 1
                continue
            if order.status is OrderStatus.PENDING:
                order.await_verification("sweeper_retry")
                db.save_status(uow.conn, order, verify_sent=True)
            else:
                db.mark_verify_resent(uow.conn, order.id)
            uow.add_event(VerifyOrder(orderId=order.id, items=_lines(order),
                                      originalRequestTime=row["created_at"], reason="sweeper_retry"))
            actions["resent"] += 1
        except IllegalTransition:
            log.exception("sweeper met an order it cannot move", extra={"orderId": order.id})
    for action, count in actions.items():
        if count:
            metrics.SWEEPER_ACTIONS.labels(action=action).inc(count)
    return actions
