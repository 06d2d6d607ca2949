"""Creates the bus entities: in an Azure Service Bus namespace through the management client,
or in bus_db (migrations, then the topology rows) for the embedded bus. Safe to repeat."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.servicebus.management import ServiceBusAdministrationClient, SqlRuleFilter

from valerix.kit import db
from valerix.kit.bus.topology import Topology, contract_topology, subscription_path

log = logging.getLogger(__name__)


def provision_postgres(url: str, topology: Topology | None = None) -> list[str]:
    """Applies the bus migrations and creates or updates the entities; returns their names."""
    import psycopg

    from valerix.kit.bus.postgres import ensure_topology

    topology = topology or contract_topology()
    db.migrate(url, db.migration_files("valerix.kit.bus"))
    with psycopg.connect(url, connect_timeout=10) as conn:
        ensure_topology(conn, topology)
    return [*topology.topics, *topology.receivable()]


def provision_azure(connection_string: str, topology: Topology | None = None) -> list[str]:
    """Creates missing queues, topics and subscriptions. Existing ones are left as they are
    (duplicate detection cannot be switched on after an entity was created)."""
    topology = topology or contract_topology()
    lock = timedelta(seconds=topology.lock_duration_seconds)
    window = timedelta(seconds=topology.duplicate_window_seconds)
    created: list[str] = []
    with ServiceBusAdministrationClient.from_connection_string(connection_string) as admin:
        def create(name: str, make: object, *args: object, **kwargs: object) -> None:
            try:
                make(*args, **kwargs)  # type: ignore[operator]
                created.append(name)
            except ResourceExistsError:
                log.info("bus entity exists", extra={"entity": name})

        for queue in topology.queues:
            create(queue, admin.create_queue, queue, lock_duration=lock,
                   max_delivery_count=topology.max_delivery_count, requires_duplicate_detection=True,
                   duplicate_detection_history_time_window=window, dead_lettering_on_message_expiration=True)
        for topic, subscriptions in topology.topics.items():
            create(topic, admin.create_topic, topic, requires_duplicate_detection=True,
                   duplicate_detection_history_time_window=window)
            for sub in subscriptions:
                path = subscription_path(topic, sub)
                create(path, admin.create_subscription, topic, sub, lock_duration=lock,
                       max_delivery_count=topology.max_delivery_count, dead_lettering_on_message_expiration=True)
                if path in topology.filters:
                    _filter_subscription(admin, topic, sub, topology.filters[path])
    return created


def delete_azure(connection_string: str, topology: Topology) -> None:
    """Removes the topology's entities (the contract tests' throw-away ones)."""
    with ServiceBusAdministrationClient.from_connection_string(connection_string) as admin:
        for queue in topology.queues:
            with contextlib.suppress(ResourceNotFoundError):
                admin.delete_queue(queue)
        for topic in topology.topics:
            with contextlib.suppress(ResourceNotFoundError):
                admin.delete_topic(topic)  # its subscriptions go with it


def subject_filter(subjects: tuple[str, ...]) -> str:
    """The SQL filter of an Azure subscription rule that matches these event types."""
    quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in subjects)
    return f"sys.Label IN ({quoted})"


def _filter_subscription(admin: ServiceBusAdministrationClient, topic: str, sub: str,
                         subjects: tuple[str, ...]) -> None:
    """Replaces the catch-all $Default rule with one that passes only these event types."""
    with contextlib.suppress(ResourceExistsError):
        admin.create_rule(topic, sub, "event-types", filter=SqlRuleFilter(subject_filter(subjects)))
    with contextlib.suppress(ResourceNotFoundError):
        admin.delete_rule(topic, sub, "$Default")
