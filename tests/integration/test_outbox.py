import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg

from valerix.contracts.events import INVENTORY_EVENTS, LowStockAlert
from valerix.contracts.routing import ORDER_SERVICE
from valerix.kit import metrics
from valerix.kit.bus.topology import subscription_path
from valerix.kit.outbox import Relay
from valerix.kit.uow import UnitOfWork

SUB = subscription_path(INVENTORY_EVENTS, ORDER_SERVICE.subscription)


def alert(n: int) -> LowStockAlert:
    return LowStockAlert(productId=f"p-{n}", currentStock=n, threshold=10)


def commit_events(pool, *ns: int) -> list[str]:
    with UnitOfWork(pool) as uow:
        ids = [uow.add_event(alert(n)).eventId for n in ns]
        uow.commit()
    return ids


def received_ids(bus, want: int, wait: float = 10.0) -> list[str]:
    got = []
    deadline = time.monotonic() + wait
    while len(got) < want and time.monotonic() < deadline:
        for m in bus.receive(SUB, max_messages=50, max_wait_seconds=0.3):
            got.append(m.message_id)
            bus.complete(m)
    return got


def unsent(pool) -> int:
    with pool.connection() as conn:
        return conn.execute("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL").fetchone()["n"]


def test_step_publishes_committed_rows_in_order_and_marks_them_sent(service_pool, bus):
    ids = commit_events(service_pool, 1, 2) + commit_events(service_pool, 3)
    relay = Relay(service_pool, bus, "test")
    assert relay.step() == 3
    assert unsent(service_pool) == 0
    assert relay.step() == 0
    assert received_ids(bus, 3) == ids
    assert metrics.OUTBOX_BACKLOG.labels(service="test")._value.get() == 0


def test_rolled_back_events_are_never_published(service_pool, bus):
    with UnitOfWork(service_pool) as uow:
        uow.add_event(alert(1))
        uow.rollback()
    assert Relay(service_pool, bus, "test").step() == 0


def test_rows_of_a_running_transaction_hold_back_later_rows(service_pool, bus):
    """A transaction that began earlier and is still open keeps later commits waiting, so
    its row can never end up behind them."""
    relay = Relay(service_pool, bus, "test")
    with psycopg.connect(service_pool.conninfo) as slow:
        slow.execute("INSERT INTO effects VALUES ('x', 0)")  # takes its xid now
        later = commit_events(service_pool, 2)
        assert relay.step() == 0
        assert unsent(service_pool) == 1
        slow.rollback()
    assert relay.step() == 1
    assert received_ids(bus, 1) == later


def test_a_held_event_goes_out_when_due_and_later_rows_do_not_wait_for_it(service_pool, bus):
    relay = Relay(service_pool, bus, "test")
    with UnitOfWork(service_pool) as uow:
        held = uow.add_event(alert(1), hold_seconds=1.0).eventId
        uow.commit()
    later = commit_events(service_pool, 2)
    assert relay.step() == 1
    assert received_ids(bus, 1) == later
    assert relay.step() == 0 and unsent(service_pool) == 1
    time.sleep(1.1)
    assert relay.step() == 1
    assert received_ids(bus, 1) == [held]


def test_a_held_event_is_withdrawn_until_the_relay_takes_it(service_pool, bus):
    fixed = "6f2f3f0e-1111-4c3a-9a55-000000000001"
    with UnitOfWork(service_pool) as uow:
        uow.add_event(alert(1), event_id=fixed, hold_seconds=0.2)
        taken = uow.add_event(alert(2), hold_seconds=0.2).eventId
        uow.commit()
    time.sleep(0.3)
    with service_pool.connection() as conn:   # the relay has leased the second (it is publishing it)
        conn.execute("UPDATE outbox SET leased_until = now() + interval '10 s' WHERE event_id = %s", (taken,))
    with UnitOfWork(service_pool) as uow:
        uow.withdraw([fixed, taken])
        uow.commit()
    with service_pool.connection() as conn:
        left = [str(r["event_id"]) for r in conn.execute("SELECT event_id FROM outbox")]
    assert left == [taken]


def test_a_bus_failure_keeps_rows_for_the_next_attempt(service_pool, bus):
    ids = commit_events(service_pool, 1)

    class Down:
        def publish(self, *args, **kwargs):
            raise ConnectionError("bus down")

    relay = Relay(service_pool, Down(), "test")  # type: ignore[arg-type]
    try:
        relay.step()
        raise AssertionError("expected the step to fail")
    except RuntimeError:
        pass
    with service_pool.connection() as conn:
        row = conn.execute("SELECT attempts, last_error, sent_at FROM outbox").fetchone()
    assert row["attempts"] == 1 and "bus down" in row["last_error"] and row["sent_at"] is None
    assert Relay(service_pool, bus, "test").step() == 1
    assert received_ids(bus, 1) == ids


def test_republishing_after_a_crash_is_dropped_by_the_bus(service_pool, bus):
    ids = commit_events(service_pool, 1)
    relay = Relay(service_pool, bus, "test")
    relay.step()
    with service_pool.connection() as conn:  # as if the relay died before marking the row sent
        conn.execute("UPDATE outbox SET sent_at = NULL")
    assert relay.step() == 1
    assert received_ids(bus, 2, wait=1.5) == ids


def test_only_one_relay_publishes_at_a_time(service_pool, bus):
    commit_events(service_pool, *range(30))
    relays = [Relay(service_pool, bus, "test", batch_size=5) for _ in range(3)]
    counts = [0, 0, 0]

    deadline = time.monotonic() + 20

    def run(i):
        while unsent(service_pool) and time.monotonic() < deadline:
            counts[i] += relays[i].step()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 30  # a row published by two relays would count twice
    assert len(received_ids(bus, 30)) == 30


@contextlib.contextmanager
def running(relay: Relay) -> Iterator[None]:
    """The relay's run_forever in a thread; it must stop promptly when told to."""
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_run_forever_publishes_within_its_poll_and_stops_promptly(service_pool, bus):
    with running(Relay(service_pool, bus, "test", poll_seconds=0.2)):
        time.sleep(0.5)
        ids = commit_events(service_pool, 7)
        assert received_ids(bus, 1) == ids


def test_an_idle_relay_slows_down_and_picks_up_again(service_pool, bus, monkeypatch):
    relay = Relay(service_pool, bus, "test", poll_seconds=0.02, idle_poll_seconds=0.16)
    steps: list[float] = []
    step = relay.step

    def counted() -> int:
        steps.append(time.monotonic())
        return step()

    monkeypatch.setattr(relay, "step", counted)
    with running(relay):
        time.sleep(1.6)
        idle_steps = len(steps)
        # 0.02, 0.04, 0.08, then 0.16 s apart: about a dozen polls, not the 80 of a fixed 20 ms poll.
        assert 5 <= idle_steps <= 16, idle_steps
        assert steps[-1] - steps[-2] >= 0.15
        ids = commit_events(service_pool, 3)
        assert received_ids(bus, 3) == ids
