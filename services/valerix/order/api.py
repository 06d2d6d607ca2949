"""The order service's REST API: each route parses, calls a use case, maps the answer."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from flask import Flask, Response, jsonify, request, url_for

from valerix.kit.auth import Tokens
from valerix.kit.chaos import ChaosConfig, ChaosSource
from valerix.kit.health import Check
from valerix.kit.problems import Problem, problem_response
from valerix.kit.web import arrival, create_app, json_body
from valerix.order import identity, service, storefront, views
from valerix.order.alerts import AlertsClient, alerts_view
from valerix.order.domain import IllegalTransition, InvalidOrder
from valerix.order.inventory_client import InventoryUnavailable
from valerix.order.openapi import document
from valerix.order.schemas import BodyErrors, encode_cursor, parse_list_query, parse_order

MAX_KEY = 255
MAX_ORDER_ID = 64
RETRY_AFTER_SECONDS = "2"


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
        customer = identity.caller().subject
        outcome = service.place_order(deps, lines, key, customer_id=customer, arrived=arrival())
        answer = views.placing_answer(outcome)
        if key and isinstance(outcome, service.Placed) and outcome.first:
            service.remember_answer(deps, key, answer.status, answer.body, customer_id=customer)
        response = jsonify(answer.body)
        response.status_code = answer.status
        response.headers["Location"] = url_for("get_order", order_id=answer.order_id)
        if answer.status == 202:
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.get("/api/orders/<order_id>")
    def get_order(order_id: str) -> Response:
        return jsonify(views.record_view(service.get_order(deps, _order_id(order_id), identity.caller().owner)))

    @app.get("/api/orders")
    def list_orders() -> Response:
        query = parse_list_query(request.args)
        rows = service.list_orders(deps, query.status, query.limit, query.after, identity.caller().owner)
        orders = [views.order_view(row) for row in rows]
        next_cursor = (encode_cursor(orders[-1]["createdAt"], orders[-1]["orderId"])
                       if len(orders) == query.limit else None)
        return jsonify({"orders": orders, "nextCursor": next_cursor})

    @app.post("/api/orders/<order_id>/cancel")
    def cancel(order_id: str) -> Response:
        return jsonify(views.record_view(service.cancel_order(deps, _order_id(order_id), identity.caller().owner)))

    @app.post("/api/orders/<order_id>/ship")
    def ship(order_id: str) -> Response:
        identity.operator()
        return jsonify(views.record_view(service.ship_order(deps, _order_id(order_id))))

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

    @app.errorhandler(service.TooLate)
    def _too_late(_: service.TooLate) -> Response:
        return _problem(Problem(503, "The order service is too busy to answer within its deadline; "
                                     "nothing was written, try again shortly.", headers={"Retry-After": "1"}))

    @app.errorhandler(service.RequestInFlight)
    def _in_flight(error: service.RequestInFlight) -> Response:
        return _problem(Problem(409, "A request with this Idempotency-Key is still being answered; "
                                     "repeat it in a moment.", headers={"Retry-After": "1"}))

    @app.errorhandler(psycopg.DataError)
    def _unstorable(error: psycopg.DataError) -> Response:
        # Only input reaches the database as data (a NUL byte, an over-long or out-of-range
        # value); whatever the parsers let through, it is the client's to fix.
        return _problem(Problem(400, "A value in the request cannot be stored or searched for."))

    @app.errorhandler(service.OrderNotFound)
    def _missing(error: service.OrderNotFound) -> Response:
        return _problem(Problem(404, f"No order {str(error)!r}."))

    @app.errorhandler(IllegalTransition)
    def _illegal(error: IllegalTransition) -> Response:
        return _problem(Problem(409, f"Only confirmed orders can be {error.wanted}; this one is {error.current}.",
                      orderStatus=error.current.value))


def _problem(problem: Problem) -> Response:
    return problem_response(problem, request.path)
