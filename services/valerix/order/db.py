"""Order SQL: every statement the order service runs, named, with bound parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from valerix.order.domain import Order, OrderLine, OrderStatus

Conn = psycopg.Connection[dict[str, Any]]


# The status changes orders made since they were last saved, as one INSERT over arrays: a
# statement per unit of work, not one per row (each statement costs a Python and a server round).
# ``{moved}``: a condition on the order id (the conditional UPDATE below keeps only its rows).
_HISTORY_ROWS = """
INSERT INTO order_status_history (order_id, from_status, to_status, reason)
SELECT c.order_id, c.from_status, c.to_status, c.reason
FROM unnest(%(change_orders)s::text[], %(from)s::text[], %(to)s::text[], %(reasons)s::text[])
     WITH ORDINALITY AS c(order_id, from_status, to_status, reason, n)
WHERE {moved} ORDER BY c.n
"""
_ALL_HISTORY_ROWS = _HISTORY_ROWS.format(moved="true")

# Orders, their lines and their first status changes, a batch in one statement (the lines'
# foreign key is checked at the statement's end, when the order rows exist).
_INSERT_ORDERS = f"""
WITH placed AS (INSERT INTO orders (id, status, customer_id)
                SELECT * FROM unnest(%(ids)s::text[], %(statuses)s::text[], %(customers)s::text[])),
     lines AS (INSERT INTO order_items (order_id, line_no, product_id, quantity)
               SELECT * FROM unnest(%(line_orders)s::text[], %(line_nos)s::int[], %(line_products)s::text[],
                                    %(line_quantities)s::int[]))
{_ALL_HISTORY_ROWS}
"""


def _changes_params(orders: Sequence[Order]) -> dict[str, Any]:
    """Every status change of ``orders`` not yet saved, as the arrays ``_HISTORY_ROWS`` takes."""
    changes = [(order.id, change) for order in orders for change in order.changes]
    return {"change_orders": [order_id for order_id, _ in changes],
            "from": [c.from_status.value if c.from_status else None for _, c in changes],
            "to": [c.to_status.value for _, c in changes], "reasons": [c.reason for _, c in changes]}


def insert_orders(conn: Conn, orders: Sequence[Order]) -> None:
    """Saves new orders. Their ``changes`` stay as they are until the caller has committed: a
    batch that fails is saved again order by order, and each must still carry its history."""
    lines = [(order.id, n, line) for order in orders for n, line in enumerate(order.lines)]
    conn.execute(_INSERT_ORDERS, {
        **_changes_params(orders), "ids": [order.id for order in orders],
        "statuses": [order.status.value for order in orders], "customers": [order.customer_id for order in orders],
        "line_orders": [order_id for order_id, _, _ in lines], "line_nos": [n for _, n, _ in lines],
        "line_products": [line.product_id for _, _, line in lines],
        "line_quantities": [line.quantity for _, _, line in lines]})


def insert_order(conn: Conn, order: Order) -> None:
    insert_orders(conn, [order])
    order.changes.clear()


def record_changes(conn: Conn, order: Order) -> None:
    """Appends the order's new status changes to its history, which is also what the
    storefront's live feed reads (no NOTIFY: see order/live_status.py)."""
    if not order.changes:
        return
    conn.execute(_ALL_HISTORY_ROWS, _changes_params([order]))
    order.changes.clear()


# The live feed's position: (xid as text, id) of the last history row it took. It starts at the
# oldest transaction still running, so what ended before is never replayed.
FeedCursor = tuple[str, int]


def status_feed_start(conn: Conn) -> FeedCursor:
    row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xid").fetchone()
    assert row is not None
    return row["xid"], 0


def status_changes_after(conn: Conn, after: FeedCursor, limit: int) -> list[dict[str, Any]]:
    """History rows past the cursor whose transactions, and every older one, have ended: no row
    can still commit behind them. In (xid, id) order, the order the cursor pages in."""
    return conn.execute(
        "SELECT h.xid::text AS xid, h.id, h.order_id, h.to_status, h.reason, o.customer_id "
        "FROM order_status_history h JOIN orders o ON o.id = h.order_id "
        "WHERE (h.xid, h.id) > (%(xid)s::xid8, %(id)s) AND h.xid < pg_snapshot_xmin(pg_current_snapshot()) "
        "ORDER BY h.xid, h.id LIMIT %(limit)s",
        {"xid": after[0], "id": after[1], "limit": limit}).fetchall()


