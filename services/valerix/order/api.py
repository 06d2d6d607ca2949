"""The order service's REST API: each route parses, calls a use case, maps the answer."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime

from flask import Flask, Response, jsonify, request, url_for

from valerix.kit.auth import Tokens
from valerix.kit.chaos import ChaosConfig, ChaosSource
from valerix.kit.health import Check
from valerix.kit.problems import Problem, problem_response
from valerix.kit.web import create_app, json_body
from valerix.order import identity, service, storefront
from valerix.order.alerts import AlertsClient, alerts_view
from valerix.order.domain import IllegalTransition, InvalidOrder, OrderStatus
from valerix.order.inventory_client import InventoryUnavailable
from valerix.order.openapi import document
from valerix.order.schemas import BodyErrors, parse_order

MAX_KEY = 255
MAX_ORDER_ID = 64
RETRY_AFTER_SECONDS = "2"


def encode_cursor(created_at: str, order_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, order_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), str(order_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "The cursor is not one this API gave out.") from None


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise Problem(400, f"Idempotency-Key must be 1-{MAX_KEY} printable characters.")
    return key


def _order_id(order_id: str) -> str:
    if len(order_id) > MAX_ORDER_ID or not order_id.isprintable():
        raise Problem(404, "No such order.")
    return order_id


def build_app(deps: service.Deps, checks: Mapping[str, Check], chaos: ChaosSource | None = None,
              alerts: AlertsClient | None = None, tokens: Tokens | None = None) -> Flask:
    app = create_app("order", checks, import_name=__name__)
    tokens = tokens or Tokens.from_env()
    identity.register(app, tokens)  # bearer tokens on /api/orders*, and POST /api/session

    @app.post("/api/orders")
    def place() -> Response:
        key = _idempotency_key()
        lines = parse_order(json_body())
        answer = service.place_order(deps, lines, key, customer_id=identity.caller().subject)
        response = jsonify(answer.body)
        response.status_code = answer.status
        response.headers["Location"] = url_for("get_order", order_id=answer.order_id)
        if answer.status == 202:
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.get("/api/orders/<order_id>")
    def get_order(order_id: str) -> Response:
        return jsonify(service.get_order(deps, _order_id(order_id), identity.caller().owner))

    @app.get("/api/orders")
    def list_orders() -> Response:
        args = request.args
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
        if cursor is not None and len(cursor) > 200:
            raise Problem(400, "The cursor is not one this API gave out.")
        orders = service.list_orders(deps, status, limit, decode_cursor(cursor) if cursor else None,
                                     identity.caller().owner)
        next_cursor = (encode_cursor(orders[-1]["createdAt"], orders[-1]["orderId"])
                       if len(orders) == limit else None)
        return jsonify({"orders": orders, "nextCursor": next_cursor})

    @app.post("/api/orders/<order_id>/cancel")
    def cancel(order_id: str) -> Response:
        return jsonify(service.cancel_order(deps, _order_id(order_id), identity.caller().owner))

    @app.post("/api/orders/<order_id>/ship")
    def ship(order_id: str) -> Response:
        identity.operator()
        return jsonify(service.ship_order(deps, _order_id(order_id)))

    @app.get("/api/products")
    def products() -> Response:
        try:
            found = deps.inventory.products()
        except InventoryUnavailable:
            raise Problem(503, "Inventory is not answering right now; try again shortly.",
                          headers={"Retry-After": "2"}) from None
        return jsonify([storefront.product_view(p) for p in found])

    @app.get("/api/alerts")
    def alert_lights() -> Response:
        """The three alert lights from Prometheus, for the storefront."""
        return jsonify(alerts_view(alerts))

    @app.get("/api/chaos")
    def chaos_modes() -> Response:
        """Which chaos modes are on, for the storefront's health strip."""
        return jsonify((chaos.current() if chaos else ChaosConfig()).as_dict())

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(document())

    _register_errors(app)
    storefront.register(app, deps, tokens)  # the page at /, its assets, and the live feed at /ws/orders
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(BodyErrors)
    def _body(error: BodyErrors) -> Response:
        return _problem(Problem(422, "The order is not valid.", errors=error.errors))

    @app.errorhandler(InvalidOrder)
    def _invalid(error: InvalidOrder) -> Response:
        return _problem(Problem(422, "The order is not valid.", errors=error.errors))

    @app.errorhandler(service.UnknownProducts)
    def _unknown(error: service.UnknownProducts) -> Response:
        return _problem(Problem(422, f"Unknown product(s): {', '.join(error.product_ids)}.",
                      errors=[{"field": "productId", "message": f"unknown product {p}"}
                              for p in error.product_ids]))

    @app.errorhandler(service.IdempotencyMismatch)
    def _mismatch(error: service.IdempotencyMismatch) -> Response:
        return _problem(Problem(422, "This Idempotency-Key was already used with a different body."))

    @app.errorhandler(service.OrderNotFound)
    def _missing(error: service.OrderNotFound) -> Response:
        return _problem(Problem(404, f"No order {str(error)!r}."))

    @app.errorhandler(IllegalTransition)
    def _illegal(error: IllegalTransition) -> Response:
        return _problem(Problem(409, f"Only confirmed orders can be {error.wanted}; this one is {error.current}.",
                      orderStatus=error.current.value))


def _problem(problem: Problem) -> Response:
    return problem_response(problem, request.path)
