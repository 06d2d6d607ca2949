"""Subscriptions receive only the event types they name (the busy path costs a publish only)."""

import uuid

from valerix.contracts.events import Envelope, OrderCancelled, OrderCreated, OrderFailed, OrderVerified
from valerix.contracts.routing import TOPOLOGY
from valerix.kit.bus.postgres import PostgresBus
from valerix.kit.bus.provision import subject_filter
from valerix.kit.bus.topology import Topology, subscription_path


def test_a_filtered_subscription_gets_only_its_event_types(bus_url):
    topic = f"t-{uuid.uuid4().hex[:8]}"
    picky, everything = subscription_path(topic, "picky"), subscription_path(topic, "all")
    bus = PostgresBus(bus_url, topology=Topology(queues=(), topics={topic: ("picky", "all")},
                                                 filters={picky: ("OrderFailed", "OrderCancelled")}))
    try:
        for data in (OrderCreated(orderId="o1", items=[]), OrderFailed(orderId="o1", reason="x"),
                     OrderCancelled(orderId="o2")):
            bus.publish(topic, Envelope.wrap(data))
        got = [m.envelope.eventType for m in bus.receive(picky, max_messages=10, max_wait_seconds=0.5)]
        assert got == ["OrderFailed", "OrderCancelled"]
        assert len(bus.receive(everything, max_messages=10, max_wait_seconds=0.5)) == 3
    finally:
        bus.close()


def test_the_default_topology_routes_each_service_only_what_it_acts_on():
    inventory_sub = TOPOLOGY.filters[subscription_path("order-events", "inventory-service-sub")]
    order_sub = TOPOLOGY.filters[subscription_path("inventory-events", "order-service-sub")]
    assert set(inventory_sub) == {"OrderFailed", "OrderCancelled", "OrderShipped", "FinalStatesAsserted"}
    assert order_sub == (OrderVerified.event_type,)
    assert subject_filter(("OrderFailed", "O'Brien")) == "sys.Label IN ('OrderFailed', 'O''Brien')"
