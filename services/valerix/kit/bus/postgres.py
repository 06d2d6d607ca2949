"""The embedded bus: Azure Service Bus semantics on PostgreSQL (database ``bus_db``).

Fan-out happens at publish (one row per subscription), a receive locks rows with
``FOR UPDATE SKIP LOCKED`` so competing consumers never get the same message, and a lock
is a lock token plus ``visible_at`` moved to the end of the lock duration: an expired lock
makes the message available again with no sweeper. Settling needs the token, so a
consumer whose lock expired and whose message went to someone else gets LockLost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from valerix.contracts.events import Envelope
from valerix.kit.bus.listen import Listener
from valerix.kit.bus.port import BusError, EntityNotFound, EntityStats, LockLost, ReceivedMessage
from valerix.kit.bus.topology import Topology, subscription_path
from valerix.kit.db import make_pool

log = logging.getLogger(__name__)

CHANNEL = "bus"
MAX_DEAD = "MaxDeliveryCountExceeded"


@dataclass(frozen=True)
class EntityConfig:
    name: str
    kind: str
    lock_duration: timedelta
    max_delivery_count: int
    duplicate_window: timedelta


ENTITY = "SELECT name, kind, lock_duration, max_delivery_count, duplicate_window FROM bus_entities WHERE name = %s"

# A row stays only if no row of that id was published within the destination's window.
# A batch in two statements: the ids new within their destination's window, then one row per
# fresh message per queue or matching subscription, in the batch's order (seq follows it).
CLAIM_IDS = """
INSERT INTO bus_duplicates (destination, message_id)
SELECT m.dest, m.id FROM unnest(%(dests)s::text[], %(ids)s::text[]) AS m(dest, id)
ON CONFLICT (destination, message_id) DO UPDATE SET published_at = now()
    WHERE bus_duplicates.published_at < now() - (
        SELECT e.duplicate_window FROM bus_entities e WHERE e.name = excluded.destination)
RETURNING destination, message_id
"""

FAN_OUT = """
INSERT INTO bus_messages (entity, message_id, subject, body, visible_at)
SELECT e.name, m.id, m.subject, m.body::jsonb, greatest(now(), coalesce(%(at)s::timestamptz, now()))
FROM unnest(%(dests)s::text[], %(ids)s::text[], %(subjects)s::text[], %(bodies)s::text[])
     WITH ORDINALITY AS m(dest, id, subject, body, ord)
JOIN bus_entities e
  ON (e.kind = 'queue' AND e.name = m.dest)
  OR (e.kind = 'subscription' AND e.topic = m.dest AND (e.subjects IS NULL OR m.subject = ANY (e.subjects)))
ORDER BY m.ord, e.name
RETURNING entity, visible_at <= now() AS ready
"""

# Messages delivered max_delivery_count times are dead-lettered instead of delivered again.
RECEIVE = """
WITH picked AS (
    SELECT seq FROM bus_messages
    WHERE entity = %(entity)s AND dead_lettered_at IS NULL AND visible_at <= now()
    ORDER BY seq LIMIT %(n)s FOR UPDATE SKIP LOCKED
), settled AS (
    SELECT m.seq, m.delivery_count >= %(max)s AS exhausted FROM bus_messages m JOIN picked USING (seq)
)
UPDATE bus_messages m SET
    delivery_count = m.delivery_count + (NOT s.exhausted)::int,
    lock_token = CASE WHEN s.exhausted THEN NULL ELSE gen_random_uuid() END,
    visible_at = CASE WHEN s.exhausted THEN m.visible_at ELSE now() + %(lock)s END,
    dead_lettered_at = CASE WHEN s.exhausted THEN now() END,
    dead_letter_reason = CASE WHEN s.exhausted THEN %(reason)s END,
    dead_letter_description = CASE WHEN s.exhausted
        THEN 'delivered ' || m.delivery_count || ' times without being completed' END