def lock_order(conn: Conn, order_id: str) -> Order | None:
    row = conn.execute("SELECT id, status, reason, reservation_id, customer_id FROM orders WHERE id = %s FOR UPDATE",
                       (order_id,)).fetchone()
    if row is None:
        return None
    items = conn.execute("SELECT product_id, quantity FROM order_items WHERE order_id = %s ORDER BY line_no",
                         (order_id,)).fetchall()
    return Order(id=row["id"], status=OrderStatus(row["status"]), reason=row["reason"],
                 reservation_id=row["reservation_id"], customer_id=row["customer_id"],
                 lines=tuple(OrderLine(i["product_id"], i["quantity"]) for i in items))


def save_status(conn: Conn, order: Order, *, verify_sent: bool = False) -> None:
    conn.execute(
        "UPDATE orders SET status = %s, reason = %s, reservation_id = %s, updated_at = clock_timestamp(), "
        "verify_attempts = verify_attempts + %s, asserted_at = NULL, "
        "last_verify_at = CASE WHEN %s THEN clock_timestamp() ELSE last_verify_at END WHERE id = %s",
        (order.status.value, order.reason, order.reservation_id, int(verify_sent), verify_sent, order.id))
    record_changes(conn, order)


# The placing requests' own changes, with their history rows, a batch in one statement: the
# UPDATE only moves a pending order, and an order's history follows only if it moved.
_ADVANCE_FROM_PENDING = f"""
WITH wanted AS (SELECT * FROM unnest(%(ids)s::text[], %(statuses)s::text[], %(order_reasons)s::text[],
                                     %(reservations)s::text[], %(verify_sent)s::bool[])
                AS w(id, status, reason, reservation_id, verify_sent)),
     moved AS (
    UPDATE orders o SET status = w.status, reason = w.reason, reservation_id = w.reservation_id,
                        updated_at = clock_timestamp(), verify_attempts = o.verify_attempts + w.verify_sent::int,
                        last_verify_at = CASE WHEN w.verify_sent THEN clock_timestamp() ELSE o.last_verify_at END
    FROM wanted w WHERE o.id = w.id AND o.status = 'pending' RETURNING o.id, o.created_at, o.updated_at),
     changes AS ({_HISTORY_ROWS.format(moved="c.order_id IN (SELECT id FROM moved)")})
SELECT id, created_at, updated_at FROM moved
"""


def advance_from_pending(conn: Conn, changed: Sequence[tuple[Order, bool]]) -> dict[str, dict[str, Any]]:
    """The placing requests' own changes, (order, verify_sent) each: one conditional UPDATE
    instead of lock-read-write. Order id -> {created_at, updated_at} of the orders it moved; an
    order missing was moved first by something else (the sweeper, a verdict). As with
    ``insert_orders``, clearing the orders' ``changes`` is the caller's, after its commit."""
    orders = [order for order, _ in changed]
    rows = conn.execute(_ADVANCE_FROM_PENDING, {
        **_changes_params(orders), "ids": [order.id for order in orders],
        "statuses": [order.status.value for order in orders], "order_reasons": [order.reason for order in orders],
        "reservations": [order.reservation_id for order in orders],
        "verify_sent": [verify_sent for _, verify_sent in changed]}).fetchall()
    return {row["id"]: {"created_at": row["created_at"], "updated_at": row["updated_at"]} for row in rows}


def mark_verify_resent(conn: Conn, order_id: str) -> None:
    conn.execute("UPDATE orders SET verify_attempts = verify_attempts + 1, last_verify_at = clock_timestamp() "
                 "WHERE id = %s", (order_id,))


ORDER_VIEW = """
SELECT o.id, o.status, o.reason, o.reservation_id, o.customer_id, o.created_at, o.updated_at,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('productId', i.product_id, 'quantity', i.quantity)
                                  ORDER BY i.line_no), '[]') FROM order_items i WHERE i.order_id = o.id) AS items
FROM orders o
"""


def get_order(conn: Conn, order_id: str) -> dict[str, Any] | None:
    return conn.execute(ORDER_VIEW + " WHERE o.id = %s", (order_id,)).fetchone()


def history(conn: Conn, order_id: str) -> list[dict[str, Any]]:
    return conn.execute("SELECT from_status, to_status, reason, at FROM order_status_history "
                        "WHERE order_id = %s ORDER BY id", (order_id,)).fetchall()


