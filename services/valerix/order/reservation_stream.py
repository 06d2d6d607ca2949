"""ReserveStock over one long-lived stream per process (inventory's ReserveStockStream).

A unary call per order costs each side a call's machinery and a thread hand-off or two, and
inventory batches the concurrent calls into one transaction anyway. Here the orders that gather
while a batch is being answered go out together as the next batch: one message each way per
batch. There is no timer: an order alone goes at once, and under load a batch is whatever
arrived while the previous one was answered. Each caller still waits for its own order only,
up to its own deadline, and an order inventory delays is answered on its own later, so it
holds up nobody else.

Failure is the unary call's: a caller whose answer does not come within its deadline gets
DEADLINE_EXCEEDED. Its answer may still come (inventory finishes what it started), and then goes
to the late handler, if one is set, up to a window after the deadline; the order service settles
the order from it (order/late_answers.py). When the stream breaks (inventory dies, the
connection drops), every order waiting on it gets the stream's status, and the next order
opens a new stream. When inventory ends the stream cleanly (it is shutting down, a rolling
deploy), the orders still waiting go again, once, on a new stream: reservations are idempotent
by order id. An inventory that does not know the stream (UNIMPLEMENTED: a rolling deploy from
an older version) is asked with unary calls for a while.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import grpc

from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.kit.grpc_auth import Metadata

log = logging.getLogger(__name__)

MAX_BATCH = 64
# The batch in flight gets no answer this long (inventory stalls): the next one goes anyway.
STALLED_AFTER_S = 0.5
# After inventory answers UNIMPLEMENTED, this long on unary calls before trying the stream again.
UNARY_FOR_S = 60.0
_STATUS = {code.value[0]: code for code in grpc.StatusCode}


class ReservationError(grpc.RpcError):
    """How a streamed reservation ended without an answer: a status, as a unary call's error."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


LateHandler = Callable[[pb.ReserveResult], None]


class _Waiter:
    __slots__ = ("done", "error", "late_until", "request", "resent", "response")

    def __init__(self, request: pb.ReserveStockRequest) -> None:
        self.request = request
        self.resent = False
        self.late_until: float | None = None   # its caller gave up: an answer till then is a late one
        self.done = threading.Event()
        self.response: pb.ReserveStockResponse | None = None
        self.error: ReservationError | None = None

    def answer(self, result: pb.ReserveResult) -> None:
        if result.HasField("response"):
            self.response = result.response
        else:
            self.error = ReservationError(_STATUS.get(result.error_code, grpc.StatusCode.UNKNOWN),
                                          result.error_message)
        self.done.set()

    def fail(self, error: ReservationError) -> None:
        self.error = error
        self.done.set()


class _Stream:
    """One open ReserveStockStream call: the batches to send, and the call to read answers from."""

    def __init__(self, stub: pb_grpc.InventoryServiceStub, metadata: Metadata) -> None:
        self.outgoing: queue.SimpleQueue[pb.ReserveBatch | None] = queue.SimpleQueue()
        self.call = stub.ReserveStockStream(self._requests(), metadata=metadata)

    def _requests(self) -> Iterator[pb.ReserveBatch]:
        while (batch := self.outgoing.get()) is not None:
            yield batch


