"""The real workers run housekeeping: their /metrics report table sizes and backlog ages."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.e2e

WANTED = {
    "order_worker_metrics": ['valerix_table_rows{service="order",table="orders"}',
                             'valerix_table_rows{service="order",table="idempotency_keys"}',
                             'valerix_outbox_oldest_unsent_age_seconds{service="order"}',
                             "valerix_orders_oldest_unfinished_age_seconds"],
    "inventory_worker_metrics": ['valerix_table_rows{service="inventory",table="reservations"}',
                                 'valerix_outbox_oldest_unsent_age_seconds{service="inventory"}'],
}


def test_workers_report_table_sizes_and_backlog_ages(stack):
    for port_name, names in WANTED.items():
        url = f"http://127.0.0.1:{getattr(stack.config.ports, port_name)}/metrics"
        deadline = time.monotonic() + 30
        while True:
            text = httpx.get(url, timeout=5).text
            missing = [name for name in names if name not in text]
            if not missing:
                break
            assert time.monotonic() < deadline, f"{port_name}: missing {missing}"
            time.sleep(0.5)
