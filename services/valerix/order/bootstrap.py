"""Wires the order service's dependencies from settings: one place, tests pass their own."""

from __future__ import annotations

from typing import Any

from flask import Flask
from psycopg_pool import ConnectionPool

from valerix.kit.chaos import ChaosSource
from valerix.kit.grpc_auth import require_token
from valerix.kit.service_worker import api_basics
from valerix.kit.uow import UnitOfWork
from valerix.order import api, service
from valerix.order.alerts import AlertsClient
from valerix.order.inventory_client import Catalogue, InventoryClient
from valerix.order.late_answers import LateAnswers
from valerix.order.settings import OrderSettings


def build_deps(settings: OrderSettings, pool: ConnectionPool[Any]) -> service.Deps:
    client = InventoryClient(settings.inventory_grpc_target, require_token(settings.inventory_grpc_token),
                             reserve_deadline=settings.reserve_deadline_ms / 1000,
                             reserve_transport=settings.reserve_transport)
    hold = settings.verify_hold_ms / 1000 if client.answers_late else 0.0
    deps = service.Deps(uow=lambda: UnitOfWork(pool), inventory=client, catalogue=Catalogue(client),
                        database_url=settings.order_database_url.get_secret_value(),
                        settle_allowance=settings.settle_allowance_ms / 1000, verify_hold=hold)
    if hold:
        client.on_late_answer(LateAnswers(deps).put, window=hold)
    return deps


def create_app() -> Flask:
    """The gunicorn app factory: runs once in every worker process."""
    settings = OrderSettings()  # type: ignore[call-arg]
    pool, checks = api_basics("order", settings, settings.order_database_url.get_secret_value())
    deps = build_deps(settings, pool)
    checks["inventoryGrpc"] = deps.inventory.check_health
    alerts = AlertsClient(settings.prometheus_url) if settings.prometheus_url else None
    return api.build_app(deps, checks, chaos=ChaosSource(settings.chaos_dir), alerts=alerts)
