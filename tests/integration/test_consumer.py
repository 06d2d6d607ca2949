import threading
import time

from valerix.contracts.events import VERIFY_ORDERS, Envelope
from valerix.kit import metrics
from valerix.kit.consumer import Consumer, sample_bus_stats


def probe(n: int, **extra) -> Envelope:
    return Envelope(eventType="Probe", data={"n": n, **extra})


def record_effect(uow, envelope: Envelope) -> None:
    if envelope.data.get("poison"):
        raise ValueError("cannot handle this one")
    uow.conn.execute("INSERT INTO effects (event_id, n) VALUES (%s, %s)", (envelope.eventId, envelope.data["n"]))


def effects(pool) -> list[int]:
    with pool.connection() as conn:
        return [r["n"] for r in conn.execute("SELECT n FROM effects ORDER BY n")]


def stats(bus, entity):
    return next(s for s in bus.stats() if s.entity == entity)


def consumer(bus, pool, **kwargs) -> Consumer:
    return Consumer(bus, VERIFY_ORDERS, pool, "test-consumer", record_effect,
                    **{"backoff_base": 0.2, "wait_seconds": 0.3, **kwargs})


def test_a_handled_message_has_its_effect_and_is_completed(bus, service_pool):
    bus.publish(VERIFY_ORDERS, probe(1))
    assert consumer(bus, service_pool).step(wait_seconds=5) == 1
    assert effects(service_pool) == [1]
    assert stats(bus, VERIFY_ORDERS).active == 0


def test_every_message_delivered_twice_has_its_effect_once(bus, service_pool):
    """Redelivery of every message: the same event id published again after the duplicate
    window (here: the bus forgot it) and a lock that expires before completion."""
    sent = [probe(i) for i in range(5)]
    c = consumer(bus, service_pool)
    for e in sent:
        bus.publish(VERIFY_ORDERS, e)
    while c.step(wait_seconds=1):
        pass
    with bus._pool.connection() as conn:  # forget the ids, so the bus delivers each one again
        conn.execute("DELETE FROM bus_duplicates")
    for e in sent:
        bus.publish(VERIFY_ORDERS, e)
    while c.step(wait_seconds=1):
        pass
    assert effects(service_pool) == [0, 1, 2, 3, 4]
    with service_pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM inbox").fetchone()["n"] == 5
    assert stats(bus, VERIFY_ORDERS).active == 0


def test_a_slow_handler_that_loses_its_lock_still_has_one_effect(bus, service_pool):
    """Two consumers get the same message (the first one's lock expired mid-handler); the
    inbox makes the second a no-op even while the first has not committed yet."""
    release = threading.Event()

    def slow(uow, envelope):
        record_effect(uow, envelope)
        release.wait(10)

    bus.publish(VERIFY_ORDERS, probe(1))
    first = Consumer(bus, VERIFY_ORDERS, service_pool, "test-consumer", slow, wait_seconds=5)
    thread = threading.Thread(target=first.step)
    thread.start()
    time.sleep(2.5)  # longer than the 2 s lock
    second = consumer(bus, service_pool)
    waiter = threading.Thread(target=second.step, kwargs={"wait_seconds": 5})
    waiter.start()
    time.sleep(0.5)
    release.set()
    thread.join(timeout=15)
    waiter.join(timeout=15)
    assert effects(service_pool) == [1]
    assert stats(bus, VERIFY_ORDERS).active == 0


def test_a_poison_message_is_dead_lettered_after_max_deliveries_and_blocks_nothing(bus, service_pool):
    bus.publish(VERIFY_ORDERS, probe(0, poison=True))
    for i in range(1, 6):
        bus.publish(VERIFY_ORDERS, probe(i))
    c = consumer(bus, service_pool, batch_size=2)
    c.step(wait_seconds=2)  # the poison message and one good one
    c.step(wait_seconds=2)
    assert effects(service_pool)[:2] == [1, 2]  # the others moved on while the poison one waits
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and stats(bus, VERIFY_ORDERS).dead_letter == 0:
        c.step(wait_seconds=0.5)
    assert effects(service_pool) == [1, 2, 3, 4, 5]
    s = stats(bus, VERIFY_ORDERS)
    assert (s.active, s.scheduled, s.dead_letter) == (0, 0, 1)
    (dead,) = bus.peek(VERIFY_ORDERS, dead_letter=True)
    assert dead.body["data"]["poison"] is True
    assert dead.delivery_count == 3


