"""The order service's adapter for inventory's gRPC contract (2 s deadline on reservations)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.kit import metrics
from valerix.kit.grpc_auth import token_metadata
from valerix.order.domain import OrderLine
from valerix.order.reservation_stream import ReservationStream
from valerix.order.settings import ReserveTransport

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["InventoryService"].full_name
UnavailableReason = Literal["grpc_timeout", "connection_error", "server_error"]
T = TypeVar("T")

# Every status has a reason, so no answer inventory gives (a rolling deploy's UNIMPLEMENTED, a
# throttled RESOURCE_EXHAUSTED, a half-rolled-out credential's UNAUTHENTICATED) can fail an order
# or surface as a 500: an unknown outcome goes the verification path, and the client metric
# shows the code.
_SERVER_ERROR: UnavailableReason = "server_error"
_REASONS: dict[grpc.StatusCode, UnavailableReason] = {
    code: _SERVER_ERROR for code in grpc.StatusCode if code is not grpc.StatusCode.OK
} | {
    grpc.StatusCode.DEADLINE_EXCEEDED: "grpc_timeout",
    grpc.StatusCode.UNAVAILABLE: "connection_error",
    grpc.StatusCode.CANCELLED: "connection_error",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "connection_error",
}


def unavailable_reason(code: grpc.StatusCode) -> UnavailableReason:
    return _REASONS.get(code, "server_error")


class InventoryUnavailable(Exception):
    """Inventory did not give an answer we can trust; the outcome is unknown."""

    def __init__(self, reason: UnavailableReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Reservation:
    success: bool
    outcome: str            # reserved | insufficient_stock | unknown_product | released
    reservation_id: str
    shortages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    stock: int
    price_cents: int


_OUTCOME_NAMES = {
    pb.RESERVE_OUTCOME_RESERVED: "reserved",
    pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK: "insufficient_stock",
    pb.RESERVE_OUTCOME_UNKNOWN_PRODUCT: "unknown_product",
    pb.RESERVE_OUTCOME_RELEASED: "released",
}


class InventoryClient:
    def __init__(self, target: str, token: str, reserve_deadline: float = 2.0, other_deadline: float = 2.0,
                 reserve_transport: ReserveTransport = "stream") -> None:
        self.target = target
        self.reserve_deadline = reserve_deadline
        self.other_deadline = other_deadline
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2_000),
            ("grpc.enable_retries", 0),   # a retry could double a side effect's timing; we recover by events
        ])
        self._stub = pb_grpc.InventoryServiceStub(self._channel)
        self._metadata = token_metadata(token)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._reservations = ReservationStream(self._stub, self._metadata, self._reserve_unary)
        self._streamed = reserve_transport == "stream"
        self._reserve = self._reservations.reserve if self._streamed else self._reserve_unary

    def _call(self, method: str, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        code = "OK"
        try:
            return fn()
        except grpc.RpcError as error:
            status = error.code()
            code = status.name
            raise InventoryUnavailable(unavailable_reason(status), error.details() or code) from None
        finally:
            metrics.GRPC_CLIENT.labels(method=method, code=code).observe(time.perf_counter() - started)

    def reserve(self, order_id: str, lines: tuple[OrderLine, ...] | list[OrderLine],
                timeout: float | None = None) -> Reservation:
        request = pb.ReserveStockRequest(order_id=order_id, lines=[
            pb.StockLine(product_id=line.product_id, quantity=line.quantity) for line in lines])
        deadline = self.reserve_deadline if timeout is None else min(timeout, self.reserve_deadline)
        reply = self._call("ReserveStock", lambda: self._reserve(request, max(deadline, 0.05)))
        return _reservation(reply)

    @property
    def answers_late(self) -> bool:
        """Whether a reservation that timed out can still be answered (the stream keeps
        listening; a unary call is cancelled at its deadline)."""
        return self._streamed

    def on_late_answer(self, handler: Callable[[str, Reservation], None], window: float) -> None:
        """Inventory's answers to reservations whose caller's deadline passed, up to ``window``
        seconds after it: ``handler(order_id, reservation)``, on the stream's thread."""
        def deliver(result: pb.ReserveResult) -> None:
            if result.HasField("response"):   # an error says nothing about the outcome
                handler(result.order_id, _reservation(result.response))
        self._reservations.on_late_answer(deliver, window)

    def _reserve_unary(self, request: pb.ReserveStockRequest, timeout: float) -> pb.ReserveStockResponse:
        reply: pb.ReserveStockResponse = self._stub.ReserveStock(request, timeout=timeout, metadata=self._metadata)
        return reply

    def release(self, order_id: str, reason: str) -> bool:
        request = pb.ReleaseStockRequest(order_id=order_id, reason=reason)
        reply = self._call("ReleaseStock", lambda: self._stub.ReleaseStock(
            request, timeout=self.other_deadline, metadata=self._metadata))
        return bool(reply.released)

    def products(self, product_ids: list[str] | None = None) -> list[Product]:
        request = pb.CheckStockRequest(product_ids=product_ids or [])
        reply = self._call("CheckStock", lambda: self._stub.CheckStock(
            request, timeout=self.other_deadline, metadata=self._metadata))
        return [Product(p.product_id, p.name, p.stock, p.price_cents) for p in reply.products]

    def check_health(self, timeout: float = 1.0) -> None:
        reply = self._health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout)
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"inventory gRPC health is {reply.status}")

    def close(self) -> None:
        self._reservations.close()
        self._channel.close()


def _reservation(reply: pb.ReserveStockResponse) -> Reservation:
    return Reservation(
        success=reply.success, outcome=_OUTCOME_NAMES.get(reply.outcome, "unknown"),
        reservation_id=reply.reservation_id,
        shortages=[{"productId": s.product_id, "requested": s.requested, "available": s.available}
                   for s in reply.shortages])


class Catalogue:
    """Known product ids, refreshed from inventory (at most once a second) when an order
    names one we have not seen, so an unknown product is refused with 422 before anything
    is written."""

    def __init__(self, client: InventoryClient) -> None:
        self.client = client
        self._known: set[str] = set()
        self._at = float("-inf")

    def unknown(self, product_ids: list[str]) -> list[str] | None:
        """Ids inventory does not sell, or None when inventory cannot tell us right now."""
        missing = [p for p in product_ids if p not in self._known]
        if not missing:
            return []
        if time.monotonic() - self._at < 1.0:
            return missing
        try:
            self._known = {p.product_id for p in self.client.products()}
            self._at = time.monotonic()
        except InventoryUnavailable:
            return None
        return [p for p in product_ids if p not in self._known]
