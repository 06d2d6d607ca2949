"""The OpenAPI 3.1 document of the order REST API, built from the same pydantic models
that validate the requests."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from valerix.order.schemas import MultiItemOrder, SingleItemOrder

PROBLEM = {"$ref": "#/components/schemas/Problem"}
ORDER = {"$ref": "#/components/schemas/Order"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}


def _json(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None,
          links: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return response


# What a client can do next with an order it was answered (OpenAPI links: how tools such as
# schemathesis chain the calls statefully).
_THE_ORDER = {"orderId": "$response.body#/orderId"}
ORDER_LINKS = {
    "GetOrder": {"operationId": "getOrder", "parameters": _THE_ORDER},
    "CancelOrder": {"operationId": "cancelOrder", "parameters": _THE_ORDER},
    "ShipOrder": {"operationId": "shipOrder", "parameters": _THE_ORDER},
}


@cache
def document() -> dict[str, Any]:
    _, defs = models_json_schema([(SingleItemOrder, "validation"), (MultiItemOrder, "validation")],
                                 ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = defs["$defs"]
    schemas["Problem"] = {"type": "object", "required": ["type", "title", "status"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}}}}
    status_enum = ["pending", "pending_verification", "confirmed", "failed", "cancelled", "shipped"]
    schemas["Order"] = {"type": "object", "required": ["orderId", "status", "items"], "properties": {
        "orderId": {"type": "string"}, "status": {"type": "string", "enum": status_enum},
        "reason": {"type": "string"}, "reservationId": {"type": "string"},
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/LineIn"}},
        "createdAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        "history": {"type": "array", "items": {"type": "object", "properties": {
            "from": {"type": ["string", "null"]}, "to": {"type": "string"},
            "reason": {"type": ["string", "null"]}, "at": {"type": "string", "format": "date-time"}}}}}}
    schemas["OrderPage"] = {"type": "object", "required": ["orders"], "properties": {
        "orders": {"type": "array", "items": ORDER}, "nextCursor": {"type": ["string", "null"]}}}
    order_id = {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
    location = {"Location": {"schema": {"type": "string"}, "description": "the order's URL"}}
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "Valerix order service", "version": "1.0.0",
                 "description": "Places, reads, lists, cancels and ships orders. Errors are RFC 9457 "
                                "problems. Every /api/orders call needs a bearer token."},
        "paths": {
            "/api/orders": {
                "post": {
                    "operationId": "placeOrder", "summary": "Place an order",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "maxLength": 255}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/SingleItemOrder"},
                        {"$ref": "#/components/schemas/MultiItemOrder"}]}}}},
                    "responses": {
                        "201": _json("Confirmed: stock is reserved", ORDER, location, ORDER_LINKS),
                        "202": _json("Pending verification: inventory was slow; poll the Location", ORDER,
                                     {**location, "Retry-After": {"schema": {"type": "integer"}}}, ORDER_LINKS),
                        "400": _problem("Body is not JSON or a header is malformed"),
                        "409": {**_json("Failed: insufficient stock", ORDER, links=ORDER_LINKS),
                                "description": "Failed: insufficient stock; or (a problem, with Retry-After) "
                                               "the Idempotency-Key's first request is still in flight"},
                        "413": _problem("Body too large"),
                        "415": _problem("Body is not application/json"),
                        "422": _problem("Invalid order, unknown product, or Idempotency-Key reused "
                                        "with another body"),
                    },
                },
                "get": {
                    "operationId": "listOrders", "summary": "List orders, newest first",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string", "enum": status_enum}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                     "maximum": 100, "default": 20}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 200}}],
                    "responses": {"200": _json("A page of orders", {"$ref": "#/components/schemas/OrderPage"},
                                               links={"NextPage": {"operationId": "listOrders", "parameters": {
                                                   "cursor": "$response.body#/nextCursor"}}}),
                                  "400": _problem("Bad query parameter")},
                },
            },
            "/api/orders/{orderId}": {"get": {
                "operationId": "getOrder", "summary": "An order with its items and status history",
                "parameters": [order_id],
                "responses": {"200": _json("The order", ORDER, links=ORDER_LINKS),
                              "404": _problem("No such order")}}},
            "/api/orders/{orderId}/cancel": {"post": {
                "operationId": "cancelOrder", "summary": "Cancel a confirmed order (releases its stock)",
                "parameters": [order_id],
                "responses": {"200": _json("The cancelled order", ORDER, links={"GetOrder": ORDER_LINKS["GetOrder"]}),
                              "404": _problem("No such order"),
                              "409": _problem("The order is not confirmed (a shipped order stays shipped)")}}},
            "/api/orders/{orderId}/ship": {"post": {
                "operationId": "shipOrder", "summary": "Ship a confirmed order (operators only); a repeat "
                                                       "answers the same",
                "parameters": [order_id],
                "responses": {"200": _json("The shipped order", ORDER, links={
                                  "GetOrder": ORDER_LINKS["GetOrder"], "CancelOrder": ORDER_LINKS["CancelOrder"]}),
                              "403": _problem("The caller is not an operator"),
                              "404": _problem("No such order"),
                              "409": _problem("The order is not confirmed")}}},
            "/api/session": {"post": {
                "operationId": "createSession", "security": [],
                "summary": "A new guest customer and its bearer token (never an operator's)",
                "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"201": _json("The customer's token", {"$ref": "#/components/schemas/Session"}),
                              "400": _problem("Body is not a JSON object"),
                              "415": _problem("Body is not application/json")}}},
            "/health": {"get": {"operationId": "readiness", "summary": "Readiness with dependencies",
                                "responses": {"200": {"description": "healthy"},
                                              "503": {"description": "a dependency is down"}}}},
            "/health/live": {"get": {"operationId": "liveness", "summary": "Process liveness",
                                     "responses": {"200": {"description": "alive"}}}},
        },
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "POST /api/session for a customer; `valerix auth token --role "
                                      "operator` for an operator"}}},
    }
    schemas["Session"] = {"type": "object", "required": ["token", "customerId", "expiresAt"], "properties": {
        "token": {"type": "string"}, "customerId": {"type": "string"},
        "expiresAt": {"type": "string", "format": "date-time"}}}
    return _secured(spec)


def _secured(spec: dict[str, Any]) -> dict[str, Any]:
    """Every /api/orders* operation needs a bearer token and may answer 401."""
    for path, operations in spec["paths"].items():
        if path.startswith("/api/orders"):
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
                operation["responses"]["401"] = _problem("Missing, malformed, expired or tampered bearer "
                                                         "token (WWW-Authenticate: Bearer)")
    return spec
