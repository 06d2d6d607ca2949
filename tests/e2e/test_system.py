"""The real system: every process under supervisor, real PostgreSQL, real gRPC, real bus."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from valerix.chaos.switches import OFF_VALUES, gremlin_values, schrodinger_values, write_local
from valerix.checks import invariants

pytestmark = pytest.mark.e2e


def wait_final(stack, order_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = httpx.get(f"{stack.order_url}/api/orders/{order_id}", timeout=5).json()
        if order["status"] in ("confirmed", "failed", "cancelled"):
            return order
        time.sleep(0.2)
    raise AssertionError(f"{order_id} not final after {timeout}s: {order}")


@pytest.fixture(autouse=True)
def no_chaos(stack):
    write_local(stack.home / "chaos", OFF_VALUES)
    yield
    write_local(stack.home / "chaos", OFF_VALUES)
    time.sleep(1.1)


def test_an_order_is_confirmed_and_stock_is_visible_on_inventory(stack):
    before = httpx.get(f"{stack.inventory_url}/api/products/SKU-002", timeout=5).json()["stock"]
    response = httpx.post(f"{stack.order_url}/api/orders", json={"productId": "SKU-002", "quantity": 3}, timeout=5)
    assert response.status_code == 201, response.text
    assert httpx.get(f"{stack.inventory_url}/api/products/SKU-002", timeout=5).json()["stock"] == before - 3
    for url in (stack.order_url, stack.inventory_url):
        health = httpx.get(f"{url}/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "healthy", health.text


def test_gremlin_answers_202_fast_and_the_order_is_confirmed_by_the_workers(stack):
    write_local(stack.home / "chaos", gremlin_values(True, 1, 3000, 3000, None))
    time.sleep(1.1)
    started = time.monotonic()
    response = httpx.post(f"{stack.order_url}/api/orders", json={"productId": "SKU-004", "quantity": 1}, timeout=10)
    assert time.monotonic() - started < 2.5
    assert response.status_code == 202 and response.headers["Retry-After"] == "2"
    write_local(stack.home / "chaos", OFF_VALUES)
    order = wait_final(stack, response.json()["orderId"])
    assert order["status"] == "confirmed"
    assert [h["to"] for h in order["history"]] == ["pending", "pending_verification", "confirmed"]


def test_schrodinger_crash_is_restarted_and_the_order_still_ends_right(stack):
    pid = stack.pid_of("inventory-api")
    write_local(stack.home / "chaos", schrodinger_values(True, 1.0, "crash", None))
    time.sleep(1.1)
    response = httpx.post(f"{stack.order_url}/api/orders", json={"productId": "SKU-005", "quantity": 2}, timeout=10)
    assert response.status_code == 202 and response.json()["reason"] in ("connection_error", "server_error")
    write_local(stack.home / "chaos", OFF_VALUES)
    order = wait_final(stack, response.json()["orderId"])
    assert order["status"] == "confirmed"  # it committed before dying: verification finds it
    deadline = time.monotonic() + 15
    while stack.pid_of("inventory-api") in (0, pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.pid_of("inventory-api") not in (0, pid)
    report = invariants.check(stack.urls["order_db"], stack.urls["inventory_db"])
    assert report.ok, report.as_dict()


def test_a_killed_worker_is_restarted_and_catches_up(stack):
    pid = stack.pid_of("order-worker")
    os.kill(pid, signal.SIGKILL)
    write_local(stack.home / "chaos", gremlin_values(True, 1, 2500, 2500, None))
    time.sleep(1.1)
    response = httpx.post(f"{stack.order_url}/api/orders", json={"productId": "SKU-001", "quantity": 1}, timeout=10)
    assert response.status_code == 202
    write_local(stack.home / "chaos", OFF_VALUES)
    assert wait_final(stack, response.json()["orderId"], timeout=30)["status"] == "confirmed"
    assert stack.pid_of("order-worker") not in (0, pid)