def test_a_body_that_is_no_envelope_is_dead_lettered_at_once(bus, service_pool):
    with bus._pool.connection() as conn:
        conn.execute("INSERT INTO bus_messages (entity, message_id, body) VALUES (%s, 'junk', '[1, 2]')",
                     (VERIFY_ORDERS,))
    consumer(bus, service_pool).step(wait_seconds=2)
    (dead,) = bus.peek(VERIFY_ORDERS, dead_letter=True)
    assert dead.dead_letter_reason == "InvalidEnvelope"
    assert dead.delivery_count == 1


def test_run_forever_handles_until_stopped(bus, service_pool):
    stop = threading.Event()
    thread = threading.Thread(target=consumer(bus, service_pool).run_forever, args=(stop,))
    thread.start()
    try:
        for i in range(3):
            bus.publish(VERIFY_ORDERS, probe(i))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(effects(service_pool)) < 3:
            time.sleep(0.1)
        assert effects(service_pool) == [0, 1, 2]
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_bus_stats_become_gauges(bus):
    bus.publish(VERIFY_ORDERS, probe(1))
    sample_bus_stats(bus)
    assert metrics.BUS_DEPTH.labels(entity=VERIFY_ORDERS)._value.get() == 1
    assert metrics.BUS_DEAD_LETTERS.labels(entity=VERIFY_ORDERS)._value.get() == 0




def test_what_can_never_be_processed_is_dead_lettered_at_once(bus, service_pool):
    """An unknown event type or data that does not fit its type: no retry can help."""
    from valerix.contracts.routing import INVENTORY_SERVICE
    from valerix.kit.service_worker import dispatcher

    handle = dispatcher(INVENTORY_SERVICE, {t: lambda uow, data: None for t in INVENTORY_SERVICE.receives})
    bus.publish(VERIFY_ORDERS, probe(1))
    bus.publish(VERIFY_ORDERS, Envelope(eventType="VerifyOrder", data={"orderId": 7}))
    Consumer(bus, VERIFY_ORDERS, service_pool, "test-consumer", handle).step(wait_seconds=2)
    dead = sorted(bus.peek(VERIFY_ORDERS, dead_letter=True), key=lambda m: m.sequence_number)
    assert [(m.dead_letter_reason, m.delivery_count) for m in dead] == [("UnknownEventType", 1),
                                                                         ("InvalidEventData", 1)]


def test_a_transient_failure_is_retried_past_the_old_delivery_limit_until_it_succeeds(bus_db_url, service_pool):
    """The contract's entities dead-letter only as a last resort: a handler failing 15 times
    (an outage outlasting the 10 deliveries that used to dead-letter a release) still gets
    its effect once, and nothing is dead-lettered."""
    from dataclasses import replace

    from valerix.contracts.routing import TOPOLOGY
    from valerix.kit.bus.postgres import PostgresBus

    failures = {"left": 15}

    def flaky(uow, envelope):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("the database is down")
        record_effect(uow, envelope)

    real = PostgresBus(bus_db_url, topology=replace(TOPOLOGY, lock_duration_seconds=2.0), poll_seconds=0.1)
    try:
        real.publish(VERIFY_ORDERS, probe(1))
        c = Consumer(real, VERIFY_ORDERS, service_pool, "test-consumer", flaky, backoff_base=0.01, backoff_cap=0.05)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not effects(service_pool):
            c.step(wait_seconds=0.2)
        assert effects(service_pool) == [1]
        assert failures["left"] == 0
        s = stats(real, VERIFY_ORDERS)
        assert (s.active, s.scheduled, s.dead_letter) == (0, 0, 0)
    finally:
        real.close()
