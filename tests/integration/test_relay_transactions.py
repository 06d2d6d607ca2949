"""The relay never holds a database transaction open while the broker is slow: the real
embedded bus, wrapped to take its time, and pg_stat_activity watched during the call."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from valerix.contracts.events import LowStockAlert
from valerix.kit import db
from valerix.kit.outbox import Relay
from valerix.kit.uow import UnitOfWork

RELAY_APP = "relay-under-test"
OPEN_TRANSACTIONS = """
SELECT count(*) AS n, coalesce(max(extract(epoch FROM now() - xact_start)), 0) AS oldest
FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL
"""


class SlowBus:
    """The real bus, but every publish first waits ``delay`` seconds (a throttled broker) and
    looks at the relay's database meanwhile."""

    def __init__(self, bus: Any, conninfo: str, delay: float) -> None:
        self._bus, self._conninfo, self._delay = bus, conninfo, delay
        self.seen: list[tuple[int, float]] = []
        self.in_call = threading.Event()

    def publish_batch(self, messages: Any) -> None:
        self.in_call.set()
        deadline = time.monotonic() + self._delay
        with psycopg.connect(self._conninfo, autocommit=True) as watcher:
            while time.monotonic() < deadline:
                row = watcher.execute(OPEN_TRANSACTIONS, (RELAY_APP,)).fetchone()
                self.seen.append((int(row[0]), float(row[1])))
                time.sleep(0.1)
        self._bus.publish_batch(messages)

    def publish(self, destination: str, envelope: Any) -> None:
        self.publish_batch([(destination, envelope)])


def commit(pool, n: int) -> list[str]:
    with UnitOfWork(pool) as uow:
        ids = [uow.add_event(LowStockAlert(productId=f"p-{i}", currentStock=i, threshold=10)).eventId
               for i in range(n)]
        uow.commit()
    return ids


def conninfo(pool) -> str:
    info = pool.conninfo
    return info if isinstance(info, str) else info()


def received(bus, want: int) -> list[str]:
    from valerix.contracts.events import INVENTORY_EVENTS
    from valerix.contracts.routing import ORDER_SERVICE
    from valerix.kit.bus.topology import subscription_path

    entity = subscription_path(INVENTORY_EVENTS, ORDER_SERVICE.subscription)
    got: list[str] = []
    deadline = time.monotonic() + 10
    while len(got) < want and time.monotonic() < deadline:
        for message in bus.receive(entity, max_messages=50, max_wait_seconds=0.3):
            got.append(message.message_id)
            bus.complete(message)
    return got


def test_no_transaction_is_open_while_the_broker_takes_its_time(service_pool, bus):
    ids = commit(service_pool, 3) + commit(service_pool, 2)
    relay_pool = db.make_pool(conninfo(service_pool), name=RELAY_APP, max_size=2)
    slow = SlowBus(bus, conninfo(service_pool), delay=2.0)
    try:
        assert Relay(relay_pool, slow, "slow-test").step() == 5  # type: ignore[arg-type]
    finally:
        relay_pool.close()
    assert len(slow.seen) >= 5
    assert all(n == 0 for n, _ in slow.seen), slow.seen   # not one transaction open during the call
    assert received(bus, 5) == ids                        # in commit order


def test_a_second_relay_waits_for_the_lease_of_the_batch_in_flight(service_pool, bus):
    commit(service_pool, 4)
    relay_pool = db.make_pool(conninfo(service_pool), name=RELAY_APP, max_size=2)
    slow = SlowBus(bus, conninfo(service_pool), delay=1.5)
    first = threading.Thread(target=Relay(relay_pool, slow, "slow-test").step)  # type: ignore[arg-type]
    first.start()
    try:
        assert slow.in_call.wait(10)
        assert Relay(service_pool, bus, "other").step() == 0   # nothing claimed behind the batch in flight
    finally:
        first.join(timeout=20)
        relay_pool.close()
    assert len(received(bus, 4)) == 4


def test_a_lease_left_by_a_dead_relay_expires_and_the_batch_goes_out(service_pool, bus):
    ids = commit(service_pool, 2)
    dead = Relay(service_pool, bus, "dead", lease_seconds=1.0)
    assert len(dead._claim()) == 2   # claimed, then "killed" before publishing
    survivor = Relay(service_pool, bus, "survivor")
    assert survivor.step() == 0
    deadline = time.monotonic() + 10
    published = 0
    while not published and time.monotonic() < deadline:
        time.sleep(0.2)
        published = survivor.step()
    assert published == 2
    assert received(bus, 2) == ids
