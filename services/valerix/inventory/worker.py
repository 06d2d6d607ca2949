"""The inventory worker: answers VerifyOrder, releases stock of failed and cancelled orders,
marks shipped orders' reservations shipped, relays the outbox."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from valerix.contracts.events import ORDER_EVENTS, VERIFY_ORDERS
from valerix.contracts.routing import INVENTORY_SERVICE
from valerix.inventory import db
from valerix.inventory.handlers import HANDLERS
from valerix.inventory.settings import InventorySettings
from valerix.kit.bus import Bus
from valerix.kit.bus.topology import subscription_path
from valerix.kit.service_worker import run_service_worker, subscribe
from valerix.kit.worker_runtime import Loop


def main() -> None:
    settings = InventorySettings()  # type: ignore[call-arg]
    releases = subscription_path(ORDER_EVENTS, INVENTORY_SERVICE.subscription)

    def loops(pool: ConnectionPool[Any], bus: Bus) -> dict[str, Loop]:
        return subscribe(bus, pool, INVENTORY_SERVICE, HANDLERS, {
            VERIFY_ORDERS: ("inventory-verifier", settings.consumer_threads),
            releases: ("inventory-releaser", 1),
        }, backoff=(settings.consumer_backoff_base_s, settings.consumer_backoff_cap_s))

    run_service_worker("inventory", settings, settings.inventory_database_url.get_secret_value(), loops,
                       tables=db.TABLES)
