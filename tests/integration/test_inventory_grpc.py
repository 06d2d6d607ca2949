"""Inventory's gRPC server: the contract, the standard health service and reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc


@pytest.fixture
def channel(inventory_target):
    with grpc.insecure_channel(inventory_target) as ch:
        yield ch


def test_health_service_reports_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "valerix.inventory.v1.InventoryService"):
        assert stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    reply = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                           timeout=2))
    names = {s.name for s in reply.list_services_response.service}
    assert {"valerix.inventory.v1.InventoryService", "grpc.health.v1.Health"} <= names


def test_reserve_is_idempotent_and_insufficient_stock_is_an_answer_not_an_error(channel):
    stub = pb_grpc.InventoryServiceStub(channel)
    request = pb.ReserveStockRequest(order_id="ORD-G1", lines=[pb.StockLine(product_id="SKU-003", quantity=2)])
    first, again = stub.ReserveStock(request, timeout=2), stub.ReserveStock(request, timeout=2)
    assert first.success and first.outcome == pb.RESERVE_OUTCOME_RESERVED and first.remaining_stock["SKU-003"] == 198
    assert again.replayed and again.reservation_id == first.reservation_id
    short = stub.ReserveStock(pb.ReserveStockRequest(order_id="ORD-G2", lines=[
        pb.StockLine(product_id="SKU-008", quantity=5)]), timeout=2)
    assert not short.success and short.outcome == pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK
    assert [(s.product_id, s.requested, s.available) for s in short.shortages] == [("SKU-008", 5, 1)]
    assert stub.ReleaseStock(pb.ReleaseStockRequest(order_id="ORD-G1", reason="test"), timeout=2).released
    stock = {p.product_id: p.stock for p in stub.CheckStock(pb.CheckStockRequest(), timeout=2).products}
    assert stock["SKU-003"] == 200 and len(stock) == 8


@pytest.mark.parametrize("request_", [
    pb.ReserveStockRequest(order_id="", lines=[pb.StockLine(product_id="SKU-001", quantity=1)]),
    pb.ReserveStockRequest(order_id="x" * 200, lines=[pb.StockLine(product_id="SKU-001", quantity=1)]),
    pb.ReserveStockRequest(order_id="ORD-B", lines=[]),
    pb.ReserveStockRequest(order_id="ORD-B", lines=[pb.StockLine(product_id="SKU-001", quantity=-5)]),
    pb.ReserveStockRequest(order_id="ORD-B", lines=[pb.StockLine(product_id="SKU-001", quantity=1)] * 2),
])
def test_malformed_requests_are_invalid_argument(channel, request_):
    with pytest.raises(grpc.RpcError) as error:
        pb_grpc.InventoryServiceStub(channel).ReserveStock(request_, timeout=2)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
