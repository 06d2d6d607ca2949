"""What the bench and the chaos pipeline share: a chaos scenario, waiting for every order to
become final once chaos stops (the settle bound of DESIGN §4), and each order's journey."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from valerix.checks import invariants


@dataclass(frozen=True)
class Scenario:
    name: str
    chaos: dict[str, str]
    description: str
    share_of_normal: float = 0.0   # bench: offered load under chaos, as a share of normal's confirmed orders/s


def settle(order_url: str, bound: float,
           progress: Callable[[float, int], None] | None = None) -> tuple[float | None, list[list[float]]]:
    """Seconds until no order is pending any more (None past the bound), and the curve of
    unfinished orders over that time, which shows how fast the recovery path drains."""
    started, curve = time.monotonic(), []
    while True:
        at, left = round(time.monotonic() - started, 2), invariants.unfinished_count(order_url)
        curve.append([at, left])
        if left == 0:
            return at, curve
        if at >= bound:
            return None, curve
        if progress is not None and len(curve) % 8 == 1:
            progress(at, left)
        time.sleep(0.25)


def journeys(order_url: str, order_ids: list[str]) -> list[dict[str, Any]]:
    if not order_ids:
        return []
    with psycopg.connect(order_url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT order_id, to_status, at FROM order_status_history WHERE order_id = ANY(%s) "
                            "ORDER BY order_id, id", (order_ids,)).fetchall()
    by_order: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_order.setdefault(row["order_id"], []).append(row)
    found = []
    for order_id, steps in by_order.items():
        took = (steps[-1]["at"] - steps[0]["at"]).total_seconds()
        path = " → ".join(s["to_status"] for s in steps)
        found.append({"orderId": order_id, "journey": f"{path} in {took:.1f} s", "final": steps[-1]["to_status"],
                      "seconds": round(took, 2)})
    return sorted(found, key=lambda j: j["orderId"])
