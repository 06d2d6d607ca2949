"""Inventory's HTTP API for the storefront and operators: products, health, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify

from valerix.inventory import service
from valerix.inventory.bootstrap import Deps
from valerix.kit.health import Check
from valerix.kit.problems import Problem
from valerix.kit.web import create_app

MAX_PRODUCT_ID = 64


def product_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"productId": row["id"], "name": row["name"], "stock": row["stock"],
            "priceCents": row["price_cents"], "lowStockThreshold": row["low_stock_threshold"]}


def build_app(deps: Deps, checks: Mapping[str, Check]) -> Flask:
    app = create_app("inventory", checks, import_name=__name__)

    @app.get("/api/products")
    def products() -> Response:
        with deps.uow() as uow:
            return jsonify([product_view(r) for r in service.check_stock(uow)])

    @app.get("/api/products/<product_id>")
    def product(product_id: str) -> Response:
        if len(product_id) > MAX_PRODUCT_ID or not product_id.isprintable():
            raise Problem(404, "No such product.")
        with deps.uow() as uow:
            rows = service.check_stock(uow, [product_id])
        if not rows:
            raise Problem(404, f"No product {product_id!r}.")
        return jsonify(product_view(rows[0]))

    return app


