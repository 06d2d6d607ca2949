"""A real consumer process killed -9 after its effect committed but before it completed the
message; every message delivered again; a poison message among them."""

import time

import pytest

from valerix.contracts.events import VERIFY_ORDERS, Envelope

from support import procs

pytestmark = pytest.mark.e2e


def effects(pool) -> list[int]:
    with pool.connection() as conn:
        return [r["n"] for r in conn.execute("SELECT n FROM effects ORDER BY n")]


def stats(bus):
    return next(s for s in bus.stats() if s.entity == VERIFY_ORDERS)


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert condition()


def test_kill9_redelivery_and_poison(service_pool, bus, bus_db_url, tmp_path):
    sent = [Envelope(eventType="Probe", data={"n": i}) for i in range(5)]
    poison = Envelope(eventType="Probe", data={"n": -1, "poison": True})
    for e in [sent[0], poison, *sent[1:]]:
        bus.publish(VERIFY_ORDERS, e)
    env = {"BUS_DATABASE_URL": bus_db_url}
    args = ["-m", "support.consumer_proc", service_pool.conninfo]
    marker, log = tmp_path / "held", tmp_path / "consumer.log"

    first = procs.start(args, {**env, "CONSUMER_HOLD_FILE": str(marker)}, log)
    try:
        assert procs.wait_for_file(marker, first) == sent[0].eventId
        procs.kill9(first)
    finally:
        if first.poll() is None:
            first.kill()
    assert effects(service_pool) == [0]  # committed, but the message was never completed

    second = procs.start(args, env, log)
    try:
        wait_until(lambda: stats(bus).dead_letter == 1 and stats(bus).active == 0)
        assert effects(service_pool) == [0, 1, 2, 3, 4]  # message 0 came back after its lock expired

        # Every message delivered a second time (the bus forgot their ids): no new effects.
        with bus._pool.connection() as conn:
            conn.execute("DELETE FROM bus_duplicates")
        for e in sent:
            bus.publish(VERIFY_ORDERS, e)
        wait_until(lambda: stats(bus).active == 0)
        assert effects(service_pool) == [0, 1, 2, 3, 4]
    finally:
        assert procs.stop(second) == 0
    (dead,) = bus.peek(VERIFY_ORDERS, dead_letter=True)
    assert dead.message_id == poison.eventId
    assert (dead.delivery_count, dead.dead_letter_reason) == (3, "MaxDeliveryCountExceeded")
