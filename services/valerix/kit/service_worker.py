"""What every service's worker process has in common: its database pool, the bus, the outbox
relay, bus statistics, readiness on database and bus; the service adds its own loops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg_pool import ConnectionPool

from valerix.kit import db, logs
from valerix.kit.bus import Bus, open_bus
from valerix.kit.consumer import Consumer, Handler, bus_stats_loop
from valerix.kit.outbox import Relay
from valerix.kit.settings import CommonSettings
from valerix.kit.worker_runtime import Loop, run_worker

LoopFactory = Callable[[ConnectionPool[Any], Bus], dict[str, Loop]]


def competing_consumers(bus: Bus, entity: str, pool: ConnectionPool[Any], name: str, handler: Handler,
                        count: int) -> dict[str, Loop]:
    """``count`` consumers of one entity (SKIP LOCKED shares the messages), so the recovery
    path keeps up when many orders need it."""
    return {f"{name}-{i}": Consumer(bus, entity, pool, name, handler).run_forever for i in range(count)}


def run_service_worker(service: str, settings: CommonSettings, database_url: str, loops: LoopFactory) -> None:
    name = f"{service}-worker"
    logs.configure(name, settings.log_level)
    pool = db.make_pool(database_url, name=name, max_size=settings.consumer_threads + 4)
    bus = open_bus(settings)
    all_loops = {"outbox-relay": Relay(pool, bus, service).run_forever, **loops(pool, bus),
                 "bus-stats": bus_stats_loop(bus)}
    run_worker(name, all_loops, {"database": lambda: db.ping(pool), "serviceBus": bus.ping},
               metrics_port=settings.metrics_port, on_stop=[bus.close, pool.close])
