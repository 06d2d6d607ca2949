"""Idempotent bus consumers: each handler runs in a unit of work that also records the
event id in ``inbox``, so a redelivered message changes nothing the second time.

Failure policy: a message that can never be processed (a body that is not an envelope, an
unknown event type, data that does not fit it: ``Unprocessable``) is dead-lettered at once.
Any other handler exception is taken as transient (a database outage, a lock timeout): the
message is abandoned with exponential back-off and retried until it succeeds, so a release or
shipment effect survives an outage of any length (the entity's max delivery count is only a
last resort against a handler bug). A failing message never blocks the messages behind it
(the bus hands those to the next receive).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from valerix.contracts.events import Envelope
from valerix.kit import metrics
from valerix.kit.bus.port import Bus, LockLost, ReceivedMessage
from valerix.kit.loops import Loop, every, run_steps
from valerix.kit.uow import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Envelope], None]

RECORD = """
INSERT INTO inbox (consumer, event_id) VALUES (%s, %s)
ON CONFLICT (consumer, event_id) DO NOTHING
RETURNING true AS fresh
"""


class Unprocessable(Exception):
    """The message can never be processed, however often it is retried: dead-letter it."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description


def backoff_seconds(delivery_count: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """1, 2, 4 ... seconds after the 1st, 2nd, 3rd ... failed delivery, at most cap."""
    return min(cap, base * 2 ** max(delivery_count - 1, 0))


class Consumer:
    def __init__(self, bus: Bus, entity: str, pool: ConnectionPool[Any], name: str, handler: Handler, *,
                 batch_size: int = 10, wait_seconds: float = 1.0, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0) -> None:
        self._bus = bus
        self.entity = entity
        self._pool = pool
        self.name = name
        self._handler = handler
        self._batch = batch_size
        self._wait = wait_seconds
        self._backoff = (backoff_base, backoff_cap)

    def step(self, wait_seconds: float | None = None) -> int:
        """Receives one batch (waiting up to wait_seconds) and settles every message in it."""
        messages = self._bus.receive(self.entity, max_messages=self._batch,
                                     max_wait_seconds=self._wait if wait_seconds is None else wait_seconds)
        for message in messages:
            self._settle(message, self._handle(message))
        return len(messages)

    def _handle(self, message: ReceivedMessage) -> str:
        try:
            envelope = message.envelope
        except ValidationError as error:
            self._bus.dead_letter(message, "InvalidEnvelope", str(error)[:2000])
            return "dead_lettered"
        try:
            with UnitOfWork(self._pool) as uow:
                if uow.conn.execute(RECORD, (self.name, envelope.eventId)).fetchone() is None:
                    return "duplicate"
                self._handler(uow, envelope)
                uow.commit()
            return "handled"
        except Unprocessable as error:
            log.error("message can never be processed; dead-lettered", extra={
                "consumer": self.name, "eventId": envelope.eventId, "eventType": envelope.eventType,
                "reason": error.reason})
            self._bus.dead_letter(message, error.reason, error.description[:2000])
            return "dead_lettered"
        except Exception:
            delay = backoff_seconds(message.delivery_count, base=self._backoff[0], cap=self._backoff[1])
            log.exception("handler failed; the message will be retried", extra={
                "consumer": self.name, "entity": self.entity, "eventId": envelope.eventId,
                "eventType": envelope.eventType, "deliveryCount": message.delivery_count,
                "retryInSeconds": delay})
            with contextlib.suppress(LockLost):  # the lock ran out first; the bus redelivers anyway
                self._bus.abandon(message, retry_after_seconds=delay)
            return "failed"

    def _settle(self, message: ReceivedMessage, result: str) -> None:
        if result in ("handled", "duplicate"):
            try:
                self._bus.complete(message)
            except LockLost:
                # The effect is committed and the inbox row with it: the redelivery is a no-op.
                log.warning("lock lost before completing", extra={"consumer": self.name,
                                                                  "messageId": message.message_id})
        metrics.MESSAGES_HANDLED.labels(consumer=self.name, result=result).inc()

    def run_forever(self, stop: threading.Event) -> None:
        run_steps(stop, self.step, message="consumer step failed",
                  extra={"consumer": self.name, "entity": self.entity})


def sample_bus_stats(bus: Bus) -> None:
    """Sets the depth and dead-letter gauges of every queue and subscription."""
    for s in bus.stats():
        metrics.BUS_DEPTH.labels(entity=s.entity).set(s.active + s.scheduled)
        metrics.BUS_DEAD_LETTERS.labels(entity=s.entity).set(s.dead_letter)


def bus_stats_loop(bus: Bus, interval_seconds: float = 10.0) -> Loop:
    def sample() -> None:
        sample_bus_stats(bus)

    return every(interval_seconds, sample, message="bus statistics unavailable", traceback=False)
