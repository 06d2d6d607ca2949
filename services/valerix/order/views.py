"""How the REST API shows orders: the JSON view of an order and the HTTP answer to placing one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from valerix.order.domain import OrderStatus
from valerix.order.service import OrderRecord, Placed, Replayed

PENDING_MESSAGE = "We are verifying your order with the warehouse; check back in a moment."


@dataclass(frozen=True)
class Answer:
    """The answer to placing an order: a status code and a body."""

    status: int
    body: dict[str, Any]
    order_id: str


def order_view(row: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "orderId": row["id"], "status": row["status"], "items": row["items"],
        "createdAt": row["created_at"].isoformat(), "updatedAt": row["updated_at"].isoformat(),
    }
    if row.get("reason"):
        view["reason"] = row["reason"]
    if row.get("reservation_id"):
        view["reservationId"] = row["reservation_id"]
    if history is not None:
        view["history"] = [{"from": h["from_status"], "to": h["to_status"], "reason": h["reason"],
                            "at": h["at"].isoformat()} for h in history]
    return view


def record_view(record: OrderRecord) -> dict[str, Any]:
    return order_view(record.order, record.history)


def answer_for(view: dict[str, Any]) -> Answer:
    body = order_view(view)
    status = OrderStatus(view["status"])
    if status in (OrderStatus.CONFIRMED, OrderStatus.SHIPPED):
        return Answer(201, body, view["id"])
    if status in (OrderStatus.FAILED, OrderStatus.CANCELLED):
        return Answer(409, body, view["id"])
    body["message"] = PENDING_MESSAGE
    return Answer(202, body, view["id"])


def placing_answer(outcome: Placed | Replayed) -> Answer:
    """A replayed Idempotency-Key gets the first answer exactly as it was given."""
    if isinstance(outcome, Replayed):
        return Answer(outcome.status, outcome.body, outcome.order_id)
    return answer_for(outcome.order)
