"""The order REST API on real databases and a real gRPC inventory server."""

from __future__ import annotations

import json
import time

import pytest

from support import auth
from support.db import outbox_types, stock

PROBLEM = "application/problem+json"


def place(client, body, **headers):
    return client.post("/api/orders", data=json.dumps(body), content_type="application/json", headers=headers)


def server_timing(response) -> dict[str, float]:
    """Server-Timing's metrics, name -> dur (ms)."""
    metrics = (part.strip().split(";dur=") for part in response.headers["Server-Timing"].split(","))
    return {name: float(dur) for name, dur in metrics}


def count_orders(pool) -> int:
    with pool.connection() as conn:
        return int(conn.execute("SELECT count(*) AS n FROM orders").fetchone()["n"])


def test_single_item_order_is_confirmed_and_stock_reserved(client, inventory_pool, order_pool):
    response = place(client, {"productId": "SKU-001", "quantity": 2})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "confirmed" and body["reservationId"].startswith("RES-")
    assert body["items"] == [{"productId": "SKU-001", "quantity": 2}]
    assert response.headers["Location"] == f"/api/orders/{body['orderId']}"
    assert stock(inventory_pool, "SKU-001") == 498
    assert outbox_types(order_pool) == ["OrderCreated", "OrderConfirmed"]


def test_server_timing_names_the_steps_of_placing_an_order(client):
    response = place(client, {"productId": "SKU-001", "quantity": 1})
    timing = server_timing(response)
    assert list(timing) == ["queue", "app", "save", "reserve", "settle"]   # the steps in the order they ran
    assert all(dur >= 0 for dur in timing.values())
    assert timing["save"] + timing["reserve"] + timing["settle"] <= timing["app"] + 0.2  # each rounded to 0.1
    refused = place(client, {"productId": "SKU-999", "quantity": 1})      # refused before any step
    assert refused.status_code == 422 and server_timing(refused).keys() == {"queue", "app"}


def test_multi_item_order_and_its_history(client):
    body = place(client, {"items": [{"productId": "SKU-002", "quantity": 1}, {"productId": "SKU-003", "quantity": 4}]}).json
    order = client.get(f"/api/orders/{body['orderId']}").json
    assert order["status"] == "confirmed" and len(order["items"]) == 2
    assert [(h["from"], h["to"]) for h in order["history"]] == [(None, "pending"), ("pending", "confirmed")]


def test_insufficient_stock_is_a_409_with_the_seed_shape(client, inventory_pool):
    response = place(client, {"productId": "SKU-008", "quantity": 2})
    assert response.status_code == 409
    assert response.json["status"] == "failed" and response.json["reason"] == "insufficient_stock"
    assert stock(inventory_pool, "SKU-008") == 1


def test_unknown_product_is_422_and_nothing_is_written(client, order_pool):
    response = place(client, {"productId": "SKU-999", "quantity": 1})
    assert response.status_code == 422 and response.content_type == PROBLEM
    assert "SKU-999" in response.json["detail"]
    assert count_orders(order_pool) == 0


@pytest.mark.parametrize("body", [
    {"productId": "SKU-001", "quantity": 0},
    {"productId": "SKU-001", "quantity": 1001},
    {"productId": "SKU-001", "quantity": "2"},
    {"productId": "SKU-001", "quantity": 2.5},
    {"productId": "SKU-001", "quantity": True},
    {"productId": "SKU-001"},
    {"quantity": 1},
    {"productId": "", "quantity": 1},
    {"productId": "x" * 65, "quantity": 1},
    {"productId": "SKU-001'; DROP TABLE orders; --", "quantity": 1},
    {"productId": "<script>alert(1)</script>", "quantity": 1},
    {"productId": None, "quantity": 1},
    {"productId": "SKU-001", "quantity": 1, "price": 0},
    {"items": []},
    {"items": [{"productId": "SKU-001", "quantity": 1}] * 2},
    {"items": [{"productId": f"SKU-{i:03d}", "quantity": 1} for i in range(51)]},
    {"items": "SKU-001"},
    [{"productId": "SKU-001", "quantity": 1}],
    "SKU-001",
    42,
    None,
])
def test_invalid_orders_are_422_problems_and_write_nothing(client, order_pool, body):
    response = place(client, body)
    assert response.status_code == 422, response.json
    assert response.content_type == PROBLEM and response.json["status"] == 422
    assert response.json["errors"]
    assert count_orders(order_pool) == 0


