"""The order worker: relays the outbox, finalises verified orders, sweeps stuck ones."""

from __future__ import annotations

from valerix.contracts.events import INVENTORY_EVENTS, ORDER_SERVICE_SUBSCRIPTION, Envelope, OrderVerified
from valerix.kit import db, logs
from valerix.kit.bootstrap import bus_check
from valerix.kit.bus import open_bus
from valerix.kit.bus.topology import subscription_path
from valerix.kit.consumer import Consumer, bus_stats_loop
from valerix.kit.outbox import Relay
from valerix.kit.uow import UnitOfWork
from valerix.kit.worker_runtime import every, run_worker
from valerix.order import metrics, service
from valerix.order.settings import OrderSettings

CONSUMER = "order-service"


def handle(uow: UnitOfWork, envelope: Envelope) -> None:
    """Which event goes to which use case; events the order service does not need are ignored."""
    data = envelope.parse_data()
    if isinstance(data, OrderVerified):
        service.apply_verification(uow, data)


def main() -> None:
    settings = OrderSettings()  # type: ignore[call-arg]
    logs.configure("order-worker", settings.log_level)
    pool = db.make_pool(settings.order_database_url.get_secret_value(), name="order-worker",
                        max_size=settings.consumer_threads + 4)
    bus = open_bus(settings)
    policy = service.SweepPolicy(resend_after=settings.sweeper_resend_after_s, fail_after=settings.sweeper_fail_after_s)

    def sweep() -> None:
        with UnitOfWork(pool) as uow:
            service.sweep(uow, policy)
            uow.commit()
        with pool.connection() as conn:
            waiting = conn.execute("SELECT count(*) AS n FROM orders WHERE status = 'pending_verification'").fetchone()
        metrics.PENDING_VERIFICATION.set(waiting["n"] if waiting else 0)

    entity = subscription_path(INVENTORY_EVENTS, ORDER_SERVICE_SUBSCRIPTION)
    loops: dict[str, object] = {
        "outbox-relay": Relay(pool, bus, "order").run_forever,
        # Competing consumers (SKIP LOCKED): the recovery path keeps up when many orders need it.
        **{f"verified-consumer-{i}": Consumer(bus, entity, pool, CONSUMER, handle).run_forever
           for i in range(settings.consumer_threads)},
        "sweeper": every(1.0, sweep),
        "bus-stats": bus_stats_loop(bus),
    }
    run_worker("order-worker", loops, {"database": lambda: db.ping(pool), "serviceBus": bus_check(settings)},
               metrics_port=settings.metrics_port, on_stop=[bus.close, pool.close])


