"""kill -9 of a real relay process at the worst moments: the event still goes out exactly once."""

import time

import pytest

from valerix.contracts.events import INVENTORY_EVENTS, OrderVerified
from valerix.contracts.routing import ORDER_SERVICE
from valerix.kit.bus.topology import subscription_path
from valerix.kit.outbox import HOLD_ENV
from valerix.kit.uow import UnitOfWork

from support import procs

pytestmark = pytest.mark.e2e
SUB = subscription_path(INVENTORY_EVENTS, ORDER_SERVICE.subscription)


def unsent(pool) -> int:
    with pool.connection() as conn:
        return conn.execute("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL").fetchone()["n"]


def on_bus(bus_pool_bus) -> list[str]:
    with bus_pool_bus._pool.connection() as conn:
        return [r["message_id"] for r in conn.execute(
            "SELECT message_id FROM bus_messages WHERE entity = %s ORDER BY seq", (SUB,))]


@pytest.mark.parametrize("stage", ["selected", "published"])
def test_relay_killed_between_commit_and_marking_sent_publishes_exactly_once(stage, service_pool, bus,
                                                                              bus_db_url, tmp_path):
    with UnitOfWork(service_pool) as uow:
        event_ids = [uow.add_event(OrderVerified(orderId=f"o-{i}", outcome="reserved", reservationId=f"r-{i}")).eventId
                     for i in range(3)]
        uow.commit()
    env = {"BUS_BACKEND": "postgres", "BUS_DATABASE_URL": bus_db_url, "RELAY_POLL_SECONDS": "0.2"}
    relay_args = ["-m", "valerix.kit.outbox", "crash-test", service_pool.conninfo]
    marker = tmp_path / "held"
    log = tmp_path / "relay.log"

    first = procs.start(relay_args, {**env, HOLD_ENV: f"{stage}:{marker}"}, log)
    try:
        procs.wait_for_file(marker, first)
        procs.kill9(first)
    finally:
        if first.poll() is None:
            first.kill()
    assert unsent(service_pool) == 3  # the dead relay never marked anything sent
    assert len(on_bus(bus)) == (3 if stage == "published" else 0)

    second = procs.start(relay_args, env, log)
    try:
        deadline = time.monotonic() + 20
        while unsent(service_pool) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert unsent(service_pool) == 0
    finally:
        assert procs.stop(second) == 0  # SIGTERM: the relay finishes its step and exits cleanly
    assert on_bus(bus) == event_ids  # each event once, in commit order
