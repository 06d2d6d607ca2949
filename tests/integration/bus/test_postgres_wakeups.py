"""Embedded-bus specifics: LISTEN/NOTIFY wake-ups, and polling while the listener is gone."""

import threading
import time
import uuid

from valerix.contracts.events import Envelope
from valerix.kit.bus.postgres import PostgresBus
from valerix.kit.bus.topology import Topology


def timed_receive(bus, queue, wait):
    got, started = [], time.monotonic()
    thread = threading.Thread(target=lambda: got.extend(bus.receive(queue, max_wait_seconds=wait)))
    thread.start()
    return thread, got, started


def test_receive_falls_back_to_polling_when_the_listener_dies_and_recovers(bus_url):
    queue = f"q-{uuid.uuid4().hex[:8]}"
    bus = PostgresBus(bus_url, topology=Topology(queues=(queue,), topics={}), poll_seconds=1.5)
    try:
        assert bus.receive(queue, max_wait_seconds=0.3) == []  # starts the listener
        time.sleep(0.5)
        bus._listener._reconnect = 30  # keep it down for this test
        with bus._pool.connection() as conn:
            killed = conn.execute("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                                  "WHERE query = 'LISTEN \"bus\"' AND pid <> pg_backend_pid()").fetchall()
        assert killed and all(r["ok"] for r in killed)
        time.sleep(0.5)
        assert not bus._listener.connected

        thread, got, started = timed_receive(bus, queue, 10)
        time.sleep(0.2)
        bus.publish(queue, Envelope(eventType="Probe", data={}))
        thread.join(timeout=15)
        assert len(got) == 1, "polling must find the message without a notification"
        assert time.monotonic() - started <= 1.5 + 1.0
        bus.complete(got[0])
    finally:
        bus.close()
