"""Inventory rules: reservation lines, outcomes, releases and the low-stock signal. Pure Python."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    REJECTED = "rejected"
    RELEASED = "released"
    SHIPPED = "shipped"    # the stock left the warehouse: never released


class Rejection(StrEnum):
    INSUFFICIENT_STOCK = "insufficient_stock"
    UNKNOWN_PRODUCT = "unknown_product"


class InvalidReservation(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class Shortage:
    product_id: str
    requested: int
    available: int


@dataclass(frozen=True)
class Outcome:
    """What a ReserveStock answers; replayed unchanged for a repeated order id."""

    status: ReservationStatus
    reservation_id: str | None
    rejection: Rejection | None = None
    shortages: tuple[Shortage, ...] = ()
    remaining: dict[str, int] = field(default_factory=dict)
    replayed: bool = False

    @property
    def success(self) -> bool:
        return self.status is ReservationStatus.RESERVED


MAX_LINES = 50
MAX_QUANTITY = 1000


def lock_order(lines: list[Line]) -> list[Line]:
    """Lines sorted by product id: every transaction locks rows in the same order, so two
    reservations can never wait on each other (no deadlocks)."""
    if not lines_are_valid(lines):
        raise InvalidReservation(f"1 to {MAX_LINES} lines with quantities 1 to {MAX_QUANTITY}, "
                                 "each product once")
    return sorted(lines, key=lambda line: line.product_id)


def lines_are_valid(lines: list[Line]) -> bool:
    ids = [line.product_id for line in lines]
    return (1 <= len(lines) <= MAX_LINES and len(set(ids)) == len(ids) and all(ids)
            and all(1 <= line.quantity <= MAX_QUANTITY for line in lines))


def new_reservation_id() -> str:
    return f"RES-{uuid.uuid4().hex[:20].upper()}"


def crossed_low_stock(before: int, after: int, threshold: int) -> bool:
    """True once, on the reservation that takes stock from above the threshold to at or below it."""
    return before > threshold >= after


def releasable(status: ReservationStatus) -> bool:
    return status is ReservationStatus.RESERVED
