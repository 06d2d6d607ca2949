"""The shape of the entities both backends create (the contract's TOPOLOGY fills it in):
queues, topics with their subscriptions and filters, settings of an ASB namespace."""

from __future__ import annotations

from dataclasses import dataclass, field

SUBSCRIPTIONS = "/subscriptions/"


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
    # Consumers retry a transient failure (a database outage) with back-off until it passes:
    # dead-lettering is for what can never be processed, which the consumer does at once. The
    # count is only a last resort against a handler bug (2,000 is Service Bus's maximum:
    # about a day at the 60 s back-off cap, 16 h at Service Bus's 30 s lock).
    max_delivery_count: int = 2000
    duplicate_window_seconds: float = 600.0

    def receivable(self) -> list[str]:
        """Every entity a consumer can receive from: queues and subscription paths."""
        return [*self.queues, *(subscription_path(t, s) for t, subs in self.topics.items() for s in subs)]


def contract_topology() -> Topology:
    """The entities of valerix.contracts.routing; imported late, as the contract builds on this module."""
    from valerix.contracts.routing import TOPOLOGY

    return TOPOLOGY
