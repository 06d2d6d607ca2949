"""The invariants of DESIGN §4, checked against both services' databases after a run.

This is an operator tool: it reads order_db and inventory_db side by side (read-only), which
no service ever does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from valerix.inventory import db as inventory_db
from valerix.order import db as order_db

FINAL = ("confirmed", "failed", "cancelled", "shipped")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    examples: list[str] = field(default_factory=list)


@dataclass
class Report:
    checks: list[Check]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "examples": c.examples[:10]}
                           for c in self.checks]}


def _check(name: str, bad: Iterable[str], what: str) -> Check:
    bad = sorted(bad)
    return Check(name, not bad, f"{len(bad)} {what}" if bad else "holds", bad[:10])


# Units taken by active or shipped reservations beyond what a product ever had.
OVERSOLD = ("SELECT COALESCE(sum(GREATEST(0, held - initial_stock)), 0) AS units FROM ("
            "  SELECT p.id, p.initial_stock, COALESCE(sum(l.quantity), 0) AS held FROM products p"
            "  LEFT JOIN reservation_lines l ON l.product_id = p.id AND EXISTS ("
            "    SELECT 1 FROM reservations r WHERE r.order_id = l.order_id AND r.status IN ('reserved', 'shipped'))"
            "  GROUP BY p.id, p.initial_stock) AS per_product")


def unfinished_count(order_url: str) -> int:
    with psycopg.connect(order_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT count(*) AS n FROM orders WHERE status <> ALL(%s)", (list(FINAL),)).fetchone()
    return int(row["n"]) if row else 0


def check(order_url: str, inventory_url: str, acknowledged: Iterable[str] = ()) -> Report:
    with psycopg.connect(order_url, row_factory=dict_row) as oc, \
            psycopg.connect(inventory_url, row_factory=dict_row) as ic:
        orders = order_db.orders_by_status(oc)
        counts = {status: len(ids) for status, ids in orders.items()}
        reservations = inventory_db.reservations_by_status(ic)
        stock = inventory_db.invariant_report(ic)
        oversold = ic.execute(OVERSOLD).fetchone()
        per_order = ic.execute("SELECT order_id FROM reservations GROUP BY order_id HAVING count(*) > 1").fetchall()
    counts["oversold_units"] = int(oversold["units"]) if oversold else 0
    all_orders = set().union(*orders.values())
    held = reservations["reserved"]
    gone = reservations["shipped"]
    checks = [
        Check("stock never negative", stock["negative_stock"] == 0, f"{stock['negative_stock']} products below zero"),
        _check("initial = stock + active reservations", [r["id"] for r in stock["drift"]], "products drifted"),
        _check("at most one reservation per order", [r["order_id"] for r in per_order], "orders reserved twice"),
        _check("confirmed orders hold a reservation", orders["confirmed"] - held, "confirmed orders hold no stock"),
        _check("failed and cancelled orders hold nothing", (orders["failed"] | orders["cancelled"]) & held,
               "final orders still hold stock"),
        # A shipped order's reservation is still "reserved" until inventory hears OrderShipped.
        _check("every reservation belongs to a confirmed order", held - orders["confirmed"] - orders["shipped"],
               "reservations without a confirmed order (oversold or leaked)"),
        _check("shipped orders' stock stays out", orders["shipped"] - held - gone,
               "shipped orders whose stock came back"),
        _check("only shipped orders have shipped reservations", gone - orders["shipped"],
               "shipped reservations of unshipped orders"),
        _check("every acknowledged order exists", set(acknowledged) - all_orders, "acknowledged orders are missing"),
        Check("no unit oversold", counts["oversold_units"] == 0, f"{counts['oversold_units']} units oversold"),
        _check("every order is final", orders["pending"] | orders["pending_verification"], "orders not final"),
    ]
    return Report(checks, counts)
