"""The order use cases with a fake unit of work and fake adapters (cosmicpython style): the
service layer's decisions, without a database or a network."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from valerix.contracts.events import (
    EventData,
    OrderCancelled,
    OrderConfirmed,
    OrderFailed,
    OrderShipped,
    OrderVerified,
)
from valerix.kit.uow import DuplicateKey
from valerix.order import service
from valerix.order.domain import IllegalTransition, Order, OrderLine, OrderStatus
from valerix.order.inventory_client import InventoryUnavailable, Reservation

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass
class Stored:
    order: Order
    created_at: datetime = NOW
    updated_at: datetime = NOW
    verify_attempts: int = 0


class FakeOrderDb:
    """The functions of valerix.order.db the use cases call, over dicts (the conn is ignored)."""

    def __init__(self) -> None:
        self.orders: dict[str, Stored] = {}
        self.keys: dict[tuple[str, str], dict[str, Any]] = {}   # (customer, key) -> the key's row
        self.in_flight = True  # whether keys without an answer are younger than the in-flight bound

    def _copy(self, order: Order) -> Order:
        return replace(order, changes=[])

    def insert_order(self, conn: object, order: Order) -> None:
        self.orders[order.id] = Stored(self._copy(order))

    def insert_orders(self, conn: object, orders: list[Order]) -> None:
        for order in orders:
            self.insert_order(conn, order)

    def insert_idempotency_keys(self, conn: object, keys: list[tuple[str, str, str, str]]) -> None:
        for customer_id, key, request_hash, order_id in keys:
            if (customer_id, key) in self.keys:
                raise DuplicateKey(key)
            self.keys[customer_id, key] = {"key": key, "request_hash": request_hash, "order_id": order_id,
                                           "response_status": None, "response_body": None}

    def find_idempotency(self, conn: object, customer_id: str, key: str,
                         in_flight_seconds: float) -> dict[str, Any] | None:
        found = self.keys.get((customer_id, key))
        return {**found, "in_flight": self.in_flight} if found else None

    def store_response(self, conn: object, customer_id: str, key: str, status: int, body: dict[str, Any]) -> None:
        if self.keys[customer_id, key]["response_status"] is None:
            self.keys[customer_id, key].update(response_status=status, response_body=body)

    def lock_order(self, conn: object, order_id: str) -> Order | None:
        stored = self.orders.get(order_id)
        return self._copy(stored.order) if stored else None

    def save_status(self, conn: object, order: Order, *, verify_sent: bool = False) -> None:
        stored = self.orders[order.id]
        stored.order, stored.verify_attempts = self._copy(order), stored.verify_attempts + int(verify_sent)

    def advance_from_pending(self, conn: object, changed: list[tuple[Order, bool]]) -> dict[str, dict[str, Any]]:
        moved = {}
        for order, verify_sent in changed:
            if self.orders[order.id].order.status is OrderStatus.PENDING:
                self.save_status(conn, order, verify_sent=verify_sent)
                moved[order.id] = {"created_at": NOW, "updated_at": NOW}
        return moved

    def mark_verify_resent(self, conn: object, order_id: str) -> None:
        self.orders[order_id].verify_attempts += 1

    def get_order(self, conn: object, order_id: str) -> dict[str, Any] | None:
        stored = self.orders.get(order_id)
        if stored is None:
            return None
        o = stored.order
        return {"id": o.id, "status": o.status.value, "reason": o.reason, "reservation_id": o.reservation_id,
                "customer_id": o.customer_id, "items": [{"productId": line.product_id, "quantity": line.quantity} for line in o.lines],
                "created_at": stored.created_at, "updated_at": stored.updated_at}

    def history(self, conn: object, order_id: str) -> list[dict[str, Any]]:
        return []

    def unfinished(self, conn: object, older_than_seconds: float, limit: int) -> list[dict[str, Any]]:
        return [{"id": s.order.id, "status": s.order.status.value, "created_at": s.created_at}
                for s in self.orders.values() if not s.order.status.is_final][:limit]


class FakeUnitOfWork:
    """Collects events; only a commit publishes them (to ``committed``), as the outbox does."""

    def __init__(self, committed: list[EventData]) -> None:
        self.conn = object()
        self._events: list[EventData] = []
        self._committed = committed

    def __enter__(self) -> FakeUnitOfWork:
        self._events = []
        return self

    def __exit__(self, *exc: object) -> None:
        self._events = []

    def add_event(self, data: EventData) -> None:
        self._events.append(data)

    def commit(self) -> None:
        self._committed.extend(self._events)
        self._events = []


@dataclass
class FakeInventory:
    answer: Reservation | InventoryUnavailable = field(
        default_factory=lambda: Reservation(True, "reserved", "RES-1"))
    released: list[str] = field(default_factory=list)
    release_fails: bool = False
    reserve_deadline: float = 2.0

    def reserve(self, order_id: str, lines: object, timeout: float) -> Reservation:
        if isinstance(self.answer, InventoryUnavailable):
            raise self.answer
        return self.answer

    def release(self, order_id: str, reason: str) -> bool:
        if self.release_fails:
            raise InventoryUnavailable("connection_error", "down")
        self.released.append(order_id)
        return True


class FakeCatalogue:
    def __init__(self, unknown: list[str] | None = None) -> None:
        self._unknown = unknown or []

    def unknown(self, product_ids: list[str]) -> list[str]:
        return [p for p in product_ids if p in self._unknown]


@dataclass
class World:
    db: FakeOrderDb
    events: list[EventData]
    inventory: FakeInventory
    deps: service.Deps

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.events)

    def status(self, order_id: str) -> OrderStatus:
        return self.db.orders[order_id].order.status

    def types(self) -> list[str]:
        return [e.event_type for e in self.events]


@pytest.fixture
def world(monkeypatch) -> World:
    fake_db, events, inventory = FakeOrderDb(), [], FakeInventory()
    monkeypatch.setattr(service, "db", fake_db)
    deps = service.Deps(uow=lambda: FakeUnitOfWork(events), inventory=inventory,  # type: ignore[arg-type]
                        catalogue=FakeCatalogue(["NOPE"]))  # type: ignore[arg-type]
    return World(fake_db, events, inventory, deps)


LINES = [OrderLine("SKU-001", 2)]


def _placed(outcome: service.Placed | service.Replayed) -> dict[str, Any]:
    assert isinstance(outcome, service.Placed)
    return outcome.order


# --- place ------------------------------------------------------------------------------

def test_place_confirms_when_inventory_reserves(world):
    order = _placed(service.place_order(world.deps, LINES))
    assert (order["status"], order["reservation_id"]) == ("confirmed", "RES-1")
    assert world.status(order["id"]) is OrderStatus.CONFIRMED
    assert world.types() == ["OrderCreated", "OrderConfirmed"]


def test_place_fails_with_the_shortage_when_stock_is_short(world):
    world.inventory.answer = Reservation(False, "insufficient_stock", "",
                                         [{"productId": "SKU-001", "requested": 2, "available": 1}])
    order = _placed(service.place_order(world.deps, LINES))
    assert (order["status"], order["reason"]) == ("failed", "insufficient_stock")
    failed = world.events[-1]
    assert isinstance(failed, OrderFailed) and (failed.requestedQuantity, failed.availableStock) == (2, 1)


def test_place_asks_for_verification_when_inventory_does_not_answer(world):
    world.inventory.answer = InventoryUnavailable("grpc_timeout", "deadline")
    order = _placed(service.place_order(world.deps, LINES))
    assert (order["status"], order["reason"]) == ("pending_verification", "grpc_timeout")
    assert world.types() == ["OrderCreated", "VerifyOrder"]
    assert world.db.orders[order["id"]].verify_attempts == 1


def test_place_answers_the_current_state_when_something_moved_the_order_first(world, monkeypatch):
    def verdict_first(order_id: str, lines: object, timeout: float) -> Reservation:
        stored = world.db.orders[order_id]
        stored.order = replace(stored.order, status=OrderStatus.FAILED, reason="verification_timeout")
        return Reservation(True, "reserved", "RES-LATE")

    monkeypatch.setattr(world.inventory, "reserve", verdict_first)
    order = _placed(service.place_order(world.deps, LINES))
    assert (order["status"], order["reason"]) == ("failed", "verification_timeout")
    assert world.types() == ["OrderCreated"]   # the discarded confirmation never reaches the outbox


def test_place_refuses_unknown_products_before_writing(world):
    with pytest.raises(service.UnknownProducts):
        service.place_order(world.deps, [OrderLine("NOPE", 1)])
    assert world.db.orders == {} and world.events == []


def test_the_reservation_budget_counts_from_the_request_arrival(world, monkeypatch):
    budgets: list[float] = []
    answer = world.inventory.reserve
    monkeypatch.setattr(world.inventory, "reserve",
                        lambda order_id, lines, timeout: budgets.append(timeout) or answer(order_id, lines, timeout))
    _placed(service.place_order(world.deps, LINES, arrived=time.monotonic() - 1.5))
    assert 0 < budgets[0] <= 0.5  # 1.5 s of the 2 s went by queueing before the handler ran


def test_the_reservation_keeps_back_the_time_to_settle_and_answer(world, monkeypatch):
    budgets: list[float] = []
    answer = world.inventory.reserve
    monkeypatch.setattr(world.inventory, "reserve",
                        lambda order_id, lines, timeout: budgets.append(timeout) or answer(order_id, lines, timeout))
    _placed(service.place_order(world.deps, LINES))
    deadline_less_allowance = world.deps.inventory.reserve_deadline - world.deps.settle_allowance  # 2 s - 0.2 s
    assert deadline_less_allowance - 0.1 < budgets[0] <= deadline_less_allowance


def test_a_request_that_queued_past_its_deadline_is_refused_before_anything_is_written(world):
    with pytest.raises(service.TooLate):
        service.place_order(world.deps, LINES, arrived=time.monotonic() - 1.9)
    assert world.db.orders == {} and world.events == []


def test_a_repeated_key_gets_the_remembered_answer_and_another_body_is_refused(world):
    first = _placed(service.place_order(world.deps, LINES, "key-1"))
    # The first request has not stored its answer yet: a repeat is told to come back...
    with pytest.raises(service.RequestInFlight):
        service.place_order(world.deps, LINES, "key-1")
    # ...and once the first is past the in-flight bound (it died unanswered), sees the order as it is.
    world.db.in_flight = False
    again = service.place_order(world.deps, LINES, "key-1")
    assert isinstance(again, service.Placed) and not again.first and again.order["id"] == first["id"]
    service.remember_answer(world.deps, "key-1", 201, {"orderId": first["id"]})
    assert service.place_order(world.deps, LINES, "key-1") == service.Replayed(201, {"orderId": first["id"]},
                                                                               first["id"])
    with pytest.raises(service.IdempotencyMismatch):
        service.place_order(world.deps, [OrderLine("SKU-001", 3)], "key-1")
    assert len(world.db.orders) == 1


def test_a_repeat_of_a_pending_answer_shows_the_order_as_it_is_now(world):
    first = _placed(service.place_order(world.deps, LINES, "key-2"))
    service.remember_answer(world.deps, "key-2", 202, {"orderId": first["id"], "status": "pending_verification"})
    again = service.place_order(world.deps, LINES, "key-2")
    assert isinstance(again, service.Placed) and not again.first
    assert again.order["id"] == first["id"] and again.order["status"] == first["status"]


# --- cancel -----------------------------------------------------------------------------

def test_cancel_moves_a_confirmed_order_and_releases_its_stock(world):
    order_id = _placed(service.place_order(world.deps, LINES))["id"]
    record = service.cancel_order(world.deps, order_id)
    assert record.order["status"] == "cancelled" and world.inventory.released == [order_id]
    assert isinstance(world.events[-1], OrderCancelled)


def test_cancel_leaves_the_release_to_the_event_when_inventory_is_down(world):
    order_id = _placed(service.place_order(world.deps, LINES))["id"]
    world.inventory.release_fails = True
    assert service.cancel_order(world.deps, order_id).order["status"] == "cancelled"
    assert world.types()[-1] == "OrderCancelled" and world.inventory.released == []


def test_cancel_refuses_an_order_that_is_not_confirmed_and_an_unknown_one(world):
    world.inventory.answer = InventoryUnavailable("grpc_timeout", "deadline")
    order_id = _placed(service.place_order(world.deps, LINES))["id"]
    before = list(world.events)
    with pytest.raises(IllegalTransition):
        service.cancel_order(world.deps, order_id)
    with pytest.raises(service.OrderNotFound):
        service.cancel_order(world.deps, "ORD-NOPE")
    assert world.events == before and world.status(order_id) is OrderStatus.PENDING_VERIFICATION


def test_idempotency_keys_are_per_customer(world):
    alice = _placed(service.place_order(world.deps, LINES, "shared", customer_id="alice"))
    service.remember_answer(world.deps, "shared", 201, {"orderId": alice["id"]}, customer_id="alice")
    bob = _placed(service.place_order(world.deps, [OrderLine("SKU-001", 3)], "shared", customer_id="bob"))
    assert bob["id"] != alice["id"] and len(world.db.orders) == 2
    assert service.place_order(world.deps, LINES, "shared", customer_id="alice") == service.Replayed(
        201, {"orderId": alice["id"]}, alice["id"])


# --- ownership and shipping -------------------------------------------------------------

def test_a_customer_reaches_only_its_own_orders_and_an_operator_reaches_all(world):
    order_id = _placed(service.place_order(world.deps, LINES, customer_id="alice"))["id"]
    assert service.get_order(world.deps, order_id, owner="alice").order["id"] == order_id
    assert service.get_order(world.deps, order_id, owner=None).order["id"] == order_id
    with pytest.raises(service.OrderNotFound):
        service.get_order(world.deps, order_id, owner="bob")
    with pytest.raises(service.OrderNotFound):
        service.cancel_order(world.deps, order_id, owner="bob")
    assert world.status(order_id) is OrderStatus.CONFIRMED and world.inventory.released == []


def test_ship_moves_a_confirmed_order_once_and_a_shipped_order_cannot_be_cancelled(world):
    order_id = _placed(service.place_order(world.deps, LINES, customer_id="alice"))["id"]
    assert service.ship_order(world.deps, order_id).order["status"] == "shipped"
    assert service.ship_order(world.deps, order_id).order["status"] == "shipped"   # a repeat replays
    assert world.types() == ["OrderCreated", "OrderConfirmed", "OrderShipped"]
    shipped = world.events[-1]
    assert isinstance(shipped, OrderShipped) and shipped.reservationId == "RES-1"
    with pytest.raises(IllegalTransition):
        service.cancel_order(world.deps, order_id)
    assert world.inventory.released == []


def test_ship_refuses_an_order_that_is_not_confirmed(world):
    order_id = _awaiting(world)
    with pytest.raises(IllegalTransition):
        service.ship_order(world.deps, order_id)
    with pytest.raises(service.OrderNotFound):
        service.ship_order(world.deps, "ORD-NOPE")
    assert "OrderShipped" not in world.types()


# --- apply_verification -----------------------------------------------------------------

def _awaiting(world: World) -> str:
    world.inventory.answer = InventoryUnavailable("connection_error", "down")
    return str(_placed(service.place_order(world.deps, LINES))["id"])


def test_a_reserved_verdict_confirms_a_pending_order(world):
    order_id = _awaiting(world)
    with world.uow() as uow:
        service.apply_verification(uow, OrderVerified(orderId=order_id, outcome="reserved", reservationId="RES-9"))
        uow.commit()
    assert world.status(order_id) is OrderStatus.CONFIRMED
    assert world.events[-1] == OrderConfirmed(orderId=order_id, reservationId="RES-9")


def test_a_rejected_verdict_fails_the_order_with_its_reason(world):
    order_id = _awaiting(world)
    with world.uow() as uow:
        service.apply_verification(uow, OrderVerified(orderId=order_id, outcome="rejected",
                                                      reason="insufficient_stock"))
        uow.commit()
    assert world.db.orders[order_id].order.reason == "insufficient_stock"
    assert world.events[-1] == OrderFailed(orderId=order_id, reason="insufficient_stock")


def test_a_verdict_for_a_final_or_unknown_order_changes_nothing(world):
    order_id = _placed(service.place_order(world.deps, LINES))["id"]   # confirmed
    before = list(world.events)
    with world.uow() as uow:
        service.apply_verification(uow, OrderVerified(orderId=order_id, outcome="rejected", reason="x"))
        service.apply_verification(uow, OrderVerified(orderId="ORD-NOPE", outcome="reserved", reservationId="R"))
        uow.commit()
    assert world.status(order_id) is OrderStatus.CONFIRMED and world.events == before


# --- sweep ------------------------------------------------------------------------------

def test_sweep_resends_verification_and_fails_orders_stuck_too_long(world):
    pending = Order.place(LINES)
    world.db.insert_order(None, pending)                       # never heard back: still pending
    awaiting = _awaiting(world)
    old = _awaiting(world)
    world.db.orders[old].created_at = NOW - timedelta(seconds=300)
    world.events.clear()
    policy = service.SweepPolicy(resend_after=10, fail_after=120)
    with world.uow() as uow:
        actions = service.sweep(uow, policy, now=NOW + timedelta(seconds=30))
        uow.commit()
    assert actions == {"resent": 2, "failed": 1}
    assert world.status(pending.id) is OrderStatus.PENDING_VERIFICATION
    assert world.status(awaiting) is OrderStatus.PENDING_VERIFICATION
    assert (world.status(old), world.db.orders[old].order.reason) == (OrderStatus.FAILED, "verification_timeout")
    assert world.db.orders[awaiting].verify_attempts == 2
    assert sorted(world.types()) == ["OrderFailed", "VerifyOrder", "VerifyOrder"]
    assert {getattr(e, "reason", None) for e in world.events if e.event_type == "VerifyOrder"} == {"sweeper_retry"}