def list_orders(conn: Conn, status: OrderStatus | None, limit: int,
                after: tuple[datetime, str] | None, owner: str | None = None) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated on (created_at, id) so pages never skip or repeat;
    only ``owner``'s orders unless it is None (an operator)."""
    where: list[str] = []
    params: list[Any] = []
    if owner is not None:
        where.append("o.customer_id = %s")
        params.append(owner)
    if status is not None:
        where.append("o.status = %s")
        params.append(status.value)
    if after is not None:
        where.append("(o.created_at, o.id) < (%s, %s)")
        params += [after[0], after[1]]
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    return conn.execute(ORDER_VIEW + clause + " ORDER BY o.created_at DESC, o.id DESC LIMIT %s",
                        (*params, limit)).fetchall()


def find_idempotency(conn: Conn, customer_id: str, key: str, in_flight_seconds: float) -> dict[str, Any] | None:
    """The key's row; ``in_flight``: created within the bound (its first request may still be
    answering), by the database's clock, which every api process shares."""
    return conn.execute(
        "SELECT key, request_hash, order_id, response_status, response_body, "
        "created_at > clock_timestamp() - make_interval(secs => %s) AS in_flight "
        "FROM idempotency_keys WHERE customer_id = %s AND key = %s",
        (in_flight_seconds, customer_id, key)).fetchone()


def insert_idempotency_keys(conn: Conn, keys: Sequence[tuple[str, str, str, str]]) -> None:
    """(customer id, key, request hash, order id) each, in one statement."""
    conn.execute("INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id) "
                 "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])",
                 [list(column) for column in zip(*keys, strict=True)])


def store_response(conn: Conn, customer_id: str, key: str, status: int, body: dict[str, Any]) -> None:
    conn.execute("UPDATE idempotency_keys SET response_status = %s, response_body = %s "
                 "WHERE customer_id = %s AND key = %s AND response_status IS NULL",
                 (status, Jsonb(body), customer_id, key))


def unfinished(conn: Conn, older_than_seconds: float, limit: int) -> list[dict[str, Any]]:
    """Orders not final whose last change is older than the bound; locked, skipping busy ones."""
    return conn.execute(
        "SELECT id, status, created_at, updated_at, last_verify_at, verify_attempts FROM orders "
        "WHERE status IN ('pending', 'pending_verification') "
        "AND coalesce(last_verify_at, updated_at) < clock_timestamp() - make_interval(secs => %s) "
        "ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (older_than_seconds, limit)).fetchall()


def unasserted_final(conn: Conn, older_than_seconds: float, limit: int) -> list[dict[str, Any]]:
    """Final orders whose state the reconciler has not asserted yet, final for longer than the
    bound (their own events had their chance); locked, skipping busy ones."""
    return conn.execute(
        "SELECT id, status FROM orders WHERE asserted_at IS NULL "
        "AND status IN ('confirmed', 'failed', 'cancelled', 'shipped') "
        "AND updated_at < clock_timestamp() - make_interval(secs => %s) "
        "ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (older_than_seconds, limit)).fetchall()


def mark_asserted(conn: Conn, order_ids: list[str]) -> None:
    conn.execute("UPDATE orders SET asserted_at = clock_timestamp() WHERE id = ANY(%s)", (order_ids,))


def count_pending_verification(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM orders WHERE status = 'pending_verification'").fetchone()
    return int(row["n"]) if row else 0


def oldest_unfinished_age(conn: Conn) -> float:
    """Seconds since the oldest order still pending or pending verification was created (0: none)."""
    row = conn.execute("SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM orders "
                       "WHERE status IN ('pending', 'pending_verification')").fetchone()
    return float(row["age"]) if row else 0.0


# Idempotency keys are kept 24 h by default, as Stripe keeps them (housekeeping deletes the rest).
TRIM_IDEMPOTENCY_KEYS = """
DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM idempotency_keys WHERE created_at < now() - %(keep)s ORDER BY created_at LIMIT %(batch)s))
"""
TABLES = ("orders", "order_items", "order_status_history", "idempotency_keys")


def orders_by_status(conn: Conn) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {s.value: set() for s in OrderStatus}
    for row in conn.execute("SELECT id, status FROM orders"):
        found[row["status"]].add(row["id"])
    return found


