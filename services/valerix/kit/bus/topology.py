"""The entities both backends create: names from the seed, settings of an ASB namespace."""

from __future__ import annotations

from dataclasses import dataclass, field

from valerix.contracts.events import INVENTORY_EVENTS, ORDER_EVENTS, ORDER_SERVICE_SUBSCRIPTION, VERIFY_ORDERS

SUBSCRIPTIONS = "/subscriptions/"
# The inventory service hears about failed and cancelled orders to release their stock,
# and about shipped ones to mark their stock gone for good.
INVENTORY_SERVICE_SUBSCRIPTION = "inventory-service-sub"


def subscription_path(topic: str, subscription: str) -> str:
    return f"{topic}{SUBSCRIPTIONS}{subscription}"


def split_subscription(entity: str) -> tuple[str, str] | None:
    """("topic", "sub") for "topic/subscriptions/sub"; None for a queue name."""
    topic, sep, sub = entity.partition(SUBSCRIPTIONS)
    return (topic, sub) if sep and topic and sub else None


@dataclass(frozen=True)
class Topology:
    queues: tuple[str, ...]
    topics: dict[str, tuple[str, ...]]  # topic -> its subscriptions
    # subscription path -> the event types (message subjects) it receives; absent: every event
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lock_duration_seconds: float = 30.0
    max_delivery_count: int = 10
    duplicate_window_seconds: float = 600.0

    def receivable(self) -> list[str]:
        """Every entity a consumer can receive from: queues and subscription paths."""
        return [*self.queues, *(subscription_path(t, s) for t, subs in self.topics.items() for s in subs)]


# A topic's events reach only its subscriptions: an event published to a topic without any is
# dropped, exactly as Azure Service Bus does. Other readers (analytics, mail) add subscriptions.
DEFAULT = Topology(
    queues=(VERIFY_ORDERS,),
    topics={ORDER_EVENTS: (INVENTORY_SERVICE_SUBSCRIPTION,), INVENTORY_EVENTS: (ORDER_SERVICE_SUBSCRIPTION,)},
    # Each service subscribes to what it acts on, so the busy path (OrderCreated, StockReserved ...)
    # costs a publish and nothing more.
    filters={
        subscription_path(ORDER_EVENTS, INVENTORY_SERVICE_SUBSCRIPTION): ("OrderFailed", "OrderCancelled",
                                                                          "OrderShipped"),
        subscription_path(INVENTORY_EVENTS, ORDER_SERVICE_SUBSCRIPTION): ("OrderVerified",),
    },
)
