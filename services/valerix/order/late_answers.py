"""Late reservation answers settle their orders in this process, not through the bus.

An order whose reservation misses its deadline is answered 202 (pending_verification) and
would be verified through the bus: the relay publishes VerifyOrder, inventory's worker reads
the reservation and publishes OrderVerified, the order worker settles the order. But inventory
finishes what it started (Gremlin only delays it), and the stream carries its answer back a
moment later. That answer settles the order here, a batch of answers in one transaction, and
withdraws the VerifyOrder the outbox holds back for it (``Deps.verify_hold``): none of the bus
path runs. If the answer never comes (inventory died, the answer was lost, this process died
or ended), the held VerifyOrder goes out when due and verification runs as before.
"""

from __future__ import annotations

import logging
import queue
import threading

from valerix.order import service
from valerix.order.inventory_client import Reservation

log = logging.getLogger(__name__)

MAX_BATCH = 200


class LateAnswers:
    """Takes late answers from the stream's thread (``put`` never blocks) and settles them on
    its own thread, whatever gathered while the previous batch was saved going as the next."""

    def __init__(self, deps: service.Deps) -> None:
        self._deps = deps
        self._answers: queue.SimpleQueue[tuple[str, Reservation]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, order_id: str, reservation: Reservation) -> None:
        self._answers.put((order_id, reservation))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="late-answers", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._answers.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._answers.get_nowait())
                except queue.Empty:
                    break
            try:
                service.settle_late(self._deps, batch)
            except Exception:
                log.exception("settling late reservation answers failed; their held VerifyOrders will verify them",
                              extra={"orders": len(batch)})
