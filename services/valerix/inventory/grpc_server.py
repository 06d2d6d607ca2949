"""The gRPC face of inventory: maps protobuf to use cases and back. Chaos hooks wrap the
reservation exactly where the seed's failures happen: before the work (Gremlin) and after
the commit, before the answer (Schrödinger)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc

from valerix.inventory import metrics, service
from valerix.inventory.bootstrap import Deps
from valerix.inventory.domain import InvalidReservation, Line, Outcome, Rejection, ReservationStatus, lock_order
from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.kit.group_commit import GroupCommit
from valerix.kit.logs import order_id as log_order_id

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["InventoryService"].full_name
MAX_ORDER_ID = 128

_OUTCOMES = {
    ReservationStatus.RESERVED: pb.RESERVE_OUTCOME_RESERVED,
    ReservationStatus.RELEASED: pb.RESERVE_OUTCOME_RELEASED,
}
_REJECTIONS = {
    Rejection.INSUFFICIENT_STOCK: pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK,
    Rejection.UNKNOWN_PRODUCT: pb.RESERVE_OUTCOME_UNKNOWN_PRODUCT,
}


def to_response(outcome: Outcome) -> pb.ReserveStockResponse:
    if outcome.status is ReservationStatus.REJECTED:
        code = _REJECTIONS.get(outcome.rejection or Rejection.INSUFFICIENT_STOCK,
                               pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK)
    else:
        code = _OUTCOMES[outcome.status]
    message = {
        pb.RESERVE_OUTCOME_RESERVED: "reserved",
        pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK: "insufficient stock",
        pb.RESERVE_OUTCOME_UNKNOWN_PRODUCT: "unknown product",
        pb.RESERVE_OUTCOME_RELEASED: "this order's reservation was already released",
    }[code]
    return pb.ReserveStockResponse(
        success=outcome.success, outcome=code, reservation_id=outcome.reservation_id or "",
        message=message, replayed=outcome.replayed,
        shortages=[pb.LineShortage(product_id=s.product_id, requested=s.requested, available=s.available)
                   for s in outcome.shortages],
        remaining_stock=outcome.remaining)


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.chaos = deps.chaos
        # Concurrent reservations share a transaction (each still all or nothing): they all lock
        # the same few products, and would otherwise hold them through a commit each.
        self.reservations = GroupCommit("reserve_stock", self._reserve_batch)

    def _reserve_batch(self, requests: Sequence[tuple[str, list[Line]]]) -> list[Outcome]:
        with self.deps.uow() as uow:
            outcomes = service.reserve_many(uow, requests)
            uow.commit()
        return outcomes

    def ReserveStock(self, request: pb.ReserveStockRequest,
                     context: grpc.ServicerContext) -> pb.ReserveStockResponse:
        _require_order_id(request.order_id, context)
        log_order_id.set(request.order_id)
        try:
            lines = lock_order([Line(line.product_id, line.quantity) for line in request.lines])
        except InvalidReservation as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        self.chaos.before_reserve()
        if not context.is_active():
            # The caller gave up during the delay. Doing the work anyway is what the seed's
            # Schrödinger case is about; the reservation stays idempotent by order id.
            log.info("caller gone before reserve", extra={"orderId": request.order_id})
        outcome = self.reservations.submit((request.order_id, lines))
        response = to_response(outcome)
        metrics.RESERVATIONS.labels(outcome=pb.ReserveOutcome.Name(response.outcome).removeprefix(
            "RESERVE_OUTCOME_").lower() + ("_replayed" if outcome.replayed else "")).inc()
        self.chaos.after_commit(context)
        return response

    def ReleaseStock(self, request: pb.ReleaseStockRequest,
                     context: grpc.ServicerContext) -> pb.ReleaseStockResponse:
        _require_order_id(request.order_id, context)
        with self.deps.uow() as uow:
            released = service.release(uow, request.order_id, request.reason or "released")
            uow.commit()
        return pb.ReleaseStockResponse(released=released,
                                       message="released" if released else "nothing held for this order")

    def CheckStock(self, request: pb.CheckStockRequest,
                   context: grpc.ServicerContext) -> pb.CheckStockResponse:
        if len(request.product_ids) > 1000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "at most 1000 product ids")
        with self.deps.uow() as uow:
            rows = service.check_stock(uow, list(request.product_ids) or None)
        return pb.CheckStockResponse(products=[
            pb.ProductStock(product_id=r["id"], name=r["name"], stock=r["stock"], price_cents=r["price_cents"])
            for r in rows])


def _require_order_id(order_id: str, context: grpc.ServicerContext) -> None:
    if not order_id or len(order_id) > MAX_ORDER_ID or not order_id.isprintable():
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"order_id must be 1-{MAX_ORDER_ID} printable chars")


def register(deps: Deps) -> Any:
    servicer = InventoryServicer(deps)

    def add(server: grpc.Server) -> None:
        pb_grpc.add_InventoryServiceServicer_to_server(servicer, server)

    return add
