"""Inventory-specific metrics (the shared ones live in valerix.kit.metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

RESERVATIONS = Counter("valerix_reservations_total", "ReserveStock outcomes", ["outcome"])
RECONCILER_REPAIRS = Counter("valerix_reconciler_repairs_total",
                             "Drift between orders and reservations the reconciler found", ["kind"])


class StockCollector(Collector):
    """Stock per product, read from the database at scrape time (always current, no drift)."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("valerix_stock_level", "Units in stock", labels=["product_id"])
        try:
            with self.pool.connection(timeout=1.0) as conn:
                for row in conn.execute("SELECT id, stock FROM products ORDER BY id"):
                    family.add_metric([row["id"]], float(row["stock"]))
        except Exception:  # noqa: S110 - a scrape without stock beats a failed scrape
            pass
        yield family
