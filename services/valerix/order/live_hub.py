"""The per-process hub behind the storefront's live feed: one status poller fanning order
status changes out to this worker's sockets while any is open (live_status.py says what it
reads and why), and one stock poller (see live.py for why)."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from valerix.kit.db import SESSION_OPTIONS
from valerix.order import db
from valerix.order.live_status import StatusFeed

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
    status_poll: float = 0.25           # seconds between reads of the status history
    status_page: int = 1000             # history rows per read; a full page is followed at once
    stock_interval: float = 3.0
    stock_after_change: float = 0.3     # coalesces a burst of status changes into one stock read
    max_backoff: float = 5.0
    autostart: bool = True              # False: no threads (unit tests drive the hub by hand)


class LiveHub:
    """Per-process fan-out of order status changes and stock snapshots."""

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
        self._status_poller: threading.Thread | None = None   # alive only while someone subscribes
        self._feed = StatusFeed()
        self.polling = threading.Event()        # set while the status poller is connected and reading
        self.closing = threading.Event()        # set when the worker shuts down: sockets say goodbye
        self.reconnects = 0
        self.delivered = 0

    # -- subscribers --
    def subscribe(self, subscriber: Subscriber) -> None:
        self._start_once()
        with self._lock:
            self._subscribers.add(subscriber)
            snapshot = self._last_stock
            self._start_status_poller()
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

    def publish_status(self, order_id: str, status: str, reason: str | None,
                       customer_id: str | None = None) -> None:
        text = message("status", orderId=order_id, status=status, reason=reason, at=now())
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
        if self.products is not None:
            threading.Thread(target=self._poll_stock_forever, name="live-stock", daemon=True).start()

    def _start_status_poller(self) -> None:
        """Under self._lock, with a subscriber added: one poller runs from the first subscriber
        to the last, so a process nobody watches sends the database nothing at all."""
        if self._status_poller is None and self.config.autostart and not self._stopping.is_set():
            self._status_poller = threading.Thread(target=self._poll_status_while_watched, name="live-status",
                                                   daemon=True)
            self._status_poller.start()

    def _still_watched(self) -> bool:
        """False once nobody subscribes (or the hub stops); the poller then forgets itself and must
        return at once, since the next subscriber may already have started its successor."""
        with self._lock:
            if self._subscribers and not self._stopping.is_set():
                return True
            self.polling.clear()
            self._status_poller = None
            return False

    def stop(self) -> None:
        self._stopping.set()
        self._stock_due.set()

    def close_all(self) -> None:
        """Asks every socket to close (safe from a signal handler: it only sets events)."""
        self.closing.set()
        for subscriber in self._subscribers.copy():
            subscriber.wake.set()

    def _poll_status_while_watched(self) -> None:
        backoff, lost = 0.2, False
        while self._still_watched():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5, row_factory=dict_row,
                                     application_name="order-live-status", options=SESSION_OPTIONS,
                                     tcp_user_timeout=10_000) as conn:
                    self._feed.restart(db.status_feed_start(conn))
                    if lost:
                        self.reconnects += 1
                        log.warning("order status poller reconnected; clients will re-read")
                        self.broadcast(message("resync", reason="reconnected"))
                    lost, backoff = False, 0.2
                    self.polling.set()
                    self._poll_status(conn)
                    return
            except psycopg.Error as error:
                self.polling.clear()
                lost = True
                log.warning("order status poller lost its connection", extra={"error": repr(error)})
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.config.max_backoff)

    def _poll_status(self, conn: db.Conn) -> None:
        while self._still_watched():
            assert self._feed.cursor is not None
            page = db.status_changes_after(conn, self._feed.cursor, self.config.status_page)
            for row in self._feed.take(page):
                self.publish_status(row["order_id"], row["to_status"], row["reason"], row["customer_id"])
            if len(page) < self.config.status_page:
                self._stopping.wait(self.config.status_poll)

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
