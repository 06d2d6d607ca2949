"""Idempotent replays through the real HTTP API of the real processes (issue #17, IETF
Idempotency-Key draft): a repeat racing its first request gets 409 with Retry-After, and a
repeat of a pending (202) answer shows the order as it is now."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import psycopg
import pytest

from valerix.chaos.switches import OFF_VALUES, gremlin_values, write_local

from support import auth

pytestmark = pytest.mark.e2e
BODY = {"productId": "SKU-005", "quantity": 1}


def key_saved(stack, key: str) -> bool:
    with psycopg.connect(stack.urls["order_db"]) as conn:
        return conn.execute("SELECT 1 FROM idempotency_keys WHERE key = %s", (key,)).fetchone() is not None


@pytest.fixture
def gremlin(stack):
    def delay(ms: int) -> None:
        write_local(stack.home / "chaos", gremlin_values(True, None, ms, ms, None))
        time.sleep(1.1)  # the processes re-read CHAOS_DIR at most every 0.5 s

    yield delay
    write_local(stack.home / "chaos", OFF_VALUES)
    time.sleep(1.1)


def test_a_repeat_while_the_first_is_in_flight_is_409_then_the_first_answer(stack, gremlin):
    gremlin(1500)  # inside the 2 s deadline: the first request is slow but confirms
    headers = {**auth.session(stack.order_url), "Idempotency-Key": str(uuid.uuid4())}
    first: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: first.update(r=httpx.post(
        f"{stack.order_url}/api/orders", json=BODY, headers=headers, timeout=15)))
    thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not key_saved(stack, headers["Idempotency-Key"]):
        time.sleep(0.02)  # until the order is saved; inventory is still thinking
    racing = httpx.post(f"{stack.order_url}/api/orders", json=BODY, headers=headers, timeout=15)
    thread.join(timeout=15)
    assert racing.status_code == 409, racing.text
    assert racing.headers["Retry-After"] == "1" and racing.headers["Content-Type"] == "application/problem+json"
    assert first["r"].status_code == 201
    again = httpx.post(f"{stack.order_url}/api/orders", json=BODY, headers=headers, timeout=15)
    assert (again.status_code, again.json()) == (201, first["r"].json())


def test_a_repeat_of_a_pending_answer_shows_the_order_as_it_is_now(stack, gremlin):
    gremlin(3000)  # past the deadline: 202, then the worker's verification confirms it
    headers = {**auth.session(stack.order_url), "Idempotency-Key": str(uuid.uuid4())}
    first = httpx.post(f"{stack.order_url}/api/orders", json=BODY, headers=headers, timeout=15)
    assert first.status_code == 202 and first.json()["status"] == "pending_verification"
    deadline = time.monotonic() + 30
    replay = httpx.post(f"{stack.order_url}/api/orders", json=BODY, headers=headers, timeout=15)
    while replay.status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.5)
        replay = httpx.post(f"{stack.order_url}/api/orders", json=BODY, headers=headers, timeout=15)
    assert replay.status_code == 201, replay.text
    assert replay.json()["orderId"] == first.json()["orderId"] and replay.json()["status"] == "confirmed"
