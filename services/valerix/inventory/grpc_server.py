"""The gRPC face of inventory: maps protobuf to use cases and back. Chaos hooks wrap the
reservation exactly where the seed's failures happen: before the work (Gremlin) and after
the commit, before the answer (Schrödinger)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

import grpc

from valerix.inventory import metrics, service
from valerix.inventory.bootstrap import Deps
from valerix.inventory.domain import InvalidReservation, Line, Outcome, Rejection, ReservationStatus, lock_order
from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.kit import metrics as kit_metrics
from valerix.kit.group_commit import GroupCommit
from valerix.kit.logs import order_id as log_order_id

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["InventoryService"].full_name
MAX_ORDER_ID = 128
MAX_BATCH = 256   # orders in one ReserveBatch; the order API sends at most 64

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
    def __init__(self, deps: Deps, delay_workers: int = 512) -> None:
        self.deps = deps
        self.chaos = deps.chaos
        # Concurrent reservations share a transaction (each still all or nothing): they all lock
        # the same few products, and would otherwise hold them through a commit each.
        self.reservations = GroupCommit("reserve_stock", self._reserve_batch)
        # Where a streamed order that Gremlin delays waits, so it holds up neither its batch
        # nor the stream (a unary call waits in its own handler thread, from a pool as large).
        self._delayed = ThreadPoolExecutor(max_workers=delay_workers, thread_name_prefix="reserve-delayed")
        self._streams_lock = threading.Lock()
        self._streams: set[queue.SimpleQueue[pb.ReserveResults | None]] = set()
        self._ending = False

    def add_to_server(self, server: grpc.Server) -> None:
        pb_grpc.add_InventoryServiceServicer_to_server(self, server)

    def end_streams(self) -> None:
        """Ends every open reservation stream cleanly (shutting down: the server takes no new
        calls). The order API then sends what it still waits for again, on a new stream to
        another inventory; a reservation is idempotent by order id, so asking twice is safe."""
        with self._streams_lock:
            self._ending = True
            streams = list(self._streams)
        for answers in streams:
            answers.put(None)

    def _reserve_batch(self, requests: Sequence[tuple[str, list[Line]]]) -> list[Outcome]:
        with self.deps.uow() as uow:
            outcomes = service.reserve_many(uow, requests)
            uow.commit()
        return outcomes

    def ReserveStock(self, request: pb.ReserveStockRequest,
                     context: grpc.ServicerContext) -> pb.ReserveStockResponse:
        lines = _valid_lines(request)
        if isinstance(lines, str):
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, lines)
        log_order_id.set(request.order_id)
        if delay := self.chaos.delay_seconds():
            time.sleep(delay)
        if not context.is_active():
            # The caller gave up during the delay. Doing the work anyway is what the seed's
            # Schrödinger case is about; the reservation stays idempotent by order id.
            log.info("caller gone before reserve", extra={"orderId": request.order_id})
        result = self._answer(request.order_id, self.reservations.submit((request.order_id, lines)))
        if result.HasField("response"):
            return result.response
        _abort(context, _CODES[result.error_code], result.error_message)

    def ReserveStockStream(self, batches: Iterator[pb.ReserveBatch],
                           context: grpc.ServicerContext) -> Iterator[pb.ReserveResults]:
        answers: queue.SimpleQueue[pb.ReserveResults | None] = queue.SimpleQueue()
        context.add_callback(lambda: answers.put(None))   # the call ended: stop writing
        with self._streams_lock:
            if self._ending:
                return
            self._streams.add(answers)

        def read() -> None:
            try:
                for batch in batches:
                    answers.put(self._answer_batch(batch, answers.put))
            except Exception:   # the caller went away or the call was cancelled
                log.debug("reservation stream ended", exc_info=True)
            finally:
                answers.put(None)

        threading.Thread(target=read, name="reserve-stream", daemon=True).start()
        try:
            while (answer := answers.get()) is not None:
                yield answer
        finally:
            with self._streams_lock:
                self._streams.discard(answers)

    def _answer_batch(self, batch: pb.ReserveBatch,
                      send: Callable[[pb.ReserveResults], None]) -> pb.ReserveResults:
        """The batch's undelayed orders reserved in one transaction (each all or nothing) and
        answered together; each delayed order is reserved and answered on its own after its delay."""
        started = time.perf_counter()
        answered: dict[int, pb.ReserveResult] = {}
        now: list[tuple[int, str, list[Line]]] = []
        for index, request in enumerate(batch.orders):
            lines = _valid_lines(request) if index < MAX_BATCH else f"at most {MAX_BATCH} orders in a batch"
            if isinstance(lines, str):
                answered[index] = _error(request.order_id, grpc.StatusCode.INVALID_ARGUMENT, lines)
            elif delay := self.chaos.delay_seconds():
                self._delayed.submit(self._reserve_delayed, request.order_id, lines, delay, send, started)
            else:
                now.append((index, request.order_id, lines))
        outcomes = self.reservations.submit_all([(order_id, lines) for _, order_id, lines in now])
        for (index, order_id, _), outcome in zip(now, outcomes, strict=True):
            answered[index] = self._answer(order_id, outcome)
        results = [answered[i] for i in sorted(answered)]
        _observe(results, started)
        return pb.ReserveResults(batch_id=batch.batch_id, results=results)

    def _reserve_delayed(self, order_id: str, lines: list[Line], delay: float,
                         send: Callable[[pb.ReserveResults], None], started: float) -> None:
        time.sleep(delay)
        try:
            outcome: Outcome | Exception = self.reservations.submit((order_id, lines))
        except Exception as error:
            outcome = error
        result = self._answer(order_id, outcome)
        _observe([result], started)
        send(pb.ReserveResults(batch_id=0, results=[result]))

    def _answer(self, order_id: str, outcome: Outcome | Exception) -> pb.ReserveResult:
        """What the caller hears about one reservation: its outcome, or the status it ended with."""
        if isinstance(outcome, Exception):
            log.error("reservation failed", exc_info=outcome, extra={"orderId": order_id})
            return _error(order_id, grpc.StatusCode.UNKNOWN, "the reservation failed; its outcome is unknown")
        response = to_response(outcome)
        metrics.RESERVATIONS.labels(outcome=pb.ReserveOutcome.Name(response.outcome).removeprefix(
            "RESERVE_OUTCOME_").lower() + ("_replayed" if outcome.replayed else "")).inc()
        if self.chaos.answer_lost():
            return _error(order_id, grpc.StatusCode.INTERNAL, "schrodinger: processed, but the answer was lost")
        return pb.ReserveResult(order_id=order_id, response=response)

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
    if problem := _order_id_problem(order_id):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)


def _order_id_problem(order_id: str) -> str | None:
    if not order_id or len(order_id) > MAX_ORDER_ID or not order_id.isprintable():
        return f"order_id must be 1-{MAX_ORDER_ID} printable chars"
    return None


def _valid_lines(request: pb.ReserveStockRequest) -> list[Line] | str:
    """The order's lines in lock order, or why the request is invalid."""
    if problem := _order_id_problem(request.order_id):
        return problem
    try:
        return lock_order([Line(line.product_id, line.quantity) for line in request.lines])
    except InvalidReservation as error:
        return str(error)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("grpc's abort raises")


def _error(order_id: str, code: grpc.StatusCode, message: str) -> pb.ReserveResult:
    return pb.ReserveResult(order_id=order_id, error_code=code.value[0], error_message=message)


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _observe(results: Sequence[pb.ReserveResult], started: float) -> None:
    """Each streamed order in the gRPC server histogram, as a ReserveStock call would be."""
    seconds = time.perf_counter() - started
    for result in results:
        code = "OK" if result.HasField("response") else _CODES[result.error_code].name
        kit_metrics.GRPC_SERVER.labels(method="ReserveStockStream", code=code).observe(seconds)

