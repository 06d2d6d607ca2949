"""The event contract between the services: the seed's envelope and every event's data.

Neutral ground: both services import this module, neither imports the other.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

# Entity names, as in the seed.
ORDER_EVENTS = "order-events"
INVENTORY_EVENTS = "inventory-events"
VERIFY_ORDERS = "verify-orders"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventData(BaseModel):
    """Base of every event's ``data``; subclasses name their type and destination."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    event_type: ClassVar[str]
    destination: ClassVar[str]


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid")
    productId: str
    quantity: int


class OrderCreated(EventData):
    event_type = "OrderCreated"
    destination = ORDER_EVENTS
    orderId: str
    customerId: str | None = None
    items: list[Line]
    status: Literal["pending"] = "pending"


class OrderConfirmed(EventData):
    event_type = "OrderConfirmed"
    destination = ORDER_EVENTS
    orderId: str
    status: Literal["confirmed"] = "confirmed"
    reservationId: str


class OrderFailed(EventData):
    event_type = "OrderFailed"
    destination = ORDER_EVENTS
    orderId: str
    reason: str
    requestedQuantity: int | None = None
    availableStock: int | None = None


class OrderCancelled(EventData):
    event_type = "OrderCancelled"
    destination = ORDER_EVENTS
    orderId: str
    reason: str = "customer_request"


class OrderShipped(EventData):
    """An operator shipped a confirmed order: its reservation's stock has left for good."""

    event_type = "OrderShipped"
    destination = ORDER_EVENTS
    orderId: str
    reservationId: str
    items: list[Line]


class StockReserved(EventData):
    event_type = "StockReserved"
    destination = INVENTORY_EVENTS
    orderId: str
    productId: str
    quantity: int
    remainingStock: int
    reservationId: str


class StockReleased(EventData):
    event_type = "StockReleased"
    destination = INVENTORY_EVENTS
    orderId: str
    productId: str
    quantity: int
    newStock: int
    reason: str


class LowStockAlert(EventData):
    event_type = "LowStockAlert"
    destination = INVENTORY_EVENTS
    productId: str
    currentStock: int
    threshold: int


class OrderVerified(EventData):
    event_type = "OrderVerified"
    destination = INVENTORY_EVENTS
    orderId: str
    outcome: Literal["reserved", "rejected"]
    reservationId: str | None = None
    reason: str | None = None


class FinalStatesAsserted(EventData):
    """The order worker's reconciler: what inventory must hold for orders that became final a
    while ago (each order asserted once, after the events that should have done it had their
    chance). Inventory repairs drift it finds: it releases what ``released`` orders still hold,
    marks ``shipped`` ones shipped, and reports ``held`` (confirmed) orders holding nothing."""

    event_type = "FinalStatesAsserted"
    destination = ORDER_EVENTS
    released: list[str] = Field(default_factory=list)   # failed or cancelled orders
    held: list[str] = Field(default_factory=list)       # confirmed orders
    shipped: list[str] = Field(default_factory=list)


class VerifyOrder(EventData):
    event_type = "VerifyOrder"
    destination = VERIFY_ORDERS
    orderId: str
    items: list[Line]
    originalRequestTime: datetime
    reason: Literal["grpc_timeout", "connection_error", "server_error", "sweeper_retry"]


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.event_type: cls
    for cls in (OrderCreated, OrderConfirmed, OrderFailed, OrderCancelled, OrderShipped, StockReserved,
                StockReleased, LowStockAlert, OrderVerified, VerifyOrder, FinalStatesAsserted)
}


class Envelope(BaseModel):
    """``{eventType, eventId, timestamp, data}`` exactly as in the seed."""

    model_config = ConfigDict(extra="forbid")
    eventType: str
    eventId: str = Field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: datetime = Field(default_factory=utcnow)
    data: dict[str, Any]

    @classmethod
    def wrap(cls, data: EventData, event_id: str | None = None) -> Envelope:
        """``event_id``: a given id (one a later transaction can find again); default a new one."""
        envelope = cls(eventType=data.event_type, data=data.model_dump(mode="json", exclude_none=True))
        return envelope if event_id is None else envelope.model_copy(update={"eventId": event_id})

    def parse_data(self) -> EventData:
        return EVENT_TYPES[self.eventType].model_validate(self.data)