FROM settled s WHERE m.seq = s.seq
RETURNING m.*, s.exhausted
"""

COMPLETE = "DELETE FROM bus_messages WHERE seq = %(seq)s AND lock_token = %(token)s RETURNING seq"

ABANDON = """
UPDATE bus_messages SET lock_token = NULL,
    visible_at = now() + make_interval(secs => %(after)s),
    dead_lettered_at = CASE WHEN delivery_count >= %(max)s THEN now() END,
    dead_letter_reason = CASE WHEN delivery_count >= %(max)s THEN %(reason)s END,
    dead_letter_description = CASE WHEN delivery_count >= %(max)s
        THEN 'abandoned after ' || delivery_count || ' deliveries' END
WHERE seq = %(seq)s AND lock_token = %(token)s
RETURNING dead_lettered_at IS NULL AND %(after)s = 0 AS ready
"""

DEAD_LETTER = """
UPDATE bus_messages SET lock_token = NULL, dead_lettered_at = now(),
    dead_letter_reason = %(reason)s, dead_letter_description = %(description)s
WHERE seq = %(seq)s AND lock_token = %(token)s
RETURNING seq
"""

STATS = """
SELECT e.name AS entity,
    count(m.seq) FILTER (WHERE m.dead_lettered_at IS NULL
                         AND (m.visible_at <= now() OR m.lock_token IS NOT NULL)) AS active,
    count(m.seq) FILTER (WHERE m.dead_lettered_at IS NULL AND m.lock_token IS NULL
                         AND m.visible_at > now()) AS scheduled,
    count(m.seq) FILTER (WHERE m.dead_lettered_at IS NOT NULL) AS dead_letter
FROM bus_entities e LEFT JOIN bus_messages m ON m.entity = e.name
WHERE e.kind <> 'topic'
GROUP BY e.name ORDER BY e.name
"""

PEEK = """
SELECT * FROM bus_messages
WHERE entity = %(entity)s AND (dead_lettered_at IS NOT NULL) = %(dead)s
ORDER BY seq LIMIT %(n)s
"""

RESUBMIT = """
UPDATE bus_messages SET dead_lettered_at = NULL, dead_letter_reason = NULL, dead_letter_description = NULL,
    delivery_count = 0, lock_token = NULL, visible_at = now()
WHERE entity = %(entity)s AND message_id = %(id)s AND dead_lettered_at IS NOT NULL
RETURNING seq
"""

UPSERT_ENTITY = """
INSERT INTO bus_entities (name, kind, topic, lock_duration, max_delivery_count, duplicate_window, subjects)
VALUES (%(name)s, %(kind)s, %(topic)s, make_interval(secs => %(lock)s), %(max)s, make_interval(secs => %(window)s),
        %(subjects)s)
ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, topic = EXCLUDED.topic,
    lock_duration = EXCLUDED.lock_duration, max_delivery_count = EXCLUDED.max_delivery_count,
    duplicate_window = EXCLUDED.duplicate_window, subjects = EXCLUDED.subjects
"""

FORGET_DUPLICATES = """
DELETE FROM bus_duplicates d USING bus_entities e
WHERE e.name = d.destination AND d.published_at < now() - e.duplicate_window
"""

TRIM_DEAD_LETTERS = """
DELETE FROM bus_messages WHERE seq IN (
    SELECT seq FROM bus_messages WHERE dead_lettered_at < now() - %(keep)s ORDER BY seq LIMIT %(batch)s)
