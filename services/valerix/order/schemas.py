"""Request bodies of the REST API, as pydantic models; the OpenAPI document is built from them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from valerix.order.domain import MAX_LINES, MAX_QUANTITY, PRODUCT_ID, OrderLine

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