def test_malformed_missing_wrong_type_and_oversized_bodies(client, order_pool):
    post = client.post
    assert post("/api/orders", data="{not json", content_type="application/json").status_code == 400
    assert post("/api/orders", data="", content_type="application/json").status_code == 400
    assert post("/api/orders", data="productId=SKU-001", content_type="application/x-www-form-urlencoded").status_code == 415
    assert post("/api/orders", data='{"productId": "SKU-001", "quantity": 1}').status_code == 415
    big = '{"items": [' + ",".join(['{"productId": "SKU-001", "quantity": 1}'] * 3000) + "]}"
    assert post("/api/orders", data=big, content_type="application/json").status_code == 413
    deep = "[" * 100_000 + "]" * 100_000
    assert post("/api/orders", data=deep[:60000], content_type="application/json").status_code in (400, 422)
    assert post("/api/orders", data=b"\xff\xfe\x00", content_type="application/json").status_code == 400
    for r in (post("/api/orders", data="{", content_type="application/json"),):
        assert r.content_type == PROBLEM
    assert count_orders(order_pool) == 0


def test_idempotency_key_replays_the_first_answer(client, inventory_pool, order_pool):
    body = {"productId": "SKU-004", "quantity": 3}
    first = place(client, body, **{"Idempotency-Key": "k-1"})
    second = place(client, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert first.json == second.json
    assert stock(inventory_pool, "SKU-004") == 747
    assert count_orders(order_pool) == 1
    other = place(client, {"productId": "SKU-004", "quantity": 4}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.content_type == PROBLEM
    assert place(client, body, **{"Idempotency-Key": "k" * 256}).status_code == 400
    assert place(client, body, **{"Idempotency-Key": ""}).status_code == 400


def test_get_unknown_and_hostile_order_ids_are_404_problems(client):
    for path in ("/api/orders/ORD-NOPE", "/api/orders/" + "x" * 500, "/api/orders/%00", "/api/orders/' OR 1=1 --"):
        response = client.get(path)
        assert response.status_code == 404 and response.content_type == PROBLEM


def test_list_is_newest_first_and_paginates(client):
    ids = [place(client, {"productId": "SKU-005", "quantity": 1}).json["orderId"] for _ in range(5)]
    place(client, {"productId": "SKU-008", "quantity": 5})  # failed
    page = client.get("/api/orders?limit=2&status=confirmed").json
    assert [o["orderId"] for o in page["orders"]] == ids[::-1][:2]
    page2 = client.get(f"/api/orders?limit=2&status=confirmed&cursor={page['nextCursor']}").json
    page3 = client.get(f"/api/orders?limit=2&status=confirmed&cursor={page2['nextCursor']}").json
    assert [o["orderId"] for o in page2["orders"] + page3["orders"]] == ids[::-1][2:]
    assert page3["nextCursor"] is None
    assert client.get("/api/orders?status=failed").json["orders"][0]["status"] == "failed"
    for bad in ("limit=0", "limit=101", "limit=x", "status=lost", "cursor=%%%", "cursor=bm9wZQ", "cursor=" + "a" * 300):
        response = client.get(f"/api/orders?{bad}")
        assert response.status_code == 400 and response.content_type == PROBLEM, bad


def test_cancel_releases_stock_and_refuses_a_second_time(client, inventory_pool):
    order = place(client, {"productId": "SKU-006", "quantity": 10}).json
    assert stock(inventory_pool, "SKU-006") == 40
    cancelled = client.post(f"/api/orders/{order['orderId']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert stock(inventory_pool, "SKU-006") == 50
    again = client.post(f"/api/orders/{order['orderId']}/cancel")
    assert again.status_code == 409 and again.content_type == PROBLEM
    assert client.post("/api/orders/ORD-NOPE/cancel").status_code == 404
    failed = place(client, {"productId": "SKU-008", "quantity": 9}).json
    assert client.post(f"/api/orders/{failed['orderId']}/cancel").status_code == 409


def test_gremlin_delay_answers_202_within_the_deadline(client, chaos_dir, order_pool, inventory_pool):
    for key, value in {"GREMLIN_MODE": "true", "GREMLIN_MIN_DELAY_MS": "3000", "GREMLIN_MAX_DELAY_MS": "3000"}.items():
        (chaos_dir / key).write_text(value)
    started = time.monotonic()
    response = place(client, {"productId": "SKU-001", "quantity": 1})
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.json
    assert elapsed < 2.5
    assert response.json["status"] == "pending_verification" and response.json["reason"] == "grpc_timeout"
    assert response.headers["Retry-After"] == "2" and response.headers["Location"].startswith("/api/orders/ORD-")
    timing = server_timing(response)   # the handler waited out the reservation budget; nothing queued
    assert timing.keys() == {"queue", "app", "save", "reserve", "settle"}
    assert timing["queue"] < 100 and 1500 < timing["app"] < elapsed * 1000
    assert timing["reserve"] > 1500 and timing["save"] + timing["reserve"] + timing["settle"] <= timing["app"] + 0.2  # each rounded to 0.1
    assert outbox_types(order_pool)[-1] == "VerifyOrder"
    time.sleep(1.5)  # the delayed call still commits: Schrodinger's case, recovered by verification
    assert stock(inventory_pool, "SKU-001") == 499


def test_schrodinger_error_answers_202_but_the_reservation_committed(client, chaos_dir, inventory_pool):
    for key, value in {"SCHRODINGER_MODE": "true", "SCHRODINGER_CRASH_PROBABILITY": "1",
                       "SCHRODINGER_FAILURE": "error"}.items():
        (chaos_dir / key).write_text(value)
    response = place(client, {"productId": "SKU-003", "quantity": 2})
    assert response.status_code == 202 and response.json["reason"] == "server_error"
    assert stock(inventory_pool, "SKU-003") == 198


def test_inventory_down_answers_202_fast(order_pool, order_deps):
    from valerix.order import api
    from valerix.order.inventory_client import Catalogue, InventoryClient

    dead = InventoryClient("127.0.0.1:1", "any-token", reserve_deadline=2.0)
    order_deps.inventory = dead
    order_deps.catalogue = Catalogue(dead)
    client = api.build_app(order_deps, {}).test_client()  # the signing key from the environment
    started = time.monotonic()
    response = place(client, {"productId": "SKU-001", "quantity": 1}, **auth.customer())
    assert response.status_code == 202 and response.json["reason"] == "connection_error"
    assert time.monotonic() - started < 2.5
    assert client.get("/api/products").status_code == 503


def test_health_openapi_and_framework_errors(client):
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json["status"] == "healthy"
    assert health.json["dependencies"] == {"database": "ok", "inventoryGrpc": "ok"}
    assert client.get("/health/live").json["status"] == "alive"
    assert client.get("/health/ready").json["dependencies"] == {"database": "ok"}
    spec = client.get("/openapi.json").json
    assert spec["openapi"] == "3.1.0"
    assert {"/api/orders", "/api/orders/{orderId}", "/api/orders/{orderId}/cancel"} <= set(spec["paths"])
    assert client.delete("/api/orders").status_code == 405
    assert client.get("/nope").content_type == PROBLEM
    products = client.get("/api/products").json
    assert {"productId": "SKU-008", "name": "Last unit: limited edition crate", "stock": 1, "priceCents": 99900} in products
    metrics = client.get("/metrics").data.decode()
    assert 'valerix_http_request_duration_seconds_count{method="GET",route="/health",service="order",status="200"}' in metrics


def test_chaos_modes_are_reported(order_deps, chaos_dir):
    from valerix.kit.chaos import ChaosSource
    from valerix.order import api

    client = api.build_app(order_deps, {}, chaos=ChaosSource(chaos_dir, ttl=0)).test_client()
    assert client.get("/api/chaos").json["gremlin"]["on"] is False
    (chaos_dir / "GREMLIN_MODE").write_text("true")
    assert client.get("/api/chaos").json["gremlin"]["on"] is True
