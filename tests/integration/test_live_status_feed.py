"""The live feed's status poller on the real PostgreSQL: committed changes reach subscribers,
nothing is queried while nobody subscribes, and a row committed behind one already sent
still goes out (the transaction-id horizon, order/live_status.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from valerix.order import db
from valerix.order.domain import Order, OrderLine
from valerix.order.live_hub import HubConfig, LiveHub, Subscriber

APP = "order-live-status"


@pytest.fixture
def url(order_pool) -> str:
    conninfo = order_pool.conninfo
    return conninfo() if callable(conninfo) else conninfo


@pytest.fixture
def hub(url) -> Iterator[LiveHub]:
    live = LiveHub(url, None, HubConfig(status_poll=0.05))
    yield live
    live.stop()


def connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, row_factory=dict_row)


def new_order(conn: db.Conn) -> str:
    """Inserts an order and its first history row in conn's open transaction."""
    order = Order.place([OrderLine("SKU-001", 1)], customer_id="CUS-LIVE")
    db.insert_order(conn, order)
    return order.id


def place(url: str) -> str:
    with connect(url) as conn:
        return new_order(conn)


def subscribed(hub: LiveHub) -> Subscriber:
    subscriber = Subscriber(threading.Event())
    hub.subscribe(subscriber)
    assert hub.polling.wait(5), "the status poller did not connect"
    return subscriber


def statuses_until(subscriber: Subscriber, done: Callable[[list[tuple[str, str]]], bool],
                   timeout: float = 5.0) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while not done(seen):
        assert time.monotonic() < deadline, f"not delivered within {timeout}s; got {seen}"
        subscriber.wake.wait(0.05)
        subscriber.wake.clear()
        seen += [(m["orderId"], m["status"]) for m in map(json.loads, subscriber.take()) if m["type"] == "status"]
    return seen


def pollers(admin_url: str, database: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
                            (APP, database)).fetchone()
    return int(row[0]) if row else 0


def test_a_change_committed_after_the_poller_started_reaches_the_subscriber(hub, url):
    before = place(url)   # history from before the first subscriber is not replayed
    subscriber = subscribed(hub)
    after = place(url)
    seen = statuses_until(subscriber, lambda s: (after, "pending") in s)
    assert before not in {order for order, _ in seen}
    assert hub.delivered >= 1


def test_with_no_subscriber_the_hub_holds_no_connection_and_runs_no_poller(hub, url, pg):
    database = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    place(url)
    assert hub._status_poller is None and pollers(pg.admin_url, database) == 0

    subscriber = subscribed(hub)
    poller = hub._status_poller
    assert poller is not None and poller.is_alive() and pollers(pg.admin_url, database) == 1

    hub.unsubscribe(subscriber)
    poller.join(timeout=5)
    assert not poller.is_alive() and hub._status_poller is None and not hub.polling.is_set()
    deadline = time.monotonic() + 5
    while pollers(pg.admin_url, database):   # the backend goes away just after the client closes
        assert time.monotonic() < deadline, "the poller's connection outlived its last subscriber"
        time.sleep(0.05)

    again = subscribed(hub)   # the next subscriber starts a new poller
    order_id = place(url)
    statuses_until(again, lambda s: (order_id, "pending") in s)


def test_a_lower_id_committed_after_a_higher_one_is_held_back_then_delivered(hub, url):
    subscriber = subscribed(hub)
    with connect(url) as t1, connect(url) as t2:
        first = new_order(t1)          # takes the lower history id; stays open
        second = new_order(t2)
        t2.commit()
        time.sleep(0.5)                # ten polls: t1 still runs, so t2's row is not yet past the horizon
        assert subscriber.take() == []
        t1.commit()
    assert statuses_until(subscriber, lambda s: len(s) == 2) == [(first, "pending"), (second, "pending")]


def test_a_row_of_a_younger_transaction_committed_behind_a_sent_one_is_not_lost(hub, url):
    """The case paging by id alone would lose: t2 took its transaction id before t1, its row id
    after t1's, and commits first; its row is past the horizon and goes out at once."""
    subscriber = subscribed(hub)
    with connect(url) as t1, connect(url) as t2:
        t2.execute("SELECT pg_current_xact_id()")
        first = new_order(t1)
        second = new_order(t2)
        t2.commit()
        assert statuses_until(subscriber, lambda s: (second, "pending") in s) == [(second, "pending")]
        t1.commit()
    statuses_until(subscriber, lambda s: (first, "pending") in s)
