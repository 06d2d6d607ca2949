"""Reservations decided as one batch (the gRPC server's group commit): each order all or
nothing, the stock given out in the batch's order, repeats replayed, never oversold."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from valerix.inventory import db as inventory_db
from valerix.inventory import service
from valerix.inventory.domain import Line, Rejection, ReservationStatus, Shortage
from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc

from support.db import outbox_types, stock
from support.grpc_token import authorized_channel
from support.uow import committed


def _no_drift(pool) -> None:
    with pool.connection() as conn:
        assert inventory_db.invariant_report(conn) == {"negative_stock": 0, "drift": []}


def test_a_batch_gives_out_stock_in_its_order_and_each_order_is_whole(inventory_pool):
    # SKU-006 has 50: A takes 30, B (30) no longer fits and takes nothing, C takes the last 20.
    outcomes = committed(inventory_pool, service.reserve_many, [
        ("ORD-A", [Line("SKU-001", 1), Line("SKU-006", 30)]),
        ("ORD-B", [Line("SKU-001", 1), Line("SKU-006", 30)]),
        ("ORD-C", [Line("SKU-006", 20)]),
    ])
    a, b, c = outcomes
    assert a.success and a.remaining == {"SKU-001": 499, "SKU-006": 20}
    assert b.status is ReservationStatus.REJECTED and b.rejection is Rejection.INSUFFICIENT_STOCK
    assert b.shortages == (Shortage("SKU-006", 30, 20),)
    assert c.success and c.remaining == {"SKU-006": 0}
    assert len({a.reservation_id, c.reservation_id}) == 2
    assert (stock(inventory_pool, "SKU-001"), stock(inventory_pool, "SKU-006")) == (499, 0)
    _no_drift(inventory_pool)
    # Each outcome is kept: a repeat, alone or in another batch, replays it.
    again = committed(inventory_pool, service.reserve_many, [
        ("ORD-B", [Line("SKU-001", 1), Line("SKU-006", 30)]), ("ORD-A", [Line("SKU-001", 1), Line("SKU-006", 30)])])
    assert [o.replayed for o in again] == [True, True]
    assert again[0].rejection is Rejection.INSUFFICIENT_STOCK and again[0].shortages == b.shortages
    assert again[1].reservation_id == a.reservation_id
    assert stock(inventory_pool, "SKU-006") == 0


def test_the_same_order_twice_in_a_batch_reserves_once_and_the_second_is_a_replay(inventory_pool):
    first, second = committed(inventory_pool, service.reserve_many, [
        ("ORD-TWICE", [Line("SKU-005", 3)]), ("ORD-TWICE", [Line("SKU-005", 3)])])
    assert first.success and not first.replayed
    assert second.replayed and second.reservation_id == first.reservation_id
    assert stock(inventory_pool, "SKU-005") == 5000 - 3
    _no_drift(inventory_pool)


def test_an_unknown_product_refuses_only_its_own_order(inventory_pool):
    known, unknown = committed(inventory_pool, service.reserve_many, [
        ("ORD-K", [Line("SKU-002", 2)]), ("ORD-U", [Line("NOPE-1", 1), Line("SKU-002", 1)])])
    assert known.success
    assert unknown.rejection is Rejection.UNKNOWN_PRODUCT
    assert stock(inventory_pool, "SKU-002") == 998
    assert outbox_types(inventory_pool) == ["StockReserved"]
    with inventory_pool.connection() as conn:
        refused = inventory_db.lock_reservations(conn, ["ORD-U"])
    assert refused[0]["status"] == "rejected" and refused[0]["reason"] == "unknown_product"
    assert refused[0]["shortages"] == [{"product_id": "NOPE-1", "requested": 1, "available": 0}]


def test_a_batch_that_raises_leaves_nothing_behind(inventory_pool):
    # A batch is one transaction: whatever fails after it decided takes every order back with it.
    class Boom(Exception):
        pass

    def reserve_then_fail(uow, requests):
        service.reserve_many(uow, requests)
        raise Boom

    with pytest.raises(Boom):
        committed(inventory_pool, reserve_then_fail, [("ORD-X1", [Line("SKU-004", 1)]),
                                                      ("ORD-X2", [Line("SKU-004", 2)])])
    assert stock(inventory_pool, "SKU-004") == 750
    with inventory_pool.connection() as conn:
        assert inventory_db.lock_reservations(conn, ["ORD-X1", "ORD-X2"]) == []


def test_concurrent_grpc_reservations_share_transactions_and_never_oversell(inventory_target, grpc_token,
                                                                               inventory_pool):
    """80 callers at once through the real server, 70 orders (10 of them sent twice) for 50
    units: exactly 50 orders succeed, every answer is whole, and a repeated order reserves once."""
    barrier = threading.Barrier(80)

    def order_of(i: int) -> str:
        return f"ORD-GC-{i}" if i < 60 else f"ORD-GC-TWICE-{(i - 60) // 2}"

    with grpc.insecure_channel(inventory_target) as bare:
        stub = pb_grpc.InventoryServiceStub(authorized_channel(bare, grpc_token))

        def buy(i: int) -> pb.ReserveStockResponse:
            order_id = order_of(i)
            barrier.wait()
            return stub.ReserveStock(pb.ReserveStockRequest(order_id=order_id, lines=[
                pb.StockLine(product_id="SKU-006", quantity=1), pb.StockLine(product_id="SKU-003", quantity=1)]),
                timeout=10)

        with ThreadPoolExecutor(max_workers=80) as pool:
            answers = list(pool.map(buy, range(80)))
    by_order: dict[str, set[str]] = {}
    for i, answer in enumerate(answers):
        by_order.setdefault(order_of(i), set()).add(answer.reservation_id)
    assert all(len(ids) == 1 for ids in by_order.values())  # a repeat answers the first outcome
    reserved = {order for order, ids in by_order.items() if ids != {""}}
    assert len(reserved) == 50 and len(by_order) == 70
    assert (stock(inventory_pool, "SKU-006"), stock(inventory_pool, "SKU-003")) == (0, 150)
    _no_drift(inventory_pool)
