"""The bus port on Azure Service Bus (azure-servicebus), for BUS_BACKEND=azure.

message_id = eventId, so the namespace's duplicate detection drops a republished event.
Senders and receivers of the SDK are not thread-safe: each thread gets its own receiver per
entity, and a sender is used under a lock. Differences from the embedded bus, by design of
the service: abandon() cannot delay a redelivery, so a back-off leaves the message locked
until its lock expires (at most the lock duration, 30 s); stats come from the management
API, which lags by a few seconds.

The app pods hold a connection string with Send and Listen rights only; the management API
needs Manage. So ping() and stats() fall back to the data plane when it answers 401/403:
ping peeks one message, stats count what peeking browses (up to PEEK_CAP per entity).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageState,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import MessageLockLostError, MessagingEntityNotFoundError, ServiceBusError
from azure.servicebus.management import ServiceBusAdministrationClient

from valerix.contracts.events import Envelope
from valerix.kit.bus.port import BusError, EntityNotFound, EntityStats, LockLost, ReceivedMessage
from valerix.kit.bus.topology import Topology, contract_topology, split_subscription


def _body(message: Any) -> Any:
    raw = message.body
    data = raw if isinstance(raw, bytes | str) else b"".join(raw)
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _received(entity: str, message: Any, receiver: Any) -> ReceivedMessage:
    return ReceivedMessage(
        entity=entity, message_id=str(message.message_id), body=_body(message),
        # The AMQP header counts prior attempts; the port counts this one too (1 = first).
        delivery_count=(message.delivery_count or 0) + 1, enqueued_at=message.enqueued_time_utc,
        sequence_number=message.sequence_number or 0,
        lock_token=str(message.lock_token) if message.lock_token else None,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_description=message.dead_letter_error_description,
        handle=(receiver, message))


PEEK_PAGE = 250
PEEK_CAP = 1000  # without Manage rights a deeper backlog reads as this many


def count_peeked(receiver: Any, cap: int = PEEK_CAP) -> tuple[int, int]:
    """(active, scheduled) of the messages `receiver` browses from the start, at most `cap`."""
    active = scheduled = 0
    next_sequence = 1
    while active + scheduled < cap:
        page = receiver.peek_messages(max_message_count=min(PEEK_PAGE, cap - active - scheduled),
                                      sequence_number=next_sequence)
        if not page:
            break
        for message in page:
            if message.state == ServiceBusMessageState.SCHEDULED:
                scheduled += 1
            else:
                active += 1
        next_sequence = (page[-1].sequence_number or 0) + 1
    return active, scheduled


def _lacks_manage_rights(error: HttpResponseError) -> bool:
    return error.status_code in (401, 403)


def to_message(envelope: Envelope, scheduled_at: datetime | None = None) -> ServiceBusMessage:
    return ServiceBusMessage(json.dumps(envelope.model_dump(mode="json")), message_id=envelope.eventId,
                             subject=envelope.eventType, content_type="application/json",
                             scheduled_enqueue_time_utc=scheduled_at)


class AzureBus:
    def __init__(self, connection_string: str, *, topology: Topology | None = None) -> None:
        self._client = ServiceBusClient.from_connection_string(connection_string)
        self._admin = ServiceBusAdministrationClient.from_connection_string(connection_string)
        self._topology = topology or contract_topology()
        self._senders: dict[str, tuple[threading.Lock, Any]] = {}
        self._receivers: dict[tuple[str, bool, int], Any] = {}
        self._lock = threading.Lock()
        self._manage = True  # until the management API refuses this connection string

    # --- plumbing ---------------------------------------------------------------------

    def _sender(self, destination: str) -> tuple[threading.Lock, Any]:
        with self._lock:
            if destination not in self._senders:
                if destination in self._topology.topics:
                    sender = self._client.get_topic_sender(destination)
                else:
                    sender = self._client.get_queue_sender(destination)
                self._senders[destination] = (threading.Lock(), sender)
            return self._senders[destination]

    def _receiver(self, entity: str, dead_letter: bool = False) -> Any:
        key = (entity, dead_letter, threading.get_ident())
        with self._lock:
            if key not in self._receivers:
                options: dict[str, Any] = {"receive_mode": ServiceBusReceiveMode.PEEK_LOCK, "prefetch_count": 0}
                if dead_letter:
                    options["sub_queue"] = ServiceBusSubQueue.DEAD_LETTER
                split = split_subscription(entity)
                self._receivers[key] = (self._client.get_subscription_receiver(split[0], split[1], **options)
                                        if split else self._client.get_queue_receiver(entity, **options))
            return self._receivers[key]

    # --- the port ---------------------------------------------------------------------

    def publish(self, destination: str, envelope: Envelope, *, scheduled_at: datetime | None = None) -> None:
        message = to_message(envelope, scheduled_at)
        lock, sender = self._sender(destination)
        try:
            with lock:
                sender.send_messages(message)
        except MessagingEntityNotFoundError as error:
            raise EntityNotFound(f"no queue or topic named {destination!r}") from error
        except ServiceBusError as error:
            raise BusError(str(error)) from error

    def publish_batch(self, messages: Sequence[tuple[str, Envelope]]) -> None:
        for destination, envelope in messages:  # per entity, in order; broker dedup makes a retry safe
            self.publish(destination, envelope)

    def receive(self, entity: str, max_messages: int = 1,
                max_wait_seconds: float = 1.0) -> list[ReceivedMessage]:
        receiver = self._receiver(entity)
        try:
            got = receiver.receive_messages(max_message_count=max_messages,
                                            max_wait_time=max(max_wait_seconds, 0.1))
        except MessagingEntityNotFoundError as error:
            raise EntityNotFound(f"no queue or subscription named {entity!r}") from error
        return [_received(entity, m, receiver) for m in got]

    def _settle(self, action: str, message: ReceivedMessage, **kwargs: Any) -> None:
        if message.handle is None:
            raise LockLost(f"message {message.message_id} was peeked, not received")
        receiver, raw = message.handle
        try:
            getattr(receiver, action)(raw, **kwargs)
        except MessageLockLostError as error:
            raise LockLost(str(error)) from error

    def complete(self, message: ReceivedMessage) -> None:
        self._settle("complete_message", message)

    def abandon(self, message: ReceivedMessage, *, retry_after_seconds: float = 0) -> None:
        if retry_after_seconds <= 0:
            self._settle("abandon_message", message)
        # else: keep the lock until it expires, which is the only delay Service Bus offers
        # without losing the delivery count (a re-sent copy would start again at 1).

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        self._settle("dead_letter_message", message, reason=reason, error_description=description)

    def stats(self) -> list[EntityStats]:
        if self._manage:
            try:
                return self._management_stats()
            except HttpResponseError as error:
                if not _lacks_manage_rights(error):
                    raise
                self._manage = False
        return self._peeked_stats()

    def _management_stats(self) -> list[EntityStats]:
        out: list[EntityStats] = []
        for entity in self._topology.receivable():
            split = split_subscription(entity)
            props = (self._admin.get_subscription_runtime_properties(*split) if split
                     else self._admin.get_queue_runtime_properties(entity))
            out.append(EntityStats(entity=entity, active=props.active_message_count or 0,
                                   scheduled=getattr(props, "scheduled_message_count", 0) or 0,
                                   dead_letter=props.dead_letter_message_count or 0))
        return sorted(out, key=lambda s: s.entity)

    def _peeked_stats(self) -> list[EntityStats]:
        out: list[EntityStats] = []
        for entity in self._topology.receivable():
            active, scheduled = count_peeked(self._receiver(entity))
            dead_letter = sum(count_peeked(self._receiver(entity, dead_letter=True)))
            out.append(EntityStats(entity=entity, active=active, scheduled=scheduled, dead_letter=dead_letter))
        return sorted(out, key=lambda s: s.entity)

    def ping(self) -> None:
        if self._manage:
            try:
                self._admin.get_namespace_properties()
                return
            except HttpResponseError as error:
                if not _lacks_manage_rights(error):
                    raise
                self._manage = False
        # Listen rights: browsing one message proves the namespace answers and accepts the key.
        entity = self._topology.receivable()[0]
        try:
            self._receiver(entity).peek_messages(max_message_count=1, sequence_number=1)
        except ServiceBusError as error:
            raise BusError(str(error)) from error

    # --- operations -------------------------------------------------------------------

    def peek(self, entity: str, *, dead_letter: bool = False, max_messages: int = 20) -> list[ReceivedMessage]:
        receiver = self._receiver(entity, dead_letter)
        return [_received(entity, m, None) for m in receiver.peek_messages(max_message_count=max_messages)]

    def resubmit(self, entity: str, message_id: str) -> int:
        """Sends a copy of each matching dead letter to the queue (for a subscription: to its
        topic, so every subscription sees it again; consumers' inboxes make that harmless),
        then completes the dead letter. The copy gets a new message id so duplicate
        detection does not drop it; consumers key on the envelope's eventId, not on it."""
        split = split_subscription(entity)
        destination = split[0] if split else entity
        dead = self._receiver(entity, dead_letter=True)
        moved, held = 0, list[Any]()  # the others stay locked until the end, so each is seen once
        while len(held) < 5000:
            batch = dead.receive_messages(max_message_count=50, max_wait_time=2)
            if not batch:
                break
            for raw in batch:
                if str(raw.message_id) != message_id:
                    held.append(raw)
                    continue
                copy = ServiceBusMessage(json.dumps(_body(raw)), subject=raw.subject,
                                         message_id=f"{message_id}:resubmit:{raw.sequence_number}",
                                         content_type="application/json")
                lock, sender = self._sender(destination)
                with lock:
                    sender.send_messages(copy)
                dead.complete_message(raw)
                moved += 1
        for raw in held:
            dead.abandon_message(raw)
        return moved

    def close(self) -> None:
        with self._lock:
            for _, sender in self._senders.values():
                sender.close()
            for receiver in self._receivers.values():
                receiver.close()
            self._senders.clear()
            self._receivers.clear()
        self._client.close()
        self._admin.close()

