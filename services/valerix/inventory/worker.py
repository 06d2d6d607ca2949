"""The inventory worker: answers VerifyOrder, releases stock of failed and cancelled orders,
marks shipped orders' reservations shipped, relays the outbox."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from valerix.contracts.events import (
    ORDER_EVENTS,
    VERIFY_ORDERS,
    Envelope,
    OrderCancelled,
    OrderFailed,
    OrderShipped,
    VerifyOrder,
)
from valerix.inventory import service
from valerix.inventory.domain import Line
from valerix.inventory.settings import InventorySettings
from valerix.kit.bus import Bus
from valerix.kit.bus.topology import INVENTORY_SERVICE_SUBSCRIPTION, subscription_path
from valerix.kit.consumer import Consumer
from valerix.kit.logs import order_id as log_order_id
from valerix.kit.service_worker import competing_consumers, run_service_worker
from valerix.kit.uow import UnitOfWork
from valerix.kit.worker_runtime import Loop


def handle(uow: UnitOfWork, envelope: Envelope) -> None:
    """Which event goes to which use case."""
    data = envelope.parse_data()
    log_order_id.set(getattr(data, "orderId", None))
    if isinstance(data, VerifyOrder):
        service.verify_in(uow, data.orderId, [Line(i.productId, i.quantity) for i in data.items])
    elif isinstance(data, OrderFailed):
        service.release_in(uow, data.orderId, f"order_failed:{data.reason}")
    elif isinstance(data, OrderCancelled):
        service.release_in(uow, data.orderId, "order_cancelled")
    elif isinstance(data, OrderShipped):
        service.ship_in(uow, data.orderId)


def main() -> None:
    settings = InventorySettings()  # type: ignore[call-arg]

    def loops(pool: ConnectionPool[Any], bus: Bus) -> dict[str, Loop]:
        releases = subscription_path(ORDER_EVENTS, INVENTORY_SERVICE_SUBSCRIPTION)
        verifiers = competing_consumers(bus, VERIFY_ORDERS, pool, "inventory-verifier", handle,
                                        settings.consumer_threads)
        releaser = Consumer(bus, releases, pool, "inventory-releaser", handle)
        return {**verifiers, "inventory-releaser": releaser.run_forever}

    run_service_worker("inventory", settings, settings.inventory_database_url.get_secret_value(), loops)
