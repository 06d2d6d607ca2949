"""The bus contract: what every backend must do, run against each (see conftest.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from valerix.contracts.events import Envelope
from valerix.kit.bus.port import EntityNotFound, LockLost


def envelope(n: int = 0) -> Envelope:
    return Envelope(eventType="Probe", data={"n": n})


def drain(bus, entity, *, want: int, wait: float = 10.0):
    got, deadline = [], time.monotonic() + wait
    while len(got) < want and time.monotonic() < deadline:
        got += bus.receive(entity, max_messages=want - len(got), max_wait_seconds=0.5)
    return got


def stats(bus, entity):
    return next(s for s in bus.stats() if s.entity == entity)


def test_topic_fans_out_to_every_subscription(harness):
    bus, sent = harness.bus, envelope()
    bus.publish(harness.topic, sent)
    for sub in harness.subscriptions:
        (got,) = drain(bus, sub, want=1)
        assert got.message_id == sent.eventId
        assert got.envelope == sent
        assert got.delivery_count == 1
        bus.complete(got)
    assert all(stats(bus, s).active == 0 for s in harness.subscriptions)


def test_queue_delivers_in_order_and_completed_messages_are_gone(harness):
    bus = harness.bus
    sent = [envelope(i) for i in range(5)]
    for e in sent:
        bus.publish(harness.queue, e)
    got = drain(bus, harness.queue, want=5)
    assert [m.envelope.data["n"] for m in got] == [0, 1, 2, 3, 4]
    for m in got:
        bus.complete(m)
    assert bus.receive(harness.queue, max_messages=5, max_wait_seconds=0.3) == []
    assert stats(bus, harness.queue).active == 0


def test_competing_consumers_never_share_a_message(harness):
    bus, total = harness.bus, 40
    for i in range(total):
        bus.publish(harness.queue, envelope(i))
    seen: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        while True:
            batch = bus.receive(harness.queue, max_messages=3, max_wait_seconds=0.5)
            if not batch:
                return
            for m in batch:
                with lock:
                    seen.append(m.envelope.data["n"])
                bus.complete(m)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(seen) == list(range(total))


def test_an_expired_lock_redelivers_and_the_old_lock_cannot_settle(harness):
    bus = harness.bus
    bus.publish(harness.queue, envelope())
    (first,) = drain(bus, harness.queue, want=1)
    assert bus.receive(harness.queue, max_wait_seconds=0.2) == []  # locked
    time.sleep(harness.lock_seconds + 0.3)
    (second,) = drain(bus, harness.queue, want=1)
    assert second.message_id == first.message_id
    assert second.delivery_count == 2
    with pytest.raises(LockLost):
        bus.complete(first)
    bus.complete(second)


def test_abandon_redelivers_with_a_higher_delivery_count(harness):
    bus = harness.bus
    bus.publish(harness.queue, envelope())
    (m,) = drain(bus, harness.queue, want=1)
    bus.abandon(m)
    (again,) = drain(bus, harness.queue, want=1)
    assert (again.message_id, again.delivery_count) == (m.message_id, 2)
    bus.complete(again)


def test_abandon_with_retry_after_delays_redelivery(harness):
    bus = harness.bus
    bus.publish(harness.queue, envelope())
    (m,) = drain(bus, harness.queue, want=1)
    bus.abandon(m, retry_after_seconds=1.5)
    started = time.monotonic()
    assert bus.receive(harness.queue, max_wait_seconds=0.5) == []
    (again,) = drain(bus, harness.queue, want=1)
    assert time.monotonic() - started >= 1.2
    bus.complete(again)


def test_dead_letter_after_max_deliveries_without_blocking_others(harness):
    bus = harness.bus
    poison, good = envelope(0), envelope(1)
    bus.publish(harness.queue, poison)
    bus.publish(harness.queue, good)
    handled = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (handled and stats(bus, harness.queue).dead_letter):
        for m in bus.receive(harness.queue, max_messages=5, max_wait_seconds=0.3):
            if m.message_id == poison.eventId:
                bus.abandon(m)
            else:
                handled.append(m.message_id)
                bus.complete(m)
    assert handled == [good.eventId]
    s = stats(bus, harness.queue)
    assert (s.active, s.dead_letter) == (0, 1)
    (dead,) = bus.peek(harness.queue, dead_letter=True)
    assert dead.message_id == poison.eventId
    assert dead.delivery_count == harness.max_deliveries
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"


def test_explicit_dead_letter_keeps_reason_and_resubmit_brings_it_back(harness):
    bus = harness.bus
    sent = envelope()
    bus.publish(harness.queue, sent)
    (m,) = drain(bus, harness.queue, want=1)
    bus.dead_letter(m, "InvalidEnvelope", "no such product")
    assert bus.receive(harness.queue, max_wait_seconds=0.3) == []
    (dead,) = bus.peek(harness.queue, dead_letter=True)
    assert (dead.dead_letter_reason, dead.dead_letter_description) == ("InvalidEnvelope", "no such product")
    assert bus.resubmit(harness.queue, sent.eventId) == 1
    (back,) = drain(bus, harness.queue, want=1)
    assert back.envelope.eventId == sent.eventId
    bus.complete(back)
    assert stats(bus, harness.queue).dead_letter == 0


def test_duplicates_within_the_window_are_dropped(harness):
    bus, sent = harness.bus, envelope()
    bus.publish(harness.queue, sent)
    bus.publish(harness.queue, sent)
    bus.publish(harness.topic, sent)  # the window is per destination
    bus.publish(harness.topic, sent)
    (m,) = drain(bus, harness.queue, want=1)
    bus.complete(m)
    assert bus.receive(harness.queue, max_wait_seconds=0.5) == []
    for sub in harness.subscriptions:
        assert stats(bus, sub).active == 1


def test_a_batch_keeps_its_order_across_destinations_and_drops_its_own_repeats(harness):
    bus = harness.bus
    sent = [envelope(i) for i in range(6)]
    batch = [(harness.queue if i % 2 == 0 else harness.topic, e) for i, e in enumerate(sent)]
    bus.publish_batch([*batch, batch[0], (harness.topic, sent[0])])
    got = drain(bus, harness.queue, want=3)
    assert [m.envelope.data["n"] for m in got] == [0, 2, 4]
    for m in got:
        bus.complete(m)
    assert bus.receive(harness.queue, max_wait_seconds=0.5) == []
    for sub in harness.subscriptions:
        got = drain(bus, sub, want=4)
        assert [m.envelope.data["n"] for m in got] == [1, 3, 5, 0]
        for m in got:
            bus.complete(m)


def test_scheduled_messages_wait_for_their_time(harness):
    bus, sent = harness.bus, envelope()
    bus.publish(harness.queue, sent, scheduled_at=datetime.now(UTC) + timedelta(seconds=1.5))
    assert bus.receive(harness.queue, max_wait_seconds=0.5) == []
    assert stats(bus, harness.queue).scheduled == 1
    (m,) = drain(bus, harness.queue, want=1)
    assert m.message_id == sent.eventId
    bus.complete(m)


def test_receive_wakes_promptly_when_a_message_arrives(harness):
    bus = harness.bus
    got: list = []
    waiter = threading.Thread(target=lambda: got.extend(bus.receive(harness.queue, max_wait_seconds=10)))
    waiter.start()
    time.sleep(0.5)
    started = time.monotonic()
    bus.publish(harness.queue, envelope())
    waiter.join(timeout=15)
    assert len(got) == 1
    assert time.monotonic() - started < 2.0
    bus.complete(got[0])


def test_unknown_entities_are_refused(harness):
    with pytest.raises(EntityNotFound):
        harness.bus.publish("no-such-queue", envelope())
    with pytest.raises(EntityNotFound):
        harness.bus.receive("no-such-queue", max_wait_seconds=0.1)
