"""The reservation stream's late answers (order/reservation_stream.py): a caller that gave up is
remembered only for the late window, and only while someone wants late answers."""

from __future__ import annotations

from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.order.reservation_stream import ReservationStream, _Waiter


def _stream(clock: list[float]) -> ReservationStream:
    return ReservationStream(stub=None, metadata=(), unary=lambda request, timeout: pb.ReserveStockResponse(),
                             clock=lambda: clock[0])


def _waiting(stream: ReservationStream, order_id: str) -> _Waiter:
    waiter = _Waiter(pb.ReserveStockRequest(order_id=order_id))
    stream._waiting[order_id] = waiter
    return waiter


def test_callers_given_up_are_forgotten_once_their_window_has_passed():
    clock = [100.0]
    stream = _stream(clock)
    stream.on_late_answer(lambda result: None, window=1.0)
    first, second = _waiting(stream, "ORD-A"), _waiting(stream, "ORD-B")
    with stream._lock:
        stream._give_up(first)
    assert stream._waiting == {"ORD-A": first, "ORD-B": second} and first.late_until == 101.0
    clock[0] = 102.0
    with stream._lock:
        stream._give_up(second)
    assert stream._waiting == {"ORD-B": second}


def test_without_a_late_handler_a_caller_given_up_is_forgotten_at_once():
    stream = _stream([0.0])
    waiter = _waiting(stream, "ORD-A")
    with stream._lock:
        stream._give_up(waiter)
    assert stream._waiting == {} and waiter.late_until is None


def test_a_late_answer_goes_to_the_handler_only_within_its_window():
    clock = [0.0]
    heard: list[str] = []
    stream = _stream(clock)
    stream.on_late_answer(lambda result: heard.append(result.order_id), window=1.0)
    for order_id in ("ORD-A", "ORD-B"):
        with stream._lock:
            stream._give_up(_waiting(stream, order_id))
    answer = pb.ReserveStockResponse(success=True, reservation_id="RES-1")
    clock[0] = 0.5
    stream._deliver(pb.ReserveResults(batch_id=0, results=[pb.ReserveResult(order_id="ORD-A", response=answer)]))
    clock[0] = 1.5
    stream._deliver(pb.ReserveResults(batch_id=0, results=[pb.ReserveResult(order_id="ORD-B", response=answer)]))
    assert heard == ["ORD-A"] and stream._waiting == {}
