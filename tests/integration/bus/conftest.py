"""One contract suite, every backend: postgres always, Azure Service Bus only with a namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from valerix.kit import db
from valerix.kit.bus.port import Bus
from valerix.kit.bus.topology import Topology, subscription_path

AZURE_ENV = "SERVICE_BUS_CONNECTION_STRING"


@dataclass
class Harness:
    bus: Bus
    queue: str
    topic: str
    subscriptions: list[str]  # receivable paths of the topic's subscriptions
    lock_seconds: float
    max_deliveries: int


@pytest.fixture(scope="session")
def bus_url(pg, tmp_path_factory) -> str:
    from valerix.kit import embedded_pg

    url = embedded_pg.provision_database(pg.admin_url, "bus_contract", "bus_contract_svc",
                                         embedded_pg.new_password())
    db.migrate(url, db.migration_files("valerix.kit.bus"))
    return url


@pytest.fixture(params=["postgres", "azure"])
def harness(request, bus_url) -> Iterator[Harness]:
    suffix = uuid.uuid4().hex[:8]
    if request.param == "postgres":
        from valerix.kit.bus.postgres import PostgresBus

        topology = Topology(queues=(f"q-{suffix}",), topics={f"t-{suffix}": ("a", "b")},
                            lock_duration_seconds=1.0, max_delivery_count=3, duplicate_window_seconds=60)
        bus: Bus = PostgresBus(bus_url, topology=topology, poll_seconds=0.2)
        yield _harness(bus, topology)
        bus.close()
        return
    connection = os.environ.get(AZURE_ENV)
    if not connection:
        pytest.skip(f"{AZURE_ENV} is not set: the Azure Service Bus run needs a namespace")
    from valerix.kit.bus import provision
    from valerix.kit.bus.azure import AzureBus

    # Azure's shortest lock is 5 s.
    topology = Topology(queues=(f"q-{suffix}",), topics={f"t-{suffix}": ("a", "b")},
                        lock_duration_seconds=5.0, max_delivery_count=3, duplicate_window_seconds=60)
    provision.provision_azure(connection, topology)
    bus = AzureBus(connection)
    try:
        yield _harness(bus, topology)
    finally:
        bus.close()
        provision.delete_azure(connection, topology)


def _harness(bus: Bus, topology: Topology) -> Harness:
    (topic, subs), = topology.topics.items()
    return Harness(bus=bus, queue=topology.queues[0], topic=topic,
                   subscriptions=[subscription_path(topic, s) for s in subs],
                   lock_seconds=topology.lock_duration_seconds, max_deliveries=topology.max_delivery_count)
