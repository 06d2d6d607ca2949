"""Order rules: what a valid order is and which status changes are legal. Pure Python."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

MAX_LINES = 50
MAX_QUANTITY = 1000
PRODUCT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class OrderStatus(StrEnum):
    PENDING = "pending"
    PENDING_VERIFICATION = "pending_verification"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SHIPPED = "shipped"

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.SHIPPED})

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED,
                                    OrderStatus.PENDING_VERIFICATION}),
    OrderStatus.PENDING_VERIFICATION: frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.CANCELLED, OrderStatus.SHIPPED}),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.SHIPPED: frozenset(),
}


class OrderError(Exception):
    """Base of the domain's refusals."""


class InvalidOrder(OrderError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class IllegalTransition(OrderError):
    def __init__(self, current: OrderStatus, wanted: OrderStatus) -> None:
        super().__init__(f"an order that is {current} cannot become {wanted}")
        self.current = current
        self.wanted = wanted


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class StatusChange:
    from_status: OrderStatus | None
    to_status: OrderStatus
    reason: str | None
    at: datetime | None = None


@dataclass
class Order:
    id: str
    lines: tuple[OrderLine, ...]
    status: OrderStatus = OrderStatus.PENDING
    reason: str | None = None
    reservation_id: str | None = None
    customer_id: str | None = None   # None only for orders placed before customers existed
    changes: list[StatusChange] = field(default_factory=list)

    @classmethod
    def place(cls, lines: list[OrderLine], order_id: str | None = None, customer_id: str | None = None) -> Order:
        order = cls(id=order_id or new_order_id(), lines=validate_lines(lines), customer_id=customer_id)
        order.changes.append(StatusChange(None, OrderStatus.PENDING, None))
        return order

    def _move(self, wanted: OrderStatus, reason: str | None) -> None:
        if wanted not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, wanted)
        self.changes.append(StatusChange(self.status, wanted, reason))
        self.status, self.reason = wanted, reason

    def confirm(self, reservation_id: str) -> None:
        self._move(OrderStatus.CONFIRMED, None)
        self.reservation_id = reservation_id

    def fail(self, reason: str) -> None:
        self._move(OrderStatus.FAILED, reason)

    def await_verification(self, reason: str) -> None:
        self._move(OrderStatus.PENDING_VERIFICATION, reason)

    def cancel(self, reason: str = "customer_request") -> None:
        self._move(OrderStatus.CANCELLED, reason)

    def ship(self) -> None:
        self._move(OrderStatus.SHIPPED, None)

    def visible_to(self, owner: str | None) -> bool:
        """An operator (owner None) sees every order; a customer only its own."""
        return owner is None or self.customer_id == owner


def new_order_id() -> str:
    return f"ORD-{uuid.uuid4().hex[:20].upper()}"


def validate_lines(lines: list[OrderLine]) -> tuple[OrderLine, ...]:
    errors: list[dict[str, str]] = []
    if not 1 <= len(lines) <= MAX_LINES:
        errors.append({"field": "items", "message": f"an order has 1 to {MAX_LINES} lines"})
    seen: set[str] = set()
    for i, line in enumerate(lines):
        where = f"items[{i}]"
        if not PRODUCT_ID.match(line.product_id):
            errors.append({"field": f"{where}.productId",
                           "message": "1-64 letters, digits, '.', '_' or '-', starting alphanumeric"})
        elif line.product_id in seen:
            errors.append({"field": f"{where}.productId", "message": "appears twice; merge the lines"})
        seen.add(line.product_id)
        if not 1 <= line.quantity <= MAX_QUANTITY:
            errors.append({"field": f"{where}.quantity", "message": f"must be 1 to {MAX_QUANTITY}"})
    if errors:
        raise InvalidOrder(errors)
    return tuple(lines)
