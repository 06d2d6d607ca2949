"""The inventory worker: answers VerifyOrder, releases stock of failed and cancelled orders,
relays the outbox."""

from __future__ import annotations

from valerix.contracts.events import (
    ORDER_EVENTS,
    VERIFY_ORDERS,
    Envelope,
    OrderCancelled,
    OrderFailed,
    VerifyOrder,
)
from valerix.inventory import service
from valerix.inventory.domain import Line
from valerix.inventory.settings import InventorySettings
from valerix.kit import db, logs
from valerix.kit.bootstrap import bus_check
from valerix.kit.bus import open_bus
from valerix.kit.bus.topology import INVENTORY_SERVICE_SUBSCRIPTION, subscription_path
from valerix.kit.consumer import Consumer, bus_stats_loop
from valerix.kit.logs import order_id as log_order_id
from valerix.kit.outbox import Relay
from valerix.kit.uow import UnitOfWork
from valerix.kit.worker_runtime import run_worker


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


def main() -> None:
    settings = InventorySettings()  # type: ignore[call-arg]
    logs.configure("inventory-worker", settings.log_level)
    pool = db.make_pool(settings.inventory_database_url.get_secret_value(), name="inventory-worker",
                        max_size=settings.consumer_threads + 4)
    bus = open_bus(settings)
    loops = {
        "outbox-relay": Relay(pool, bus, "inventory").run_forever,
        # Competing consumers (SKIP LOCKED): the recovery path keeps up when many orders need it.
        **{f"verify-consumer-{i}": Consumer(bus, VERIFY_ORDERS, pool, "inventory-verifier", handle).run_forever
           for i in range(settings.consumer_threads)},
        "release-consumer": Consumer(bus, subscription_path(ORDER_EVENTS, INVENTORY_SERVICE_SUBSCRIPTION), pool,
                                     "inventory-releaser", handle).run_forever,
        "bus-stats": bus_stats_loop(bus),
    }
    run_worker("inventory-worker", loops, {"database": lambda: db.ping(pool), "serviceBus": bus_check(settings)},
               metrics_port=settings.metrics_port, on_stop=[bus.close, pool.close])
