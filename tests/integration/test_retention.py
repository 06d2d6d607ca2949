"""Housekeeping on the real PostgreSQL: rows past their retention go, newer rows stay, and an
unsent outbox row never goes, however old."""

from __future__ import annotations

import uuid
from datetime import timedelta

from valerix.contracts.events import LowStockAlert
from valerix.kit import metrics, retention
from valerix.kit.service_worker import housekeeping
from valerix.kit.settings import CommonSettings
from valerix.kit.uow import UnitOfWork
from valerix.order import db as order_db

DAY = timedelta(days=1)


def outbox_rows(pool, n: int) -> list[int]:
    with UnitOfWork(pool) as uow:
        for i in range(n):
            uow.add_event(LowStockAlert(productId=f"p-{i}", currentStock=i, threshold=10))
        uow.commit()
    with pool.connection() as conn:
        return [r["id"] for r in conn.execute("SELECT id FROM outbox ORDER BY id")]


def remaining(pool, query: str) -> list:
    with pool.connection() as conn:
        return [next(iter(r.values())) for r in conn.execute(query)]


def test_sent_outbox_rows_past_retention_go_and_unsent_rows_never(service_pool):
    old_sent, new_sent, old_unsent, new_unsent = outbox_rows(service_pool, 4)
    with service_pool.connection() as conn:
        conn.execute("UPDATE outbox SET created_at = now() - interval '3 days', sent_at = now() - interval '2 days' "
                     "WHERE id = %s", (old_sent,))
        conn.execute("UPDATE outbox SET sent_at = now() - interval '1 hour' WHERE id = %s", (new_sent,))
        conn.execute("UPDATE outbox SET created_at = now() - interval '30 days' WHERE id = %s", (old_unsent,))
    assert retention.trim(service_pool, "test", retention.outbox(DAY)) == 1
    assert remaining(service_pool, "SELECT id FROM outbox ORDER BY id") == [new_sent, old_unsent, new_unsent]
    assert retention.trim(service_pool, "test", retention.outbox(timedelta(0))) == 1   # the newer sent row
    assert remaining(service_pool, "SELECT id FROM outbox ORDER BY id") == [old_unsent, new_unsent]


def test_trimming_works_in_batches(service_pool):
    ids = outbox_rows(service_pool, 7)
    with service_pool.connection() as conn:
        conn.execute("UPDATE outbox SET sent_at = now() - interval '2 days'")
    assert retention.trim(service_pool, "test", retention.outbox(DAY), batch=3) == len(ids)
    assert remaining(service_pool, "SELECT id FROM outbox") == []


def test_inbox_entries_past_retention_go(service_pool):
    with service_pool.connection() as conn:
        conn.execute("INSERT INTO inbox (consumer, event_id, handled_at) VALUES "
                     "('c', 'old', now() - interval '8 days'), ('c', 'new', now() - interval '6 days'), "
                     "('d', 'now', now())")
    assert retention.trim(service_pool, "test", retention.inbox(timedelta(days=7))) == 1
    assert sorted(remaining(service_pool, "SELECT event_id FROM inbox")) == ["new", "now"]


def test_idempotency_keys_past_24_hours_go(order_pool):
    keys = retention.Retention("idempotency_keys", DAY, order_db.TRIM_IDEMPOTENCY_KEYS)
    with order_pool.connection() as conn:
        for order_id, age in (("ORD-OLD", "25 hours"), ("ORD-NEW", "23 hours")):
            conn.execute("INSERT INTO orders (id, status) VALUES (%s, 'confirmed')", (order_id,))
            conn.execute("INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id, created_at) "
                         "VALUES ('c-1', %s, 'h', %s, now() - %s::interval)", (f"key-{order_id}", order_id, age))
    assert retention.trim(order_pool, "order", keys) == 1
    assert remaining(order_pool, "SELECT key FROM idempotency_keys") == ["key-ORD-NEW"]
    assert remaining(order_pool, "SELECT count(*) FROM orders") == [2]   # the orders themselves stay


def test_old_dead_letters_of_the_embedded_bus_go(bus):
    with bus._pool.connection() as conn:
        entity = conn.execute("SELECT name FROM bus_entities WHERE kind = 'queue' LIMIT 1").fetchone()["name"]
        for age, dead in (("15 days", True), ("13 days", True), ("30 days", False)):
            conn.execute("INSERT INTO bus_messages (entity, message_id, body, enqueued_at, dead_lettered_at) "
                         "VALUES (%s, %s, '{}', now() - %s::interval, "
                         "CASE WHEN %s THEN now() - %s::interval END)",
                         (entity, str(uuid.uuid4()), age, dead, age))
    assert bus.trim(timedelta(days=14)) == 1
    with bus._pool.connection() as conn:
        left = conn.execute("SELECT dead_lettered_at IS NOT NULL AS dead FROM bus_messages ORDER BY seq").fetchall()
    assert [r["dead"] for r in left] == [True, False]   # the younger dead letter and the active message


def test_the_worker_housekeeping_trims_everything_and_measures(service_pool, bus):
    settings = CommonSettings(outbox_retention_s=3600, inbox_retention_s=3600, dead_letter_retention_s=3600)
    old_sent, unsent = outbox_rows(service_pool, 2)
    with service_pool.connection() as conn:
        conn.execute("UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE id = %s", (old_sent,))
        conn.execute("UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE id = %s", (unsent,))
        conn.execute("INSERT INTO inbox (consumer, event_id, handled_at) VALUES ('c', 'x', now() - interval '2 hours')")
    trimmed = housekeeping(service_pool, bus, "hk-test", settings).step()
    assert trimmed == {"outbox": 1, "inbox": 1, "bus_dead_letters": 0}
    age = metrics.OUTBOX_OLDEST_UNSENT.labels(service="hk-test")._value.get()
    assert 90 <= age < 3600
    assert metrics.ROWS_TRIMMED.labels(service="hk-test", table="outbox")._value.get() == 1
    measured = {s.labels["table"] for m in metrics.TABLE_ROWS.collect() for s in m.samples
                if s.labels["service"] == "hk-test"}
    assert {"outbox", "inbox"} <= measured


def test_the_age_of_the_oldest_unfinished_order(order_pool):
    with order_pool.connection() as conn:
        assert order_db.oldest_unfinished_age(conn) == 0.0
        conn.execute("INSERT INTO orders (id, status, created_at) VALUES "
                     "('A', 'confirmed', now() - interval '1 hour'), "
                     "('B', 'pending_verification', now() - interval '5 minutes'), ('C', 'pending', now())")
        assert 300 <= order_db.oldest_unfinished_age(conn) < 3600
