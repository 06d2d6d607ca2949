"""The order worker: relays the outbox, finalises verified orders, sweeps stuck ones."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from valerix.contracts.events import INVENTORY_EVENTS, ORDER_SERVICE_SUBSCRIPTION, Envelope, OrderVerified
from valerix.kit.bus import Bus
from valerix.kit.bus.topology import subscription_path
from valerix.kit.service_worker import competing_consumers, run_service_worker
from valerix.kit.uow import UnitOfWork
from valerix.kit.worker_runtime import Loop, every
from valerix.order import db, metrics, service
from valerix.order.settings import OrderSettings

CONSUMER = "order-service"


def handle(uow: UnitOfWork, envelope: Envelope) -> None:
    """Which event goes to which use case; events the order service does not need are ignored."""
    data = envelope.parse_data()
    if isinstance(data, OrderVerified):
        service.apply_verification(uow, data)


def main() -> None:
    settings = OrderSettings()  # type: ignore[call-arg]
    policy = service.SweepPolicy(resend_after=settings.sweeper_resend_after_s, fail_after=settings.sweeper_fail_after_s)

    def loops(pool: ConnectionPool[Any], bus: Bus) -> dict[str, Loop]:
        def sweep() -> None:
            with UnitOfWork(pool) as uow:
                service.sweep(uow, policy)
                uow.commit()
                metrics.PENDING_VERIFICATION.set(db.count_pending_verification(uow.conn))

        entity = subscription_path(INVENTORY_EVENTS, ORDER_SERVICE_SUBSCRIPTION)
        return {**competing_consumers(bus, entity, pool, CONSUMER, handle, settings.consumer_threads),
                "sweeper": every(1.0, sweep)}

    run_service_worker("order", settings, settings.order_database_url.get_secret_value(), loops)
