"""What the REST API accepts: request bodies as pydantic models (the OpenAPI document is built
from them), the list query and its cursor."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from valerix.kit.problems import Problem
from valerix.order.domain import MAX_LINES, MAX_QUANTITY, PRODUCT_ID, OrderLine, OrderStatus

MAX_CURSOR = 200
MAX_ORDER_ID = 64
BAD_CURSOR = "The cursor is not one this API gave out."

ProductId = StrictStr


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    productId: ProductId = Field(min_length=1, max_length=64, pattern=PRODUCT_ID.pattern,
                                 examples=["SKU-001"])
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY, examples=[2])


class SingleItemOrder(LineIn):
    """The seed's shape: one product."""

    customerId: StrictStr | None = Field(default=None, max_length=64)


class MultiItemOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    customerId: StrictStr | None = Field(default=None, max_length=64)


class BodyErrors(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid body")
        self.errors = errors


def parse_order(body: Any) -> list[OrderLine]:
    if not isinstance(body, dict):
        raise BodyErrors([{"field": "(body)", "message": "expected a JSON object"}])
    model: type[BaseModel] = MultiItemOrder if "items" in body else SingleItemOrder
    try:
        parsed = model.model_validate(body)
    except ValidationError as error:
        raise BodyErrors([{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
                          for e in error.errors(include_url=False, include_input=False)][:20]) from None
    if isinstance(parsed, MultiItemOrder):
        return [OrderLine(line.productId, line.quantity) for line in parsed.items]
    assert isinstance(parsed, SingleItemOrder)
    return [OrderLine(parsed.productId, parsed.quantity)]


@dataclass(frozen=True)
class ListQuery:
    status: OrderStatus | None
    limit: int
    after: tuple[datetime, str] | None


def parse_list_query(args: Mapping[str, str]) -> ListQuery:
    """``?status=&limit=&cursor=`` of GET /api/orders; anything else it cannot use is a 400."""
    status = None
    if "status" in args:
        try:
            status = OrderStatus(args["status"])
        except ValueError:
            raise Problem(400, f"status must be one of {', '.join(s.value for s in OrderStatus)}.") from None
    try:
        limit = int(args.get("limit", "20"))
    except ValueError:
        raise Problem(400, "limit must be an integer from 1 to 100.") from None
    if not 1 <= limit <= 100:
        raise Problem(400, "limit must be an integer from 1 to 100.")
    cursor = args.get("cursor")
    if cursor is not None and len(cursor) > MAX_CURSOR:
        raise Problem(400, BAD_CURSOR)
    return ListQuery(status, limit, decode_cursor(cursor) if cursor else None)


def encode_cursor(created_at: str, order_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, order_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(created_at)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, BAD_CURSOR) from None
    # Only what encode_cursor writes: an order id the database can compare (no NUL, not huge).
    if not isinstance(order_id, str) or not order_id.isprintable() or len(order_id) > MAX_ORDER_ID:
        raise Problem(400, BAD_CURSOR)
    return when, order_id
