"""Wires the order service's dependencies from settings: one place, tests pass their own."""

from __future__ import annotations

from flask import Flask

from valerix.kit import db, logs
from valerix.kit.bootstrap import bus_check
from valerix.kit.chaos import ChaosSource
from valerix.kit.grpc_auth import require_token
from valerix.kit.uow import UnitOfWork
from valerix.order import api, service
from valerix.order.alerts import AlertsClient
from valerix.order.inventory_client import Catalogue, InventoryClient
from valerix.order.settings import OrderSettings


def build_deps(settings: OrderSettings, pool_name: str) -> service.Deps:
    pool = db.make_pool(settings.order_database_url.get_secret_value(), name=pool_name,
                        max_size=settings.db_pool_size)
    client = InventoryClient(settings.inventory_grpc_target, require_token(settings.inventory_grpc_token),
                             reserve_deadline=settings.reserve_deadline_ms / 1000)
    return service.Deps(uow=lambda: UnitOfWork(pool), inventory=client, catalogue=Catalogue(client))


def create_app() -> Flask:
    """The gunicorn app factory: runs once in every worker process."""
    settings = OrderSettings()  # type: ignore[call-arg]
    logs.configure("order", settings.log_level)
    deps = build_deps(settings, "order-api")
    pool = deps.uow().pool
    checks = {"database": lambda: db.ping(pool), "serviceBus": bus_check(settings),
              "inventoryGrpc": deps.inventory.check_health}
    alerts = AlertsClient(settings.prometheus_url) if settings.prometheus_url else None
    return api.build_app(deps, checks, chaos=ChaosSource(settings.chaos_dir), alerts=alerts)
