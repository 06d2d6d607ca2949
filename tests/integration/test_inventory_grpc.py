"""Inventory's gRPC server: the contract, the service credential, the standard health service
and reflection (open without a credential)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.order.domain import OrderLine
from valerix.order.inventory_client import InventoryClient, InventoryUnavailable

from support.grpc_token import authorized_channel


@pytest.fixture
def bare_channel(inventory_target):
    with grpc.insecure_channel(inventory_target) as ch:
        yield ch


@pytest.fixture
def channel(bare_channel, grpc_token):
    return authorized_channel(bare_channel, grpc_token)


def test_health_service_reports_serving_without_a_credential(bare_channel):
    stub = health_pb2_grpc.HealthStub(bare_channel)
    for service in ("", "valerix.inventory.v1.InventoryService"):
        assert stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services_without_a_credential(bare_channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(bare_channel)
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


RESERVE = pb.ReserveStockRequest(order_id="ORD-AUTH", lines=[pb.StockLine(product_id="SKU-003", quantity=5)])


def _stock(channel) -> dict[str, int]:
    return {p.product_id: p.stock for p in pb_grpc.InventoryServiceStub(channel).CheckStock(
        pb.CheckStockRequest(), timeout=2).products}


def _refused(stub_call, request, **kwargs) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub_call(request, timeout=2, **kwargs)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, error.value


@pytest.mark.parametrize("metadata", [
    None,                                           # no credential at all
    [("authorization", "Bearer not-the-token")],    # someone else's token
    [("authorization", "Bearer ")],
    [("authorization", "Basic b3JkZXI6cHc=")],
], ids=["none", "wrong", "empty", "other-scheme"])
def test_calls_without_the_order_service_credential_are_unauthenticated_and_change_nothing(
        bare_channel, channel, inventory_pool, metadata):
    stub = pb_grpc.InventoryServiceStub(bare_channel)
    before = _stock(channel)
    _refused(stub.ReserveStock, RESERVE, metadata=metadata)
    _refused(stub.CheckStock, pb.CheckStockRequest(), metadata=metadata)
    assert _stock(channel) == before
    with inventory_pool.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM reservations WHERE order_id = 'ORD-AUTH'").fetchone()
        assert row is not None and row["n"] == 0


def test_a_stray_caller_cannot_release_someone_elses_reservation(bare_channel, channel, grpc_token):
    held = pb_grpc.InventoryServiceStub(channel).ReserveStock(RESERVE, timeout=2)
    assert held.success and _stock(channel)["SKU-003"] == 195
    stray = pb_grpc.InventoryServiceStub(bare_channel)
    release = pb.ReleaseStockRequest(order_id="ORD-AUTH", reason="stray")
    _refused(stray.ReleaseStock, release)
    _refused(stray.ReleaseStock, release, metadata=[("authorization", f"Bearer {grpc_token}x")])
    _refused(stray.ReleaseStock, release, metadata=[("authorization", grpc_token)])  # no scheme
    assert _stock(channel)["SKU-003"] == 195, "a refused release gave the stock back"
    assert pb_grpc.InventoryServiceStub(channel).ReleaseStock(release, timeout=2).released
    assert _stock(channel)["SKU-003"] == 200


def test_the_order_service_client_carries_the_credential(inventory_target, grpc_token, channel):
    right, wrong = InventoryClient(inventory_target, grpc_token), InventoryClient(inventory_target, "wrong-token")
    try:
        assert len(right.products()) == 8
        with pytest.raises(InventoryUnavailable) as refused:
            wrong.reserve("ORD-CLIENT", [OrderLine("SKU-003", 5)])
        assert refused.value.reason == "server_error"
        assert _stock(channel)["SKU-003"] == 200
        assert right.reserve("ORD-CLIENT", [OrderLine("SKU-003", 5)]).outcome == "reserved"
        assert _stock(channel)["SKU-003"] == 195
    finally:
        right.close()
        wrong.close()
