"""Identity, ownership and shipping through the order REST API (issue #16), on real databases
and a real gRPC inventory server."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from valerix.contracts.events import Envelope
from valerix.contracts.routing import INVENTORY_SERVICE
from valerix.inventory import db as inventory_db
from valerix.inventory import service as inventory_service
from valerix.inventory.handlers import HANDLERS as INVENTORY_HANDLERS
from valerix.kit.auth import Identity, Role, Tokens, new_signing_key
from valerix.kit.service_worker import dispatcher
from valerix.kit.uow import UnitOfWork

from support import auth
from support.db import outbox_types, stock

PROBLEM = "application/problem+json"


def place(client, body, **headers):
    return client.post("/api/orders", data=json.dumps(body), content_type="application/json", headers=headers)


def confirmed(client, product="SKU-001", quantity=1, **headers) -> str:
    response = place(client, {"productId": product, "quantity": quantity}, **headers)
    assert response.status_code == 201, response.json
    return str(response.json["orderId"])


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.data
    assert response.content_type == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- sessions --------------------------------------------------------------------------------

def test_a_session_is_a_new_guest_customer_never_an_operator(anonymous):
    first = anonymous.post("/api/session")
    assert first.status_code == 201 and first.headers["Cache-Control"] == "no-store"
    body = first.json
    assert set(body) == {"token", "customerId", "expiresAt"}
    assert datetime.fromisoformat(body["expiresAt"]) > datetime.now(UTC) + timedelta(days=1)
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == body["customerId"] and claims["role"] == "customer"
    second = anonymous.post("/api/session", json={})
    assert second.json["customerId"] != body["customerId"]
    # Asking for an operator changes nothing: the token still cannot ship.
    greedy = anonymous.post("/api/session", json={"role": "operator", "sub": "operator:me", "customerId": "x"}).json
    assert jwt.decode(greedy["token"], options={"verify_signature": False})["role"] == "customer"
    order_id = confirmed(anonymous, **{"Authorization": f"Bearer {greedy['token']}"})
    shipped = anonymous.post(f"/api/orders/{order_id}/ship", headers={"Authorization": f"Bearer {greedy['token']}"})
    assert shipped.status_code == 403 and shipped.content_type == PROBLEM


def test_hostile_session_bodies_are_4xx_problems(anonymous):
    assert anonymous.post("/api/session", data="{", content_type="application/json").status_code == 400
    assert anonymous.post("/api/session", data="[1]", content_type="application/json").status_code == 400
    assert anonymous.post("/api/session", data="role=operator",
                          content_type="application/x-www-form-urlencoded").status_code == 415
    oversized = anonymous.post("/api/session", data=json.dumps({"x": "a" * 70_000}), content_type="application/json")
    assert oversized.status_code == 413 and oversized.content_type == PROBLEM
    assert anonymous.get("/api/session").status_code == 405


# --- the bearer guard ------------------------------------------------------------------------

def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "operator"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def _unsigned(subject: str) -> str:
    return jwt.encode({"sub": subject, "role": "operator", "iss": "valerix", "aud": "valerix-api",
                       "iat": datetime.now(UTC), "exp": datetime.now(UTC) + timedelta(hours=1)},
                      key=None, algorithm="none")


def test_missing_malformed_expired_and_tampered_tokens_are_401(anonymous):
    good = auth.TOKENS.issue(Identity("CUS-A", Role.CUSTOMER), timedelta(hours=1)).token
    expired = auth.TOKENS.issue(Identity("CUS-A", Role.CUSTOMER), timedelta(minutes=5),
                                now=datetime.now(UTC) - timedelta(hours=1)).token
    other_key = Tokens(new_signing_key().encode()).issue(Identity("CUS-A", Role.OPERATOR), timedelta(hours=1)).token
    headers = [
        {}, {"Authorization": ""}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer a.b"},
        {"Authorization": "Bearer " + "a" * 5000}, {"Authorization": "Bearer \u00e9.\u00e9.\u00e9"},
        {"Authorization": f"Bearer {expired}"}, {"Authorization": f"Bearer {_tampered(good)}"},
        {"Authorization": f"Bearer {good[:-2]}xx"}, {"Authorization": f"Bearer {other_key}"},
        {"Authorization": f"Bearer {_unsigned('operator:x')}"},
    ]
    for header in headers:
        for method, path in (("GET", "/api/orders"), ("POST", "/api/orders"), ("GET", "/api/orders/ORD-1"),
                             ("POST", "/api/orders/ORD-1/cancel"), ("POST", "/api/orders/ORD-1/ship")):
            response = anonymous.open(path, method=method, headers=header, json={"productId": "SKU-001", "quantity": 1})
            assert_unauthorized(response)
            secret = header.get("Authorization", "")[7:]
            assert len(secret) < 8 or secret not in response.get_data(as_text=True)
    expired_answer = anonymous.get("/api/orders", headers={"Authorization": f"Bearer {expired}"})
    assert "expired" in expired_answer.json["detail"]
    assert 'error="invalid_token"' in expired_answer.headers["WWW-Authenticate"]
    assert anonymous.get("/api/orders", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_health_metrics_openapi_storefront_and_products_stay_public(anonymous):
    for path in ("/health", "/health/live", "/metrics", "/openapi.json", "/", "/ui/app.js", "/api/products"):
        assert anonymous.get(path).status_code == 200, path
    spec = anonymous.get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/orders/{orderId}/ship"]["post"]["security"] == [{"bearer": []}]
    assert "401" in spec["paths"]["/api/orders"]["get"]["responses"]
    assert spec["paths"]["/api/session"]["post"]["security"] == []


def test_tokens_are_never_logged(anonymous, caplog):
    token = auth.customer()["Authorization"]
    with caplog.at_level("DEBUG"):
        anonymous.get("/api/orders", headers={"Authorization": token})
        anonymous.get("/api/orders", headers={"Authorization": token + "x"})
        session = anonymous.post("/api/session").json["token"]
    assert token[7:] not in caplog.text and session not in caplog.text


# --- ownership -------------------------------------------------------------------------------

def test_a_customer_sees_and_changes_only_its_own_orders(anonymous, operator_client, inventory_pool):
    alice, bob = auth.customer(), auth.customer()
    mine = confirmed(anonymous, "SKU-002", 2, **alice)
    theirs = confirmed(anonymous, "SKU-003", 1, **bob)
    assert anonymous.get(f"/api/orders/{mine}", headers=alice).status_code == 200
    hidden = anonymous.get(f"/api/orders/{mine}", headers=bob)
    unknown = anonymous.get("/api/orders/ORD-NOPE", headers=bob)
    assert hidden.status_code == unknown.status_code == 404 and hidden.content_type == PROBLEM
    assert hidden.json["detail"].replace(mine, "X") == unknown.json["detail"].replace("ORD-NOPE", "X")
    assert anonymous.post(f"/api/orders/{mine}/cancel", headers=bob).status_code == 404
    assert stock(inventory_pool, "SKU-002") == 998
    assert [o["orderId"] for o in anonymous.get("/api/orders", headers=alice).json["orders"]] == [mine]
    assert [o["orderId"] for o in anonymous.get("/api/orders?status=confirmed", headers=bob).json["orders"]] == [theirs]
    everyone = {o["orderId"] for o in operator_client.get("/api/orders?limit=100").json["orders"]}
    assert {mine, theirs} <= everyone
    assert operator_client.get(f"/api/orders/{theirs}").status_code == 200
    assert operator_client.post(f"/api/orders/{theirs}/cancel").json["status"] == "cancelled"
    assert anonymous.get(f"/api/orders/{theirs}", headers=bob).json["status"] == "cancelled"


def test_idempotency_keys_are_scoped_per_customer(anonymous, order_pool):
    alice, bob = auth.customer(), auth.customer()
    first = place(anonymous, {"productId": "SKU-001", "quantity": 1}, **alice, **{"Idempotency-Key": "k-1"})
    other_body = place(anonymous, {"productId": "SKU-002", "quantity": 3}, **bob, **{"Idempotency-Key": "k-1"})
    assert first.status_code == other_body.status_code == 201
    assert other_body.json["orderId"] != first.json["orderId"]
    assert other_body.json["items"] == [{"productId": "SKU-002", "quantity": 3}]
    replay = place(anonymous, {"productId": "SKU-001", "quantity": 1}, **alice, **{"Idempotency-Key": "k-1"})
    assert replay.json == first.json
    # Bob cannot replay Alice's answer with Alice's body either: it is a new order of his.
    copy = place(anonymous, {"productId": "SKU-001", "quantity": 1}, **bob, **{"Idempotency-Key": "k-1"})
    assert copy.status_code == 422  # his own key k-1 was used with another body


def test_two_customers_racing_on_one_idempotency_key(anonymous, order_pool):
    customers = [auth.customer() for _ in range(8)]
    barrier = threading.Barrier(len(customers))
    answers: list = [None] * len(customers)

    def go(i: int) -> None:
        barrier.wait()
        answers[i] = place(anonymous, {"productId": "SKU-004", "quantity": 1}, **customers[i],
                           **{"Idempotency-Key": "shared-key"})

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(customers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * len(customers)
    ids = {a.json["orderId"] for a in answers}
    assert len(ids) == len(customers)
    for headers, answer in zip(customers, answers, strict=True):
        listed = anonymous.get("/api/orders", headers=headers).json["orders"]
        assert [o["orderId"] for o in listed] == [answer.json["orderId"]]


# --- shipping --------------------------------------------------------------------------------

def _deliver_to_inventory(order_pool, inventory_pool, event_type: str) -> None:
    """Hands the order outbox's events of one type to the inventory worker's handler, as the
    relay and the bus would."""
    with order_pool.connection() as conn:
        rows = conn.execute("SELECT payload FROM outbox WHERE event_type = %s ORDER BY id", (event_type,)).fetchall()
    handle = dispatcher(INVENTORY_SERVICE, INVENTORY_HANDLERS)
    for row in rows:
        with UnitOfWork(inventory_pool) as uow:
            handle(uow, Envelope.model_validate(row["payload"]))
            uow.commit()


def test_operators_ship_confirmed_orders_once(anonymous, operator_client, order_pool, inventory_pool):
    alice = auth.customer()
    initial_005 = stock(inventory_pool, "SKU-005")
    order_id = confirmed(anonymous, "SKU-005", 4, **alice)
    refused = anonymous.post(f"/api/orders/{order_id}/ship", headers=alice)
    assert refused.status_code == 403 and refused.content_type == PROBLEM
    shipped = operator_client.post(f"/api/orders/{order_id}/ship")
    assert shipped.status_code == 200 and shipped.json["status"] == "shipped"
    assert [h["to"] for h in shipped.json["history"]] == ["pending", "confirmed", "shipped"]
    again = operator_client.post(f"/api/orders/{order_id}/ship")
    assert again.status_code == 200 and again.json == shipped.json
    assert outbox_types(order_pool).count("OrderShipped") == 1
    cancel = anonymous.post(f"/api/orders/{order_id}/cancel", headers=alice)
    assert cancel.status_code == 409 and cancel.json["orderStatus"] == "shipped"
    assert anonymous.get(f"/api/orders/{order_id}", headers=alice).json["status"] == "shipped"
    assert [o["orderId"] for o in anonymous.get("/api/orders?status=shipped", headers=alice).json["orders"]] == [order_id]
    _deliver_to_inventory(order_pool, inventory_pool, "OrderShipped")
    _deliver_to_inventory(order_pool, inventory_pool, "OrderShipped")  # a redelivery changes nothing
    with inventory_pool.connection() as conn:
        assert inventory_db.reservations_by_status(conn)["shipped"] == {order_id}
        # A late release (a stray OrderCancelled, a ReleaseStock) cannot bring shipped stock back.
        with UnitOfWork(inventory_pool) as uow:
            assert inventory_service.release(uow, order_id, "order_cancelled") is False
            uow.commit()
        assert inventory_db.invariant_report(conn) == {"negative_stock": 0, "drift": []}
    assert stock(inventory_pool, "SKU-005") == initial_005 - 4


def test_only_confirmed_orders_ship(anonymous, operator_client, inventory_pool):
    alice = auth.customer()
    failed = place(anonymous, {"productId": "SKU-008", "quantity": 5}, **alice)
    assert failed.status_code == 409
    cancelled = confirmed(anonymous, "SKU-001", 1, **alice)
    anonymous.post(f"/api/orders/{cancelled}/cancel", headers=alice)
    for order_id, status in ((failed.json["orderId"], "failed"), (cancelled, "cancelled")):
        refused = operator_client.post(f"/api/orders/{order_id}/ship")
        assert refused.status_code == 409 and refused.json["orderStatus"] == status
    assert operator_client.post("/api/orders/ORD-NOPE/ship").status_code == 404
    for hostile in ("x" * 300, "%00", "..%2F..%2Fetc", "ORD-1%27%20OR%201=1"):
        answer = operator_client.post(f"/api/orders/{hostile}/ship")
        assert answer.status_code == 404 and answer.content_type == PROBLEM
    assert operator_client.get("/api/orders/ORD-1/ship").status_code == 405


@pytest.mark.parametrize("round_", range(4))
def test_a_cancel_racing_a_ship_has_exactly_one_winner(anonymous, operator_client, inventory_pool, order_pool,
                                                       round_):
    alice = auth.customer()
    order_id = confirmed(anonymous, "SKU-006", 3, **alice)
    before = stock(inventory_pool, "SKU-006")
    barrier = threading.Barrier(2)
    answers: dict[str, int] = {}

    def cancel() -> None:
        barrier.wait()
        answers["cancel"] = anonymous.post(f"/api/orders/{order_id}/cancel", headers=alice).status_code

    def ship() -> None:
        barrier.wait()
        answers["ship"] = operator_client.post(f"/api/orders/{order_id}/ship").status_code

    threads = [threading.Thread(target=cancel), threading.Thread(target=ship)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers.values()) == [200, 409], answers
    final = anonymous.get(f"/api/orders/{order_id}", headers=alice).json["status"]
    assert final == ("cancelled" if answers["cancel"] == 200 else "shipped")
    _deliver_to_inventory(order_pool, inventory_pool, "OrderCancelled")
    _deliver_to_inventory(order_pool, inventory_pool, "OrderShipped")
    assert stock(inventory_pool, "SKU-006") == (before + 3 if final == "cancelled" else before)
    with inventory_pool.connection() as conn:
        assert inventory_db.invariant_report(conn) == {"negative_stock": 0, "drift": []}
        assert order_id in inventory_db.reservations_by_status(conn)["released" if final == "cancelled" else "shipped"]
