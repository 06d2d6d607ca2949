"""Bus fixtures shared by the outbox, consumer and relay-crash tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from valerix.contracts.routing import TOPOLOGY
from valerix.kit import db
from valerix.kit.bus.postgres import PostgresBus
from valerix.kit.bus.topology import Topology

# The seed's entities with a short lock and few deliveries, so the tests run in seconds.
FAST = Topology(queues=TOPOLOGY.queues, topics=TOPOLOGY.topics, lock_duration_seconds=2.0,
                max_delivery_count=3, duplicate_window_seconds=600)


@pytest.fixture
def bus_db_url(new_database) -> str:
    url = new_database("bus")
    db.migrate(url, db.migration_files("valerix.kit.bus"))
    return url


@pytest.fixture
def bus(bus_db_url) -> Iterator[PostgresBus]:
    b = PostgresBus(bus_db_url, topology=FAST, poll_seconds=0.2)
    yield b
    b.close()


@pytest.fixture
def service_pool(new_database) -> Iterator[ConnectionPool[Any]]:
    """A service database with only the kit tables (outbox, inbox) plus a probe table."""
    url = new_database("svc")
    db.migrate(url, db.migration_files("valerix.kit"))
    pool = db.make_pool(url, name="test-svc", max_size=10)
    pool.wait(timeout=10)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE effects (event_id text NOT NULL, n integer NOT NULL)")
    yield pool
    pool.close()
