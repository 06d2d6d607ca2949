"""Small read helpers the tests share."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool


def stock(pool: ConnectionPool[Any], product_id: str) -> int:
    with pool.connection() as conn:
        row = conn.execute("SELECT stock FROM products WHERE id = %s", (product_id,)).fetchone()
        assert row is not None
        return int(row["stock"])


def outbox_types(pool: ConnectionPool[Any]) -> list[str]:
    with pool.connection() as conn:
        return [r["event_type"] for r in conn.execute("SELECT event_type FROM outbox ORDER BY id")]
