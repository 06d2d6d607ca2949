"""What every service's processes have in common. The api: logging, its database pool,
readiness on database and bus. The worker: the same plus the bus, the outbox relay, bus
statistics and the consumers of what the contract routes to the service; the service adds
its handler table and its own loops."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from valerix.contracts import routing
from valerix.contracts.events import Envelope, EventData
from valerix.contracts.routing import Subscriber
from valerix.kit import db, gc_tuning, logs, retention
from valerix.kit.bus import Bus, bus_check, open_bus
from valerix.kit.bus.port import TrimmableBus
from valerix.kit.consumer import Consumer, Handler, Unprocessable, bus_stats_loop
from valerix.kit.health import Check
from valerix.kit.logs import order_id as log_order_id
from valerix.kit.outbox import Relay
from valerix.kit.settings import CommonSettings
from valerix.kit.uow import UnitOfWork, publish_only
from valerix.kit.worker_runtime import Loop, every, run_worker

LoopFactory = Callable[[ConnectionPool[Any], Bus], dict[str, Loop]]
# A service's handler table: event type -> the use case that runs it inside the consumer's unit of work.
Handlers = Mapping[type[EventData], Callable[[UnitOfWork, Any], None]]


def dispatcher(subscriber: Subscriber, handlers: Handlers) -> Handler:
    """The consumers' handler: looks the event's type up in the table. The table must cover
    exactly what the contract routes to the service, so neither can drift from the other."""
    if set(handlers) != set(subscriber.receives):
        raise ValueError(f"{subscriber.service} handles {sorted(t.__name__ for t in handlers)} but the contract "
                         f"routes {sorted(t.__name__ for t in subscriber.receives)} to it")

    def handle(uow: UnitOfWork, envelope: Envelope) -> None:
        try:
            data = envelope.parse_data()
        except KeyError:
            raise Unprocessable("UnknownEventType", f"no event type {envelope.eventType!r}") from None
        except ValidationError as error:
            raise Unprocessable("InvalidEventData", str(error)) from None
        log_order_id.set(getattr(data, "orderId", None))
        handler = handlers.get(type(data))
        if handler is not None:  # an event the service does not act on (an unfiltered subscription)
            handler(uow, data)

    return handle


def subscribe(bus: Bus, pool: ConnectionPool[Any], subscriber: Subscriber, handlers: Handlers,
              consumers: Mapping[str, tuple[str, int]], backoff: tuple[float, float] = (1.0, 60.0)) -> dict[str, Loop]:
    """The consumer loops of every entity the contract routes to ``subscriber``; ``consumers``
    names each entity's consumer (its inbox key) and how many of them compete for it."""
    if set(consumers) != set(subscriber.entities()):
        raise ValueError(f"{subscriber.service} consumes {sorted(consumers)}, the contract routes "
                         f"{sorted(subscriber.entities())}")
    handle = dispatcher(subscriber, handlers)
    loops: dict[str, Loop] = {}
    for entity, (name, count) in consumers.items():
        loops.update(competing_consumers(bus, entity, pool, name, handle, count, backoff))
    return loops


def competing_consumers(bus: Bus, entity: str, pool: ConnectionPool[Any], name: str, handler: Handler,
                        count: int, backoff: tuple[float, float] = (1.0, 60.0)) -> dict[str, Loop]:
    """``count`` consumers of one entity (SKIP LOCKED shares the messages), so the recovery
    path keeps up when many orders need it."""
    base, cap = backoff
    return {f"{name}-{i}": Consumer(bus, entity, pool, name, handler, backoff_base=base, backoff_cap=cap).run_forever
            for i in range(count)}


def api_basics(service: str, settings: CommonSettings,
               database_url: str) -> tuple[ConnectionPool[Any], dict[str, Check]]:
    """An api process's logging, garbage collector, event publication, database pool and
    readiness checks (database, bus)."""
    logs.configure(service, settings.log_level)
    gc_tuning.tune_for_serving(settings.gc_young_threshold)
    publish_only(routing.published_events(settings.publish_events))
    pool = db.make_pool(database_url, name=f"{service}-api", max_size=settings.db_pool_size)
    return pool, {"database": lambda: db.ping(pool), "serviceBus": bus_check(settings)}


def housekeeping(pool: ConnectionPool[Any], bus: Bus, service: str, settings: CommonSettings,
                 retentions: Sequence[retention.Retention] = (), tables: Sequence[str] = ()) -> retention.Housekeeping:
    """The kit's share of a service's housekeeping: its outbox and inbox, the embedded bus's
    dead letters (every worker may trim them; a repeat deletes nothing), and their sizes."""
    extra: list[Callable[[], dict[str, int]]] = []
    if isinstance(bus, TrimmableBus):
        keep_dead = timedelta(seconds=settings.dead_letter_retention_s)
        extra.append(lambda: {"bus_dead_letters": bus.trim(keep_dead)})
    return retention.Housekeeping(
        pool, service, [retention.outbox(timedelta(seconds=settings.outbox_retention_s)),
                        retention.inbox(timedelta(seconds=settings.inbox_retention_s)), *retentions],
        ["outbox", "inbox", *tables], extra)


def run_service_worker(service: str, settings: CommonSettings, database_url: str, loops: LoopFactory, *,
                       retentions: Sequence[retention.Retention] = (), tables: Sequence[str] = ()) -> None:
    """``retentions``: what the service's own tables keep only for a while; ``tables``: the
    service's tables whose sizes housekeeping reports."""
    name = f"{service}-worker"
    logs.configure(name, settings.log_level)
    publish_only(routing.published_events(settings.publish_events))
    pool = db.make_pool(database_url, name=name, max_size=settings.consumer_threads + 4)
    bus = open_bus(settings)
    all_loops = {"outbox-relay": Relay(pool, bus, service).run_forever, **loops(pool, bus),
                 "bus-stats": bus_stats_loop(bus),
                 "housekeeping": every(settings.housekeeping_interval_s,
                                       housekeeping(pool, bus, service, settings, retentions, tables).step,
                                       message="housekeeping failed")}
    run_worker(name, all_loops, {"database": lambda: db.ping(pool), "serviceBus": bus.ping},
               metrics_port=settings.metrics_port, on_stop=[bus.close, pool.close])