"""


def ensure_topology(conn: psycopg.Connection[Any], topology: Topology) -> None:
    """Creates or updates the entities (idempotent). Entities not in the topology are kept."""
    common: dict[str, object] = {"lock": topology.lock_duration_seconds, "max": topology.max_delivery_count,
              "window": topology.duplicate_window_seconds}
    rows = [{"name": q, "kind": "queue", "topic": None, "subjects": None, **common} for q in topology.queues]
    for topic, subscriptions in topology.topics.items():
        rows.append({"name": topic, "kind": "topic", "topic": None, "subjects": None, **common})
        for s in subscriptions:
            path = subscription_path(topic, s)
            subjects = topology.filters.get(path)
            rows.append({"name": path, "kind": "subscription", "topic": topic,
                         "subjects": list(subjects) if subjects is not None else None, **common})
    with conn.cursor() as cur:
        cur.executemany(UPSERT_ENTITY, rows)


def _message(row: dict[str, Any]) -> ReceivedMessage:
    token = row["lock_token"]
    return ReceivedMessage(
        entity=row["entity"], message_id=row["message_id"], body=row["body"],
        delivery_count=row["delivery_count"], enqueued_at=row["enqueued_at"], sequence_number=row["seq"],
        lock_token=str(token) if token else None, dead_letter_reason=row["dead_letter_reason"],
        dead_letter_description=row["dead_letter_description"])


class PostgresBus:
    """Thread-safe: every call borrows a pooled connection for one short transaction."""

    def __init__(self, url: str, *, topology: Topology | None = None, poll_seconds: float = 1.0,
                 pool_size: int = 5, name: str = "valerix-bus") -> None:
        self._url = url
        self._pool = make_pool(url, name=name, max_size=pool_size)
        self._entities: dict[str, EntityConfig] = {}
        self._poll = poll_seconds
        self._listener = Listener(url, CHANNEL)
        self._published = 0
        if topology is not None:
            with self._pool.connection() as conn:
                ensure_topology(conn, topology)

    # --- entities ---------------------------------------------------------------------

    def _entity(self, name: str) -> EntityConfig:
        config = self._entities.get(name)
        if config is None:
            with self._pool.connection() as conn:
                row = conn.execute(ENTITY, (name,)).fetchone()
            if row is None:
                raise EntityNotFound(f"no queue, topic or subscription named {name!r}")
            config = self._entities[name] = EntityConfig(**row)
        return config

    # --- sending ----------------------------------------------------------------------

    def publish(self, destination: str, envelope: Envelope, *, scheduled_at: datetime | None = None) -> None:
        self.publish_batch([(destination, envelope)], scheduled_at=scheduled_at)

    def publish_batch(self, messages: Sequence[tuple[str, Envelope]], *,
                      scheduled_at: datetime | None = None) -> None:
        """One transaction for the whole batch (the relay sends dozens at a time), so a busy
        outbox costs one commit per batch instead of one per event."""
        entities = [self._entity(destination) for destination, _ in messages]
        for entity in entities:
            if entity.kind == "subscription":
                raise BusError(f"{entity.name!r} is a subscription; publish to its topic")
        first: dict[tuple[str, str], tuple[str, Envelope]] = {}
        for destination, envelope in messages:  # a repeat within the batch is a duplicate too
            first.setdefault((destination, envelope.eventId), (destination, envelope))
        unique = list(first.values())
        keys = {"dests": [d for d, _ in unique], "ids": [e.eventId for _, e in unique]}
        with self._pool.connection() as conn, conn.transaction():
            fresh = {(r["destination"], r["message_id"]) for r in conn.execute(CLAIM_IDS, keys).fetchall()}
            for destination, envelope in unique:
                if (destination, envelope.eventId) not in fresh:
                    log.info("duplicate message dropped", extra={"entity": destination, "messageId": envelope.eventId})
            batch = [(d, e) for d, e in unique if (d, e.eventId) in fresh]
            rows = conn.execute(FAN_OUT, {
                "dests": [d for d, _ in batch], "ids": [e.eventId for _, e in batch],
                "subjects": [e.eventType for _, e in batch],
                "bodies": [json.dumps(e.model_dump(mode="json")) for _, e in batch],
                "at": scheduled_at}).fetchall() if batch else []
            if self._forget_due(len(unique)):
                conn.execute(FORGET_DUPLICATES)
            for entity_name in sorted({r["entity"] for r in rows if r["ready"]}):
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, entity_name))

    def _forget_due(self, published: int) -> bool:
        """True about once per 1000 messages published: expired duplicate ids are forgotten."""
        before = self._published
        self._published += published
        return before // 1000 != self._published // 1000

    # --- receiving and settling -------------------------------------------------------

    def receive(self, entity: str, max_messages: int = 1,
                max_wait_seconds: float = 1.0) -> list[ReceivedMessage]:
        config = self._entity(entity)
        if config.kind == "topic":
            raise BusError(f"{entity!r} is a topic; receive from one of its subscriptions")
        deadline = time.monotonic() + max_wait_seconds
        while True:
            seen = self._listener.mark(entity)
            got = self._receive_now(config, max_messages)
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            self._listener.wait(entity, seen, min(remaining, self._poll))

    def _receive_now(self, config: EntityConfig, max_messages: int) -> list[ReceivedMessage]:
        params = {"entity": config.name, "n": max_messages, "max": config.max_delivery_count,
                  "lock": config.lock_duration, "reason": MAX_DEAD}
        while True:
            with self._pool.connection() as conn:
                rows = conn.execute(RECEIVE, params).fetchall()
            delivered = [_message(r) for r in sorted(rows, key=lambda r: r["seq"]) if not r["exhausted"]]
            for r in rows:
                if r["exhausted"]:
                    log.warning("message dead-lettered", extra={"entity": config.name, "messageId": r["message_id"],
                                                                "reason": MAX_DEAD})
            # Only dead-lettered rows this round: there may be live ones behind them.
            if delivered or not rows:
                return delivered

    def _settle(self, query: str, message: ReceivedMessage, **params: Any) -> None:
        if message.lock_token is None:
            raise LockLost(f"message {message.message_id} was peeked, not received")
        with self._pool.connection() as conn:
            row = conn.execute(query, {"seq": message.sequence_number, "token": message.lock_token,
                                       **params}).fetchone()
            if row is None:
                raise LockLost(f"the lock on message {message.message_id} in {message.entity} was lost")

    def complete(self, message: ReceivedMessage) -> None:
        self._settle(COMPLETE, message)

    def abandon(self, message: ReceivedMessage, *, retry_after_seconds: float = 0) -> None:
        config = self._entity(message.entity)
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(ABANDON, {"seq": message.sequence_number, "token": message.lock_token,
                                         "after": float(retry_after_seconds), "max": config.max_delivery_count,
                                         "reason": MAX_DEAD}).fetchone()
            if row is None:
                raise LockLost(f"the lock on message {message.message_id} in {message.entity} was lost")
            if row["ready"]:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message.entity))

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        self._settle(DEAD_LETTER, message, reason=reason[:200], description=description[:2000])

    # --- operations -------------------------------------------------------------------

    def stats(self) -> list[EntityStats]:
        with self._pool.connection() as conn:
            return [EntityStats(**r) for r in conn.execute(STATS).fetchall()]

    def peek(self, entity: str, *, dead_letter: bool = False, max_messages: int = 20) -> list[ReceivedMessage]:
        self._entity(entity)
        with self._pool.connection() as conn:
            rows = conn.execute(PEEK, {"entity": entity, "dead": dead_letter, "n": max_messages}).fetchall()
        return [_message({**r, "lock_token": None}) for r in rows]

    def resubmit(self, entity: str, message_id: str) -> int:
        self._entity(entity)
        with self._pool.connection() as conn, conn.transaction():
            moved = conn.execute(RESUBMIT, {"entity": entity, "id": message_id}).fetchall()
            if moved:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, entity))
        return len(moved)

    def trim(self, dead_letter_retention: timedelta, batch: int = 1000) -> int:
        """Deletes dead-lettered messages older than the retention (a batch per transaction) and
        expired duplicate-detection ids; completed messages are already gone. Returns how many
        dead letters went."""
        total = 0
        while True:
            with self._pool.connection() as conn:
                deleted = conn.execute(TRIM_DEAD_LETTERS, {"keep": dead_letter_retention, "batch": batch}).rowcount
            total += deleted
            if deleted < batch:
                break
        with self._pool.connection() as conn:
            conn.execute(FORGET_DUPLICATES)
        return total

    def ping(self) -> None:
        with self._pool.connection(timeout=1.0) as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._listener.close()
        self._pool.close()