class ReservationStream:
    """``reserve(request, timeout)``: ReserveStock's answer for one order, over the shared stream."""

    def __init__(self, stub: pb_grpc.InventoryServiceStub, metadata: Metadata,
                 unary: Callable[[pb.ReserveStockRequest, float], pb.ReserveStockResponse],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stub = stub
        self._metadata = metadata
        self._unary = unary
        self._clock = clock
        self._lock = threading.Lock()
        self._stream: _Stream | None = None
        self._unsent: list[_Waiter] = []
        self._waiting: dict[str, _Waiter] = {}   # sent, by order id
        self._in_flight: tuple[int, float] | None = None   # (id, when sent) of the batch awaiting its answer
        self._batch_ids = iter(range(1, 2**63))
        self._unary_until = float("-inf")
        self._late: LateHandler | None = None
        self._late_window = 0.0
        self._given_up: deque[_Waiter] = deque()   # late waiters, oldest first

    def on_late_answer(self, handler: LateHandler, window: float) -> None:
        """Answers that come after their caller's deadline, within ``window`` seconds of it,
        go to ``handler`` (on the stream's reading thread: it must not block)."""
        self._late, self._late_window = handler, window

    def reserve(self, request: pb.ReserveStockRequest, timeout: float) -> pb.ReserveStockResponse:
        started = self._clock()
        if started < self._unary_until:
            return self._unary(request, timeout)
        waiter = _Waiter(request)
        with self._lock:
            # The same order already on its way (a caller's retry): ask for it on its own.
            duplicate = request.order_id in self._waiting or any(
                w.request.order_id == request.order_id for w in self._unsent)
            if not duplicate:
                self._unsent.append(waiter)
                if self._in_flight is None or started - self._in_flight[1] > STALLED_AFTER_S:
                    self._send()
        if duplicate:
            return self._unary(request, timeout)
        if not waiter.done.wait(timeout):
            with self._lock:
                if self._waiting.get(request.order_id) is waiter:
                    self._give_up(waiter)
                if waiter in self._unsent:
                    self._unsent.remove(waiter)
            if not waiter.done.is_set():
                raise ReservationError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if waiter.error is not None:
            if waiter.error.code() is grpc.StatusCode.UNIMPLEMENTED:
                # Inventory never saw the order (it does not know the stream): ask it directly.
                self._unary_until = self._clock() + UNARY_FOR_S
                log.warning("inventory has no reservation stream; using unary calls")
                return self._unary(request, max(timeout - (self._clock() - started), 0.05))
            raise waiter.error
        assert waiter.response is not None
        return waiter.response

    def _give_up(self, waiter: _Waiter) -> None:
        """Its caller stopped waiting (the lock held): keep listening for the answer a while if
        someone wants late answers, and forget the callers given up longest ago."""
        now = self._clock()
        while self._given_up and (self._given_up[0].late_until or 0.0) < now:
            expired = self._given_up.popleft()
            if self._waiting.get(expired.request.order_id) is expired:
                del self._waiting[expired.request.order_id]
        if self._late is None:
            del self._waiting[waiter.request.order_id]
            return
        waiter.late_until = now + self._late_window
        self._given_up.append(waiter)

    def _send(self) -> None:
        """Sends the next batch (the lock held), opening the stream first if none is open."""
        if self._stream is None:
            self._stream = _Stream(self._stub, self._metadata)
            threading.Thread(target=self._read, args=(self._stream,), name="reserve-stream", daemon=True).start()
        batch, self._unsent = self._unsent[:MAX_BATCH], self._unsent[MAX_BATCH:]
        batch_id = next(self._batch_ids)
        for waiter in batch:
            self._waiting[waiter.request.order_id] = waiter
        self._in_flight = (batch_id, self._clock())
        self._stream.outgoing.put(pb.ReserveBatch(batch_id=batch_id, orders=[w.request for w in batch]))

    def _read(self, stream: _Stream) -> None:
        error: ReservationError | None = None
        try:
            for answers in stream.call:
                self._deliver(answers)
        except grpc.RpcError as failure:
            code = failure.code() if callable(getattr(failure, "code", None)) else grpc.StatusCode.UNAVAILABLE
            details = failure.details() if callable(getattr(failure, "details", None)) else str(failure)
            error = ReservationError(code or grpc.StatusCode.UNAVAILABLE, details or "stream failed")
        except Exception:
            log.exception("reading the reservation stream failed")
            error = ReservationError(grpc.StatusCode.UNAVAILABLE, "reading the reservation stream failed")
        stream.outgoing.put(None)
        with self._lock:
            if self._stream is stream:
                self._stream = None
                self._in_flight = None
            orphans = [waiter for waiter in self._waiting.values() if waiter.late_until is None] + self._unsent
            self._waiting, self._unsent = {}, []
            self._given_up.clear()
            if error is None:
                # Inventory ended the stream cleanly (it is shutting down) after answering all it
                # read: what still waits goes again, once, on a new stream (to another inventory).
                again = [waiter for waiter in orphans if not waiter.resent]
                orphans = [waiter for waiter in orphans if waiter.resent]
                for waiter in again:
                    waiter.resent = True
                self._unsent = again
                if again:
                    self._send()
        if orphans:
            error = error or ReservationError(grpc.StatusCode.UNAVAILABLE, "inventory ended the reservation stream")
            log.warning("the reservation stream ended with orders waiting",
                        extra={"orders": len(orphans), "code": error.code().name})
            for waiter in orphans:
                waiter.fail(error)

    def _deliver(self, answers: pb.ReserveResults) -> None:
        now = self._clock()
        with self._lock:
            found = [(self._waiting.pop(result.order_id, None), result) for result in answers.results]
            if self._in_flight is not None and answers.batch_id == self._in_flight[0]:
                self._in_flight = None
                if self._unsent:
                    self._send()
        for waiter, result in found:
            if waiter is None:
                continue
            if waiter.late_until is None:
                waiter.answer(result)
            elif now <= waiter.late_until and self._late is not None:   # past its window: nobody wants it
                try:
                    self._late(result)
                except Exception:
                    log.exception("handling a late reservation answer failed")

    def close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.outgoing.put(None)
            stream.call.cancel()
