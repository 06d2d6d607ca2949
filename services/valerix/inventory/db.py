"""Inventory SQL: every statement the service runs, named, with bound parameters."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[dict[str, Any]]

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


def take_stock(conn: Conn, product_id: str, quantity: int) -> dict[str, Any] | None:
    """The conditional decrement: no row back means unknown product or not enough stock."""
    return conn.execute(
        "UPDATE products SET stock = stock - %(q)s, updated_at = now() "
        "WHERE id = %(id)s AND stock >= %(q)s RETURNING stock, low_stock_threshold",
        {"id": product_id, "q": quantity}).fetchone()


def stock_of(conn: Conn, product_id: str) -> int | None:
    row = conn.execute("SELECT stock FROM products WHERE id = %s", (product_id,)).fetchone()
    return None if row is None else int(row["stock"])


def add_lines(conn: Conn, order_id: str, lines: list[tuple[str, int]]) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO reservation_lines (order_id, product_id, quantity) VALUES (%s, %s, %s)",
                        [(order_id, pid, q) for pid, q in lines])


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
