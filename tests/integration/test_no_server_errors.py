"""Never a 5xx for an order that exists, nor for anything a client sends (issue #17): every
gRPC status inventory can answer, a database that fails after the order is saved, replays of
pending answers and a repeat that races its first request, through the order REST API on real
databases and a real gRPC server."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import grpc
import pytest
from psycopg_pool import PoolTimeout

from valerix.contracts.events import OrderVerified
from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.kit.uow import UnitOfWork
from valerix.order import api, service
from valerix.order.inventory_client import Catalogue, InventoryClient

from support import auth
from support.stand_in_inventory import serving

PROBLEM = "application/problem+json"
CODES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


def place(client, body, **headers):
    return client.post("/api/orders", data=json.dumps(body), content_type="application/json", headers=headers)


class StatusServicer(pb_grpc.InventoryServiceServicer):
    """A stand-in for inventory that only answers with a chosen status code (None: succeed),
    so every code the real server could ever send can be tried."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    def _answer(self, context: Any, reply: Any) -> Any:
        if self.code is not None:
            context.abort(self.code, f"test says {self.code.name}")
        return reply

    def ReserveStock(self, request: Any, context: Any) -> Any:
        return self._answer(context, pb.ReserveStockResponse(
            success=True, outcome=pb.RESERVE_OUTCOME_RESERVED, reservation_id=f"RES-{request.order_id}"))

    def ReleaseStock(self, request: Any, context: Any) -> Any:
        return self._answer(context, pb.ReleaseStockResponse(released=True))

    def CheckStock(self, request: Any, context: Any) -> Any:
        return pb.CheckStockResponse(products=[pb.Product(product_id="SKU-001", name="x", stock=5, price_cents=1)])


@pytest.fixture
def status_server():
    servicer = StatusServicer()
    with serving(servicer) as target:
        yield servicer, target


@pytest.fixture
def status_client(status_server, order_pool):
    servicer, target = status_server
    inventory = InventoryClient(target, "any-token", reserve_deadline=2.0)
    deps = service.Deps(uow=lambda: UnitOfWork(order_pool), inventory=inventory, catalogue=Catalogue(inventory))
    app = api.build_app(deps, {}, tokens=auth.TOKENS)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = auth.operator()["Authorization"]
    yield servicer, client
    inventory.close()


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
def test_every_grpc_status_places_a_pending_order_and_cancel_still_answers(status_client, code):
    servicer, client = status_client
    servicer.code = None
    confirmed = place(client, {"productId": "SKU-001", "quantity": 1})
    assert confirmed.status_code == 201, confirmed.json
    servicer.code = code
    response = place(client, {"productId": "SKU-001", "quantity": 1})
    assert response.status_code == 202, response.json
    assert response.json["status"] == "pending_verification"
    assert response.headers["Location"] == f"/api/orders/{response.json['orderId']}"
    cancelled = client.post(f"/api/orders/{confirmed.json['orderId']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled", cancelled.json


def test_a_database_failing_after_the_order_is_saved_answers_202_with_its_location(order_pool, inventory_client):
    opened = 0

    def flaky_uow() -> UnitOfWork:
        nonlocal opened
        opened += 1
        if opened > 2:  # the key lookup and the insert work; every later step finds no connection
            raise PoolTimeout("no connection within the pool's timeout")
        return UnitOfWork(order_pool)

    deps = service.Deps(uow=flaky_uow, inventory=inventory_client, catalogue=Catalogue(inventory_client))
    client = api.build_app(deps, {}, tokens=auth.TOKENS).test_client()
    response = place(client, {"productId": "SKU-001", "quantity": 1},
                     **{"Idempotency-Key": "saved-then-lost", **auth.customer()})
    assert response.status_code == 202, response.json
    order_id = response.json["orderId"]
    assert response.headers["Location"] == f"/api/orders/{order_id}"
    with order_pool.connection() as conn:
        assert conn.execute("SELECT status FROM orders WHERE id = %s", (order_id,)).fetchone()["status"] == "pending"


def test_a_repeat_while_the_first_request_is_in_flight_is_409_with_retry_after(client, chaos_dir, order_pool):
    for key, value in {"GREMLIN_MODE": "true", "GREMLIN_MIN_DELAY_MS": "1500", "GREMLIN_MAX_DELAY_MS": "1500"}.items():
        (chaos_dir / key).write_text(value)
    body, key = {"productId": "SKU-002", "quantity": 1}, {"Idempotency-Key": "racing"}
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(response=place(client, body, **key)))
    thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # until the first request has saved its order
        with order_pool.connection() as conn:
            if conn.execute("SELECT count(*) AS n FROM idempotency_keys").fetchone()["n"]:
                break
        time.sleep(0.02)
    second = place(client, body, **key)
    thread.join(timeout=10)
    assert second.status_code == 409 and second.content_type == PROBLEM, second.json
    assert second.headers["Retry-After"] == "1"
    assert first["response"].status_code == 201
    third = place(client, body, **key)
    assert (third.status_code, third.json) == (201, first["response"].json)


def test_a_replayed_pending_answer_shows_the_order_as_it_is_now(client, chaos_dir, order_pool):
    for key, value in {"GREMLIN_MODE": "true", "GREMLIN_MIN_DELAY_MS": "3000", "GREMLIN_MAX_DELAY_MS": "3000"}.items():
        (chaos_dir / key).write_text(value)
    body, key = {"productId": "SKU-003", "quantity": 1}, {"Idempotency-Key": "pending-then-confirmed"}
    first = place(client, body, **key)
    assert first.status_code == 202 and first.json["status"] == "pending_verification"
    again = place(client, body, **key)
    assert again.status_code == 202 and again.headers["Location"] == first.headers["Location"]
    with UnitOfWork(order_pool) as uow:  # what the order worker does with inventory's verdict
        service.apply_verification(uow, OrderVerified(orderId=first.json["orderId"], outcome="reserved",
                                                      reservationId="RES-late"))
        uow.commit()
    replay = place(client, body, **key)
    assert replay.status_code == 201, replay.json
    assert replay.json["orderId"] == first.json["orderId"] and replay.json["status"] == "confirmed"


@pytest.mark.parametrize("query", [
    "cursor=WyIyMDI0LTAxLTAxVDAwOjAwOjAwIiwgInhcdTAwMDAiXQ",  # a NUL inside a well-formed cursor
    "cursor=WyIyMDI0LTAxLTAxVDAwOjAwOjAwIiwgMV0",              # an order id that is no string
    "status=confirmed%00",
])
def test_input_the_database_cannot_take_is_a_400(client, query):
    response = client.get(f"/api/orders?{query}")
    assert response.status_code == 400 and response.content_type == PROBLEM, response.json


def test_nul_bytes_in_a_body_are_refused_or_harmless_never_a_5xx(client):
    refused = place(client, {"productId": "SKU-001\u0000", "quantity": 1})
    assert refused.status_code == 422 and refused.content_type == PROBLEM, refused.json
    ignored = place(client, {"productId": "SKU-001", "quantity": 1, "customerId": "a\u0000b"})  # never stored
    assert ignored.status_code == 201, ignored.json
