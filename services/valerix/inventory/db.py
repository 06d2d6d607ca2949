"""Inventory SQL: every statement the service runs, named, with bound parameters."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[dict[str, Any]]

TABLES = ("products", "reservations", "reservation_lines")  # sizes reported by housekeeping
PRODUCT_COLUMNS = "id, name, price_cents, stock, initial_stock, low_stock_threshold"


def list_products(conn: Conn, ids: list[str] | None = None) -> list[dict[str, Any]]:
    if ids:
        return conn.execute(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ANY(%s) ORDER BY id",
                            (ids,)).fetchall()
    return conn.execute(f"SELECT {PRODUCT_COLUMNS} FROM products ORDER BY id").fetchall()


def claim_reservation(conn: Conn, order_id: str, reservation_id: str | None, status: str) -> bool:
    """Inserts the order's one reservation row; False when it already exists (a repeat).
    A concurrent duplicate waits here until the first transaction ends."""
    row = conn.execute(
        "INSERT INTO reservations (order_id, reservation_id, status) VALUES (%s, %s, %s) "
        "ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
        (order_id, reservation_id, status)).fetchone()
    return row is not None


def lock_reservation(conn: Conn, order_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT order_id, reservation_id, status, reason, shortages FROM reservations "
        "WHERE order_id = %s FOR UPDATE", (order_id,)).fetchone()


# A reservation's first statement: claim the order's one reservation row, and only if that
# succeeded lock its products in id order (so two reservations never wait on each other) and
# read their stock under the lock. A repeat claims nothing and so locks nothing (a concurrent
# duplicate waits at the claim until the first transaction ends). Rows back: ``claimed``, and
# per known product its stock and low-stock threshold.
_CLAIM_AND_LOCK = """
WITH claim AS (INSERT INTO reservations (order_id, reservation_id, status)
               VALUES (%(order)s, %(reservation)s, %(status)s)
               ON CONFLICT (order_id) DO NOTHING RETURNING order_id),
     held AS (SELECT p.id, p.stock, p.low_stock_threshold FROM products p
              WHERE p.id = ANY(%(products)s::text[]) AND EXISTS (SELECT FROM claim) ORDER BY p.id FOR UPDATE)
SELECT c.claimed, h.id AS product_id, h.stock, h.low_stock_threshold
FROM (SELECT EXISTS (SELECT FROM claim) AS claimed) c LEFT JOIN held h ON true
ORDER BY h.id
"""

# The second, once every line fits: the conditional decrement of each locked product, and the
# reservation's lines. Its own statement, so it reads the rows as locked, never an older version
# (an UPDATE's WHERE is judged first on the version its statement's snapshot sees).
_TAKE = """
WITH wanted AS (SELECT * FROM unnest(%(products)s::text[], %(quantities)s::int[]) AS w(product_id, quantity)),
     recorded AS (INSERT INTO reservation_lines (order_id, product_id, quantity)
                  SELECT %(order)s, product_id, quantity FROM wanted)
UPDATE products p SET stock = p.stock - w.quantity, updated_at = now()
FROM wanted w WHERE p.id = w.product_id AND p.stock >= w.quantity
RETURNING p.id AS product_id, p.stock
"""


def claim_and_lock(conn: Conn, order_id: str, reservation_id: str, status: str,
                   product_ids: list[str]) -> tuple[bool, dict[str, dict[str, Any]]]:
    """(claimed, product id -> {stock, low_stock_threshold} under lock); see ``_CLAIM_AND_LOCK``."""
    rows = conn.execute(_CLAIM_AND_LOCK, {"order": order_id, "reservation": reservation_id, "status": status,
                                          "products": product_ids}).fetchall()
    return bool(rows[0]["claimed"]), {row["product_id"]: row for row in rows if row["product_id"] is not None}


def take(conn: Conn, order_id: str, lines: list[tuple[str, int]]) -> dict[str, int]:
    """Takes every line's quantity from its locked product and records the lines; product id ->
    stock left, for each product the conditional decrement matched."""
    rows = conn.execute(_TAKE, {"order": order_id, "products": [p for p, _ in lines],
                                "quantities": [q for _, q in lines]}).fetchall()
    return {row["product_id"]: int(row["stock"]) for row in rows}


def reservation_lines(conn: Conn, order_id: str) -> list[dict[str, Any]]:
    return conn.execute("SELECT product_id, quantity FROM reservation_lines WHERE order_id = %s "
                        "ORDER BY product_id", (order_id,)).fetchall()


def return_stock(conn: Conn, product_id: str, quantity: int) -> int:
    row = conn.execute("UPDATE products SET stock = stock + %s, updated_at = now() WHERE id = %s "
                       "RETURNING stock", (quantity, product_id)).fetchone()
    assert row is not None
    return int(row["stock"])


def set_reservation_status(conn: Conn, order_id: str, status: str, reason: str | None,
                           shortages: list[dict[str, Any]] | None = None) -> None:
    conn.execute("UPDATE reservations SET status = %s, reason = %s, shortages = %s, updated_at = now() "
                 "WHERE order_id = %s",
                 (status, reason, Jsonb(shortages) if shortages is not None else None, order_id))


def invariant_report(conn: Conn) -> dict[str, Any]:
    """Facts the chaos and benchmark checks assert on (DESIGN §4)."""
    negative = conn.execute("SELECT count(*) AS n FROM products WHERE stock < 0").fetchone()
    drift = conn.execute(
        "SELECT p.id, p.initial_stock, p.stock, COALESCE(sum(l.quantity), 0) AS reserved "
        "FROM products p LEFT JOIN reservation_lines l ON l.product_id = p.id "
        "  AND EXISTS (SELECT 1 FROM reservations r WHERE r.order_id = l.order_id "
        "              AND r.status IN ('reserved', 'shipped')) "
        "GROUP BY p.id HAVING p.initial_stock <> p.stock + COALESCE(sum(l.quantity), 0)").fetchall()
    return {"negative_stock": int(negative["n"]) if negative else 0, "drift": drift}


def reservations_by_status(conn: Conn) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"reserved": set(), "rejected": set(), "released": set(), "shipped": set()}
    for row in conn.execute("SELECT order_id, status FROM reservations"):
        found[row["status"]].add(row["order_id"])
    return found
