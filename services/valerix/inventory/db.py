"""Inventory SQL: every statement the service runs, named, with bound parameters."""

from __future__ import annotations

import json
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
    return next(iter(lock_reservations(conn, [order_id])), None)


def lock_reservations(conn: Conn, order_ids: list[str]) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT order_id, reservation_id, status, reason, shortages FROM reservations "
        "WHERE order_id = ANY(%s) ORDER BY order_id FOR UPDATE", (order_ids,)).fetchall()


# A batch of reservations' first statement: claim each order's one reservation row (in order id
# order, so two batches racing on the same ids cannot deadlock), and only if one was claimed,
# lock the batch's products in id order (so two reservations never wait on each other) and read
# their stock under the lock. A repeat claims nothing (a concurrent duplicate waits at its claim
# until the first transaction ends). Rows back: each claimed order id, and each known product's
# stock and low-stock threshold.
_CLAIM_AND_LOCK = """
WITH claim AS (INSERT INTO reservations (order_id, reservation_id, status)
               SELECT c.order_id, c.reservation_id, %(status)s
               FROM unnest(%(orders)s::text[], %(reservations)s::text[]) AS c(order_id, reservation_id)
               ORDER BY c.order_id
               ON CONFLICT (order_id) DO NOTHING RETURNING order_id),
     held AS (SELECT p.id, p.stock, p.low_stock_threshold FROM products p
              WHERE p.id = ANY(%(products)s::text[]) AND EXISTS (SELECT FROM claim) ORDER BY p.id FOR UPDATE)
SELECT order_id, NULL AS product_id, NULL::bigint AS stock, NULL::bigint AS low_stock_threshold FROM claim
UNION ALL
SELECT NULL, id, stock, low_stock_threshold FROM held
"""

# The second, once the batch is decided: the conditional decrement of each locked product by
# what the batch took of it, the reserved orders' lines, and the refused orders' reasons. Its own
# statement, so it reads the rows as locked, never an older version (an UPDATE's WHERE is judged
# first on the version its statement's snapshot sees).
_TAKE_AND_REFUSE = """
WITH lines AS (SELECT * FROM unnest(%(orders)s::text[], %(products)s::text[], %(quantities)s::int[])
               AS l(order_id, product_id, quantity)),
     recorded AS (INSERT INTO reservation_lines (order_id, product_id, quantity) SELECT * FROM lines),
     refused AS (UPDATE reservations r SET status = 'rejected', reason = x.reason, shortages = x.shortages::jsonb,
                                           updated_at = now()
                 FROM unnest(%(refused)s::text[], %(reasons)s::text[], %(shortages)s::text[])
                      AS x(order_id, reason, shortages)
                 WHERE r.order_id = x.order_id),
     taken AS (SELECT product_id, sum(quantity) AS quantity FROM lines GROUP BY product_id)
UPDATE products p SET stock = p.stock - t.quantity, updated_at = now()
FROM taken t WHERE p.id = t.product_id AND p.stock >= t.quantity
RETURNING p.id
"""


def claim_and_lock_many(conn: Conn, reservation_ids: dict[str, str], status: str,
                        product_ids: list[str]) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """(the order ids claimed, product id -> {stock, low_stock_threshold} under lock); see
    ``_CLAIM_AND_LOCK``. ``reservation_ids``: order id -> the reservation id to claim it with."""
    rows = conn.execute(_CLAIM_AND_LOCK, {
        "orders": list(reservation_ids), "reservations": list(reservation_ids.values()), "status": status,
        "products": product_ids}).fetchall()
    return ({row["order_id"] for row in rows if row["order_id"] is not None},
            {row["product_id"]: row for row in rows if row["product_id"] is not None})


def take_and_refuse(conn: Conn, takes: list[tuple[str, str, int]],
                    refusals: list[tuple[str, str, list[dict[str, Any]]]]) -> None:
    """Records ``takes`` (order id, product id, quantity) and takes their stock from the locked
    products, and marks ``refusals`` (order id, reason, shortages) rejected. Raises if a product
    had less stock than its takes: the rows are locked and were checked, so that is a bug, and
    the transaction must not commit."""
    if not takes and not refusals:
        return
    rows = conn.execute(_TAKE_AND_REFUSE, {
        "orders": [t[0] for t in takes], "products": [t[1] for t in takes], "quantities": [t[2] for t in takes],
        "refused": [r[0] for r in refusals], "reasons": [r[1] for r in refusals],
        "shortages": [json.dumps(r[2]) for r in refusals]}).fetchall()
    wanted = {product_id for _, product_id, _ in takes}
    if len(rows) != len(wanted):
        raise RuntimeError(f"a reservation batch took {len(rows)} of {len(wanted)} products")


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
