"""The per-process hub behind the storefront's live feed: one LISTEN connection fanning order
status notifications out to this worker's sockets, and one stock poller (see live.py for why)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

MAX_BACKLOG = 200          # messages queued for one socket before it is told to resync instead
MAX_WATCHED_IDS = 200
ProductsFn = Callable[[], list[dict[str, Any]]]


def now() -> str:
    return datetime.now(UTC).isoformat()


def message(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


class Subscriber:
    """One socket's view of the feed: which orders it watches and what waits to be sent."""

    def __init__(self, wake: threading.Event, order_ids: Iterable[str] | None = None,
                 owner: str | None = None) -> None:
        self.wake = wake
        self.owner = owner   # the customer whose orders alone it may see; None: an operator
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._lagging = False
        self.order_ids: set[str] | None = set(order_ids) if order_ids is not None else None

    def watch(self, order_ids: Iterable[str] | None) -> None:
        """None watches every order; otherwise adds ids (bounded)."""
        with self._lock:
            if order_ids is None:
                self.order_ids = None
            elif self.order_ids is not None:
                for order_id in order_ids:
                    if len(self.order_ids) >= MAX_WATCHED_IDS:
                        break
                    self.order_ids.add(order_id)

    def wants(self, order_id: str, customer_id: str | None = None) -> bool:
        if self.owner is not None and customer_id != self.owner:
            return False
        with self._lock:
            return self.order_ids is None or order_id in self.order_ids

    def offer(self, text: str) -> None:
        with self._lock:
            if self._lagging:
                return
            if len(self._queue) >= MAX_BACKLOG:
                self._queue.clear()
                self._lagging = True
            else:
                self._queue.append(text)
        self.wake.set()

    def take(self) -> list[str]:
        with self._lock:
            if self._lagging:
                self._lagging = False
                self._queue.clear()
                return [message("resync", reason="lagging")]
            taken = list(self._queue)
            self._queue.clear()
            return taken


@dataclass(frozen=True)
class HubConfig:
    channel: str = "order_status"
    stock_interval: float = 3.0
    stock_after_change: float = 0.3     # coalesces a burst of status changes into one stock read
    listen_poll: float = 1.0
    keepalive_every: float = 30.0       # SELECT 1 on the LISTEN connection to notice a half-open socket
    max_backoff: float = 5.0
    autostart: bool = True              # False: no threads (unit tests drive the hub by hand)


class LiveHub:
    """Per-process fan-out of order status notifications and stock snapshots."""

    def __init__(self, conninfo: str, products: ProductsFn | None, config: HubConfig | None = None) -> None:
        self.conninfo = conninfo
        self.products = products
        self.config = config or HubConfig()
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._started = False
        self._stopping = threading.Event()
        self._stock_due = threading.Event()
        self._last_stock: str | None = None      # the last stock message, sent to each new socket
        self._last_products: Any = object()
        self.listening = threading.Event()
        self.closing = threading.Event()        # set when the worker shuts down: sockets say goodbye
        self.reconnects = 0
        self.delivered = 0

    # -- subscribers --
    def subscribe(self, subscriber: Subscriber) -> None:
        self._start_once()
        with self._lock:
            self._subscribers.add(subscriber)
            snapshot = self._last_stock
        if snapshot is not None:
            subscriber.offer(snapshot)
        self._stock_due.set()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _everyone(self) -> list[Subscriber]:
        with self._lock:
            return list(self._subscribers)

    def broadcast(self, text: str) -> None:
        for subscriber in self._everyone():
            subscriber.offer(text)

    def publish_status(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            order_id = str(event["orderId"])
            customer_id = event.get("customerId")
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed order_status notification")
            return
        text = message("status", orderId=order_id, status=event.get("status"),
                       reason=event.get("reason"), at=now())
        for subscriber in self._everyone():
            if subscriber.wants(order_id, customer_id):
                subscriber.offer(text)
                self.delivered += 1
        self._stock_due.set()

    # -- threads (started lazily: gunicorn forks workers after import, threads do not survive a fork) --
    def _start_once(self) -> None:
        with self._lock:
            if self._started or not self.config.autostart:
                return
            self._started = True
        threading.Thread(target=self._listen_forever, name="live-listen", daemon=True).start()
        if self.products is not None:
            threading.Thread(target=self._poll_stock_forever, name="live-stock", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self._stock_due.set()

    def close_all(self) -> None:
        """Asks every socket to close (safe from a signal handler: it only sets events)."""
        self.closing.set()
        for subscriber in self._subscribers.copy():
            subscriber.wake.set()

    def _listen_forever(self) -> None:
        backoff, connected_before = 0.2, False
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5,
                                     application_name="order-live-listen") as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.config.channel)))
                    if connected_before:
                        self.reconnects += 1
                        log.warning("order_status listener reconnected; clients will re-read")
                        self.broadcast(message("resync", reason="reconnected"))
                    connected_before, backoff = True, 0.2
                    self.listening.set()
                    self._listen(conn)
            except psycopg.Error as error:
                self.listening.clear()
                log.warning("order_status listener lost its connection", extra={"error": repr(error)})
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.config.max_backoff)
        self.listening.clear()

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        last_check = time.monotonic()
        while not self._stopping.is_set():
            for notify in conn.notifies(timeout=self.config.listen_poll):
                self.publish_status(notify.payload)
            if time.monotonic() - last_check >= self.config.keepalive_every:
                conn.execute("SELECT 1")
                last_check = time.monotonic()

    def _poll_stock_forever(self) -> None:
        while not self._stopping.is_set():
            changed = self._stock_due.wait(self.config.stock_interval)
            if self._stopping.is_set():
                return
            if changed:
                self._stopping.wait(self.config.stock_after_change)
            self._stock_due.clear()
            if self.subscriber_count():
                self.refresh_stock()

    def refresh_stock(self) -> None:
        assert self.products is not None
        products: list[dict[str, Any]] | None
        try:
            products = self.products()
        except Exception as error:  # any failure of the inventory call: say so, the page keeps its list
            log.warning("stock refresh failed", extra={"error": repr(error)})
            products = None
        with self._lock:
            if products == self._last_products:
                return
            self._last_products = products
            text = message("stock", available=products is not None, products=products, at=now())
            self._last_stock = text
        self.broadcast(text)
