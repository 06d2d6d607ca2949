"""The order worker: relays the outbox, finalises verified orders, sweeps stuck ones, and
asserts final orders' states to inventory (the reconciler)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from valerix.contracts.events import INVENTORY_EVENTS
from valerix.contracts.routing import ORDER_SERVICE
from valerix.kit.bus import Bus
from valerix.kit.bus.topology import subscription_path
from valerix.kit.retention import Retention
from valerix.kit.service_worker import run_service_worker, subscribe
from valerix.kit.uow import UnitOfWork
from valerix.kit.worker_runtime import Loop, every
from valerix.order import db, metrics, service
from valerix.order.handlers import HANDLERS
from valerix.order.settings import OrderSettings

CONSUMER = "order-service"


def main() -> None:
    settings = OrderSettings()  # type: ignore[call-arg]
    policy = service.SweepPolicy(resend_after=settings.sweeper_resend_after_s, fail_after=settings.sweeper_fail_after_s)
    reconciling = service.ReconcilePolicy(after=settings.reconcile_after_s)
    verdicts = subscription_path(INVENTORY_EVENTS, ORDER_SERVICE.subscription)

    def loops(pool: ConnectionPool[Any], bus: Bus) -> dict[str, Loop]:
        def sweep() -> None:
            with UnitOfWork(pool) as uow:
                service.sweep(uow, policy)
                uow.commit()
                metrics.PENDING_VERIFICATION.set(db.count_pending_verification(uow.conn))
                metrics.OLDEST_UNFINISHED.set(db.oldest_unfinished_age(uow.conn))

        def reconcile() -> None:
            while True:
                with UnitOfWork(pool) as uow:
                    asserted = service.assert_final_states(uow, reconciling)
                    uow.commit()
                if asserted < reconciling.batch:
                    return

        return {**subscribe(bus, pool, ORDER_SERVICE, HANDLERS, {verdicts: (CONSUMER, settings.consumer_threads)},
                          backoff=(settings.consumer_backoff_base_s, settings.consumer_backoff_cap_s)),
                "sweeper": every(1.0, sweep),
                "reconciler": every(settings.reconcile_interval_s, reconcile)}

    keys = Retention("idempotency_keys", timedelta(seconds=settings.idempotency_retention_s), db.TRIM_IDEMPOTENCY_KEYS)
    run_service_worker("order", settings, settings.order_database_url.get_secret_value(), loops,
                       retentions=[keys], tables=db.TABLES)
