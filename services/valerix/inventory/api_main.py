"""The inventory api process: gRPC (reservations) and HTTP (products, health, metrics)."""

from __future__ import annotations

import logging

from valerix.inventory import grpc_server, http_api
from valerix.inventory.bootstrap import build_deps
from valerix.inventory.metrics import StockCollector
from valerix.inventory.settings import InventorySettings
from valerix.kit import db, metrics, process
from valerix.kit.grpc_auth import require_token
from valerix.kit.grpc_server import serve_grpc, watch_health
from valerix.kit.http_server import serve_in_background
from valerix.kit.service_worker import api_basics

log = logging.getLogger(__name__)


def main() -> None:
    settings = InventorySettings()  # type: ignore[call-arg]
    pool, checks = api_basics("inventory", settings, settings.inventory_database_url.get_secret_value())
    deps = build_deps(settings, pool)
    servicer = grpc_server.InventoryServicer(deps, delay_workers=settings.grpc_max_workers)
    server, health = serve_grpc(settings.inventory_grpc_bind, servicer.add_to_server,
                                [grpc_server.SERVICE_NAME], max_workers=settings.grpc_max_workers,
                                token=require_token(settings.inventory_grpc_token))
    watch_health(health, [grpc_server.SERVICE_NAME], lambda: db.ping(pool))
    metrics.register_live(StockCollector(pool))
    host, port = process.split_bind(settings.inventory_http_bind)
    stop_http = serve_in_background(http_api.build_app(deps, checks), host, port,
                                    threads=settings.inventory_http_threads)
    stop = process.stop_event()
    log.info("inventory api listening", extra={"grpc": settings.inventory_grpc_bind,
                                               "http": settings.inventory_http_bind})
    stop.wait()
    log.info("inventory api stopping")
    stopped = server.stop(grace=5)   # no new calls from here; the calls in progress may finish
    servicer.end_streams()
    stopped.wait()
    stop_http()
    pool.close()
