"""Who receives which event: the bus entities both services agree on, declared once.

Each service's worker checks its handler table (``HANDLERS``) against its ``Subscriber`` here
at start-up, so the table and the topology cannot drift apart; docs/events.md is generated
from this module and those tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from valerix.contracts.events import (
    EVENT_TYPES,
    INVENTORY_EVENTS,
    ORDER_EVENTS,
    VERIFY_ORDERS,
    EventData,
    FinalStatesAsserted,
    OrderCancelled,
    OrderFailed,
    OrderShipped,
    OrderVerified,
    VerifyOrder,
)
from valerix.kit.bus.topology import Topology, subscription_path

TOPICS = (ORDER_EVENTS, INVENTORY_EVENTS)
QUEUES = (VERIFY_ORDERS,)


@dataclass(frozen=True)
class Subscriber:
    """A service's subscription name and the event types it acts on; a queue event comes from
    its queue, a topic event through the service's subscription on that topic (filtered to
    the types listed, so the busy path costs a publish and nothing more)."""

    service: str
    subscription: str
    receives: tuple[type[EventData], ...]

    def entity_of(self, event: type[EventData]) -> str:
        if event.destination in QUEUES:
            return event.destination
        return subscription_path(event.destination, self.subscription)

    def entities(self) -> dict[str, tuple[str, ...]]:
        """Each entity this subscriber receives from -> the event types it takes there."""
        found: dict[str, tuple[str, ...]] = {}
        for event in self.receives:
            entity = self.entity_of(event)
            found[entity] = (*found.get(entity, ()), event.event_type)
        return found


ORDER_SERVICE = Subscriber("order", "order-service-sub", (OrderVerified,))
# The inventory service answers verifications, hears about failed and cancelled orders to
# release their stock, about shipped ones to mark their stock gone for good, and the order
# reconciler's assertions to repair whatever those events did not achieve.
INVENTORY_SERVICE = Subscriber("inventory", "inventory-service-sub",
                               (VerifyOrder, OrderFailed, OrderCancelled, OrderShipped, FinalStatesAsserted))
SUBSCRIBERS = (ORDER_SERVICE, INVENTORY_SERVICE)


def _topology() -> Topology:
    assert all(e.destination in (*TOPICS, *QUEUES) for e in EVENT_TYPES.values())
    topics: dict[str, tuple[str, ...]] = {t: () for t in TOPICS}
    filters: dict[str, tuple[str, ...]] = {}
    for subscriber in SUBSCRIBERS:
        for entity, types in subscriber.entities().items():
            if entity in QUEUES:
                continue
            topic = entity.split("/", 1)[0]
            topics[topic] = (*topics[topic], subscriber.subscription)
            filters[entity] = types
    return Topology(queues=QUEUES, topics=topics, filters=filters)


# The event types some service acts on. The others (OrderCreated, OrderConfirmed, StockReserved,
# StockReleased, LowStockAlert) are raised by the use cases but reach the outbox only when a
# deployment says other readers want them (PUBLISH_EVENTS=all): an event nobody receives would
# cost an outbox row, relay work and a bus message on the busiest path, for nothing.
SUBSCRIBED_EVENTS = frozenset(event.event_type for subscriber in SUBSCRIBERS for event in subscriber.receives)


def published_events(setting: str) -> frozenset[str] | None:
    """What a process publishes: ``subscribed`` (the default) or ``all`` (None: every event)."""
    if setting == "all":
        return None
    if setting == "subscribed":
        return SUBSCRIBED_EVENTS
    raise ValueError(f"PUBLISH_EVENTS is 'subscribed' or 'all', not {setting!r}")


# A topic's events reach only its subscriptions: an event published to a topic without any is
# dropped, exactly as Azure Service Bus does. Other readers (analytics, mail) add subscribers.
TOPOLOGY = _topology()
