"""The bus port: as small as eShop's event bus, with peek-lock settlement.

Every backend (the embedded PostgreSQL bus, Azure Service Bus) implements `Bus` and, for
operators, `BusAdmin`. The message id is always the envelope's eventId, so duplicate
detection drops a republished event within the destination's window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from valerix.contracts.events import Envelope


class BusError(Exception):
    """The bus refused or failed an operation."""


class EntityNotFound(BusError):
    """No queue, topic or subscription of that name."""


class LockLost(BusError):
    """The message's lock expired and it was received again (or already settled)."""


@dataclass(frozen=True)
class ReceivedMessage:
    entity: str
    message_id: str
    body: Any  # the decoded JSON body (an envelope, unless a producer misbehaved)
    delivery_count: int
    enqueued_at: datetime | None
    sequence_number: int
    lock_token: str | None = None
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None
    handle: Any = field(default=None, compare=False, repr=False)  # backend-specific message object

    @property
    def envelope(self) -> Envelope:
        """The seed envelope; raises pydantic.ValidationError for a malformed body."""
        return Envelope.model_validate(self.body)


@dataclass(frozen=True)
class EntityStats:
    entity: str  # a queue or "<topic>/subscriptions/<name>"
    active: int  # available or locked
    scheduled: int  # waiting for their scheduled time (including back-off after abandon)
    dead_letter: int


@runtime_checkable
class Bus(Protocol):
    def publish(self, destination: str, envelope: Envelope, *, scheduled_at: datetime | None = None) -> None:
        """Send to a queue or topic; message id = envelope.eventId."""

    def publish_batch(self, messages: Sequence[tuple[str, Envelope]]) -> None:
        """Send several (destination, envelope) pairs in order; the outbox relay's path.
        Either all are sent or the call raises (a retry re-sends; duplicates are dropped)."""

    def receive(self, entity: str, max_messages: int = 1,
                max_wait_seconds: float = 1.0) -> list[ReceivedMessage]:
        """Peek-lock up to max_messages from a queue or "<topic>/subscriptions/<name>"."""

    def complete(self, message: ReceivedMessage) -> None: ...

    def abandon(self, message: ReceivedMessage, *, retry_after_seconds: float = 0) -> None:
        """Release the lock; the message is redelivered after retry_after_seconds."""

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None: ...

    def stats(self) -> list[EntityStats]:
        """Depth and dead letters of every queue and subscription."""

    def ping(self) -> None:
        """Raises when the bus cannot be reached (readiness)."""

    def close(self) -> None: ...


@runtime_checkable
class BusAdmin(Protocol):
    """Operator tools behind `valerix bus peek|resubmit`."""

    def peek(self, entity: str, *, dead_letter: bool = False, max_messages: int = 20) -> list[ReceivedMessage]: ...

    def resubmit(self, entity: str, message_id: str) -> int:
        """Moves dead-lettered messages with that id back to the entity; returns how many."""


@runtime_checkable
class OperatedBus(Bus, BusAdmin, Protocol):
    """What both backends are: the port plus the operator tools."""


@runtime_checkable
class TrimmableBus(Protocol):
    """A bus that keeps its own storage (the embedded one) and so trims it; Azure Service Bus
    deletes completed messages itself and expires dead letters by their time-to-live."""

    def trim(self, dead_letter_retention: timedelta, batch: int = 1000) -> int: ...
