"""The live hub's fan-out rules, without threads or I/O."""

from __future__ import annotations

import json
import threading

from valerix.order.live_hub import MAX_BACKLOG, HubConfig, LiveHub, Subscriber


def hub(products=None) -> LiveHub:
    return LiveHub("postgresql://unused", products, HubConfig(autostart=False))


def taken(subscriber: Subscriber) -> list[dict]:
    return [json.loads(t) for t in subscriber.take()]


def test_status_changes_reach_watchers_of_all_and_of_that_order_only():
    h = hub()
    everything, mine, other = Subscriber(threading.Event()), Subscriber(threading.Event(), ["A"]), Subscriber(
        threading.Event(), ["B"])
    for s in (everything, mine, other):
        h.subscribe(s)
    h.publish_status("A", "confirmed", None)
    assert [(m["type"], m["orderId"], m["status"]) for m in taken(everything)] == [("status", "A", "confirmed")]
    assert [m["orderId"] for m in taken(mine)] == ["A"]
    assert taken(other) == []
    assert mine.wake.is_set() and not other.wake.is_set()


def test_a_customer_subscriber_hears_only_its_own_orders_whatever_it_watches():
    h = hub()
    alice, bob, desk = (Subscriber(threading.Event(), None, owner="CUS-A"),
                        Subscriber(threading.Event(), ["A"], owner="CUS-B"), Subscriber(threading.Event(), ["A"]))
    for s in (alice, bob, desk):
        h.subscribe(s)
    h.publish_status("A", "shipped", None, "CUS-A")
    h.publish_status("OLD", "cancelled", "customer_request")   # no owner: operators only
    assert [m["orderId"] for m in taken(alice)] == ["A"]
    assert taken(bob) == []
    assert [m["orderId"] for m in taken(desk)] == ["A"]


def test_a_status_message_keeps_the_format_clients_read():
    h = hub()
    s = Subscriber(threading.Event())
    h.subscribe(s)
    h.publish_status("A", "failed", "out_of_stock", "CUS-A")
    [sent] = taken(s)
    assert set(sent) == {"type", "orderId", "status", "reason", "at"}
    assert (sent["type"], sent["orderId"], sent["status"], sent["reason"]) == ("status", "A", "failed", "out_of_stock")


def test_a_hub_built_without_threads_never_starts_a_poller():
    h = hub()
    h.subscribe(Subscriber(threading.Event()))
    assert h._status_poller is None and not h.polling.is_set()


def test_a_subscriber_that_falls_behind_is_told_to_resync_once():
    s = Subscriber(threading.Event())
    for i in range(MAX_BACKLOG + 50):
        s.offer(f"m{i}")
    assert [m["type"] for m in taken(s)] == ["resync"]
    s.offer('{"type":"status"}')
    assert [m["type"] for m in taken(s)] == ["status"]


def test_watch_adds_ids_and_all_widens():
    s = Subscriber(threading.Event(), ["A"])
    s.watch(["B"])
    assert s.wants("B") and not s.wants("C")
    s.watch(None)
    assert s.wants("C")


def test_stock_is_pushed_only_when_it_changed_and_new_sockets_get_the_last_list():
    stock = [{"productId": "SKU-1", "stock": 5}]
    h = hub(lambda: list(stock))
    first = Subscriber(threading.Event())
    h.subscribe(first)
    h.refresh_stock()
    h.refresh_stock()
    assert [(m["type"], m["products"]) for m in taken(first)] == [("stock", stock)]
    stock[0] = {"productId": "SKU-1", "stock": 4}
    h.refresh_stock()
    assert taken(first)[0]["products"] == [{"productId": "SKU-1", "stock": 4}]
    late = Subscriber(threading.Event())
    h.subscribe(late)
    assert taken(late)[0]["products"] == [{"productId": "SKU-1", "stock": 4}]


def test_an_inventory_failure_is_reported_as_unavailable_stock():
    def broken():
        raise RuntimeError("inventory down")

    h = hub(broken)
    s = Subscriber(threading.Event())
    h.subscribe(s)
    h.refresh_stock()
    assert [(m["type"], m["available"]) for m in taken(s)] == [("stock", False)]
