"""A reservation that misses its deadline on the stream is answered 202, and inventory's late
answer then settles the order in the order API (order/late_answers.py) and withdraws the
VerifyOrder the outbox held back for it; with no late answer the held VerifyOrder goes out when
due. A real inventory gRPC server and real databases; the order service wired as in production
(``bootstrap.build_deps``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from valerix.order import bootstrap, service
from valerix.order.domain import OrderLine
from valerix.order.settings import OrderSettings

from support.db import stock

DEADLINE_MS = 600   # with the 200 ms settle allowance: 0.4 s for the reservation
HOLD_MS = 3000


def _chaos(chaos_dir, **values: str) -> None:
    for key, value in values.items():
        (chaos_dir / key).write_text(value)


def _settings(pool: ConnectionPool[Any], target: str, token: str, **overrides: Any) -> OrderSettings:
    conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
    return OrderSettings(order_database_url=conninfo, inventory_grpc_target=target, inventory_grpc_token=token,
                         reserve_deadline_ms=DEADLINE_MS, verify_hold_ms=HOLD_MS, **overrides)


@pytest.fixture
def wired(order_pool, inventory_target, grpc_token) -> Iterator[service.Deps]:
    deps = bootstrap.build_deps(_settings(order_pool, inventory_target, grpc_token), order_pool)
    yield deps
    deps.inventory.close()


def _verifications(pool: ConnectionPool[Any], order_id: str) -> list[dict[str, Any]]:
    """The order's VerifyOrder rows in the outbox."""
    with pool.connection() as conn:
        return conn.execute(
            "SELECT event_id::text, sent_at, extract(epoch FROM publish_after - created_at) AS held FROM outbox "
            "WHERE event_type = 'VerifyOrder' AND payload->'data'->>'orderId' = %s ORDER BY id", (order_id,)).fetchall()


def _order(pool: ConnectionPool[Any], order_id: str) -> dict[str, Any]:
    with pool.connection() as conn:
        row = conn.execute("SELECT status, reason, reservation_id FROM orders WHERE id = %s", (order_id,)).fetchone()
        row["history"] = [h["to_status"] for h in conn.execute(
            "SELECT to_status FROM order_status_history WHERE order_id = %s ORDER BY id", (order_id,))]
    return row


def _until_final(pool: ConnectionPool[Any], order_id: str, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while (row := _order(pool, order_id))["status"] in ("pending", "pending_verification"):
        assert time.monotonic() < deadline, row
        time.sleep(0.05)
    return row


def _place_late(deps: service.Deps, chaos_dir, quantity: int = 1) -> dict[str, Any]:
    _chaos(chaos_dir, GREMLIN_MODE="1", GREMLIN_EVERY_N="1", GREMLIN_MIN_DELAY_MS="1000",
           GREMLIN_MAX_DELAY_MS="1000")   # past the deadline, well within the hold
    placed = service.place_order(deps, [OrderLine("SKU-003", quantity)])
    assert isinstance(placed, service.Placed)
    assert (placed.order["status"], placed.order["reason"]) == ("pending_verification", "grpc_timeout")
    return placed.order


def test_a_late_answer_confirms_the_order_and_withdraws_its_held_verification(wired, chaos_dir, order_pool,
                                                                            inventory_pool):
    order = _place_late(wired, chaos_dir)
    [held] = _verifications(order_pool, order["id"])
    assert held["sent_at"] is None
    assert held["event_id"] == service.verify_event_id(order["id"])
    assert HOLD_MS / 1000 - 0.5 <= held["held"] <= HOLD_MS / 1000 + 0.5

    settled = _until_final(order_pool, order["id"], within=2.0)   # the answer comes ~0.6 s after the 202

    assert settled["status"] == "confirmed" and settled["reservation_id"]
    assert settled["history"] == ["pending", "pending_verification", "confirmed"]
    assert _verifications(order_pool, order["id"]) == []   # withdrawn before it was due
    assert stock(inventory_pool, "SKU-003") == 199
    with inventory_pool.connection() as conn:
        reservation = conn.execute("SELECT reservation_id, status FROM reservations WHERE order_id = %s",
                                   (order["id"],)).fetchone()
    assert (reservation["reservation_id"], reservation["status"]) == (settled["reservation_id"], "reserved")


def test_a_late_shortage_fails_the_order_and_holds_nothing(wired, chaos_dir, order_pool, inventory_pool):
    order = _place_late(wired, chaos_dir, quantity=500)   # SKU-003 has 200

    settled = _until_final(order_pool, order["id"], within=2.0)

    assert (settled["status"], settled["reason"]) == ("failed", "insufficient_stock")
    assert _verifications(order_pool, order["id"]) == []
    assert stock(inventory_pool, "SKU-003") == 200


def test_a_lost_late_answer_leaves_the_held_verification_to_go_out_when_due(wired, chaos_dir, order_pool):
    # Schrödinger's "processed, but the answer was lost": the late answer is an error, which says
    # nothing about the outcome, so the order waits for its verification.
    _chaos(chaos_dir, SCHRODINGER_MODE="1", SCHRODINGER_FAILURE="error", SCHRODINGER_CRASH_PROBABILITY="1")
    order = _place_late(wired, chaos_dir)
    time.sleep(1.5)   # the lost answer has come and gone

    assert _order(order_pool, order["id"])["status"] == "pending_verification"
    [held] = _verifications(order_pool, order["id"])
    assert held["sent_at"] is None and held["held"] > 2


def test_a_unary_transport_holds_nothing_back(order_pool, inventory_target, grpc_token, chaos_dir):
    # A unary call is cancelled at its deadline: no late answer can come, so nothing waits for one.
    deps = bootstrap.build_deps(_settings(order_pool, inventory_target, grpc_token, reserve_transport="unary"),
                                order_pool)
    try:
        order = _place_late(deps, chaos_dir)
    finally:
        deps.inventory.close()
    assert deps.verify_hold == 0.0
    [verify] = _verifications(order_pool, order["id"])
    assert verify["held"] is None
    assert verify["event_id"] != service.verify_event_id(order["id"])
