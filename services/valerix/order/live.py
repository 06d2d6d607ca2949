"""The storefront's live feed: order status changes (and stock) pushed over WebSockets.

Why it is shaped like this: under gunicorn's gthread worker every open WebSocket holds one
thread of the worker's pool for as long as it is open. Left unbounded, a few
dozen open storefronts would take every thread and the REST API would stop answering. So:

* Each worker process accepts at most ``slots`` sockets (a non-blocking semaphore taken
  *before* the handshake). When they are all taken the upgrade is refused with a 503 and
  the page falls back to polling every 2 s; the remaining threads always serve HTTP.
* One status poller per worker process (not per socket), running only while a socket is
  open, reads the order status history every ``status_poll`` seconds (live_status.py: why not
  NOTIFY, and how no committed change is skipped) and fans the changes out to that worker's
  sockets through small per-socket queues, so a slow browser never blocks the others. Its
  connection reconnects with backoff and then tells every socket to re-read.
* One stock poller per worker (only while sockets are open) asks inventory for the products
  every few seconds and right after a status change, and pushes the list only when it
  changed: one gRPC call per worker, however many storefronts are watching.
* Protocol pings (simple-websocket) drop dead peers and free their slot; a JSON heartbeat
  lets the browser notice a dead server.
* One client cannot take them all: each remote address holds at most ``per_client`` of a
  worker's slots (behind a proxy that hides client addresses, raise it or set it to the total).
  What a client sends is capped in size (``max_message_bytes``, close 1009) and in rate (a
  token bucket, close 1008), and every send has a timeout: a client that stops reading is
  dropped after ``send_timeout`` seconds, freeing its thread and slot.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import Counter, Gauge
from simple_websocket import ConnectionClosed, Server
from simple_websocket.errors import ConnectionError as WebSocketError

from valerix.kit.auth import Identity, InvalidToken, Tokens, bearer
from valerix.order.live_hub import MAX_WATCHED_IDS, LiveHub, Subscriber, message, now

log = logging.getLogger(__name__)

SOCKETS_OPEN = Gauge("valerix_live_sockets_open", "Storefront WebSockets open", multiprocess_mode="livesum")
SOCKETS_REFUSED = Counter("valerix_live_sockets_refused_total", "WebSocket upgrades refused", ["reason"])


SOCKETS_DROPPED = Counter("valerix_live_sockets_dropped_total", "WebSockets closed by the server for the client's "
                          "behaviour", ["reason"])

POLICY_VIOLATION = 1008
SERVICE_RESTART = 1012


def close_sockets_on_sigterm(hub: LiveHub) -> None:
    """Under gunicorn, SIGTERM makes a worker wait up to its graceful timeout for open
    connections, and a socket never ends by itself: every restart would take the full timeout
    and end in a kill. So the worker's own SIGTERM handler is wrapped to close the sockets
    first (code 1012: browsers reconnect to another worker). Without gunicorn's handler in
    place (tests, other servers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        hub.close_all()
        previous(signum, frame)

    signal.signal(signal.SIGTERM, handle)


class SocketSlots:
    """The bounded share of a worker's threads that sockets may hold, and each client's share
    of those (``per_client``, by remote address; None: no cap of its own)."""

    def __init__(self, size: int, per_client: int | None = None) -> None:
        self.size = max(0, size)
        self.per_client = self.size if per_client is None else max(1, per_client)
        self._lock = threading.Lock()
        self.in_use = 0
        self._by_client: dict[str, int] = {}

    def take(self, client: str = "") -> str | None:
        """None when a slot was taken, else why not ("full" or "client")."""
        with self._lock:
            if self.in_use >= self.size:
                return "full"
            if self._by_client.get(client, 0) >= self.per_client:
                return "client"
            self.in_use += 1
            self._by_client[client] = self._by_client.get(client, 0) + 1
            return None

    def give_back(self, client: str = "") -> None:
        with self._lock:
            self.in_use -= 1
            left = self._by_client.get(client, 1) - 1
            if left > 0:
                self._by_client[client] = left
            else:
                self._by_client.pop(client, None)


class MessageRate:
    """A token bucket over a socket's inbound messages: ``burst`` at once, ``per_second`` after."""

    def __init__(self, per_second: float, burst: int) -> None:
        self._rate, self._burst = per_second, float(burst)
        self._tokens, self._at = float(burst), time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass(frozen=True)
class SocketConfig:
    path: str = "/ws/orders"
    ping_interval: float = 20.0     # protocol pings; a peer that misses one is dropped
    heartbeat: float = 15.0         # JSON heartbeat, so the page can tell a dead server
    max_message_bytes: int = 4096
    messages_per_second: float = 5.0  # inbound; a page sends one "watch" per order it places
    message_burst: int = 20
    send_timeout: float = 10.0        # a client that stops reading is dropped after this
    retry_after: int = 30


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LiveEndpoint:
    """WSGI middleware serving ``/ws/orders`` in front of the Flask app. It sits outside Flask
    on purpose: a socket open for minutes must not count as one slow HTTP request in the
    average-response-time alert, nor a refused upgrade as an API 5xx in the error-rate alert."""

    def __init__(self, app: WsgiApp, hub: LiveHub, slots: SocketSlots, tokens: Tokens,
                 config: SocketConfig | None = None) -> None:
        self.app = app
        self.hub = hub
        self.slots = slots
        self.tokens = tokens
        self.config = config or SocketConfig()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.config.path:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            return _problem(start_response, 426, "This address speaks WebSocket only.", [("Upgrade", "websocket")])
        if not environ.get("HTTP_SEC_WEBSOCKET_KEY") or environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
            return _problem(start_response, 400, "A WebSocket handshake needs Sec-WebSocket-Key and version 13.")
        if not _same_origin(environ):
            SOCKETS_REFUSED.labels(reason="origin").inc()
            return _problem(start_response, 403, "WebSockets are accepted from this site's own pages only.")
        try:
            caller = socket_identity(self.tokens, environ)
        except InvalidToken as error:
            SOCKETS_REFUSED.labels(reason="unauthorized").inc()
            return _problem(start_response, 401, str(error), [("WWW-Authenticate", 'Bearer realm="valerix"')])
        client = str(environ.get("REMOTE_ADDR", ""))
        refused = "closing" if self.hub.closing.is_set() else self.slots.take(client)
        if refused is not None:
            SOCKETS_REFUSED.labels(reason=refused).inc()
            detail = ("This client already holds its share of live-update slots" if refused == "client"
                      else "Every live-update slot of this server is taken")
            return _problem(start_response, 503, f"{detail}; poll GET /api/orders instead.",
                            [("Retry-After", str(self.config.retry_after))])
        try:
            mode = self._session(environ, caller)
        finally:
            self.slots.give_back(client)
        if mode == "gunicorn":
            raise StopIteration  # gunicorn's signal that the app used the socket itself (as flask-sock does)
        start_response("200 OK", [])
        return []

    def _session(self, environ: dict[str, Any], caller: Identity) -> str:
        wake = threading.Event()
        try:
            # Daemon reader threads: one may sit in select() until its next ping after the
            # socket is gone, and must not hold a stopping worker process open meanwhile.
            ws = Server(environ, subprotocols=[BEARER_PROTOCOL], ping_interval=self.config.ping_interval,
                        max_message_size=self.config.max_message_bytes, event_class=lambda: wake,
                        thread_class=functools.partial(threading.Thread, daemon=True))
        except (RuntimeError, WebSocketError):
            log.warning("websocket handshake failed")
            return "failed"
        # Sends time out (the reader thread only reads after select() says so, so it is unaffected).
        ws.sock.settimeout(self.config.send_timeout)
        subscriber = Subscriber(wake, _query_ids(environ), owner=caller.owner)
        self.hub.subscribe(subscriber)
        SOCKETS_OPEN.inc()
        stuck = False
        try:
            ws.send(message("hello", watching="all" if subscriber.order_ids is None else sorted(subscriber.order_ids),
                            heartbeatSeconds=self.config.heartbeat))
            self._pump(ws, subscriber, wake)
            if self.hub.closing.is_set():
                ws.close(SERVICE_RESTART, "the server is restarting; reconnect")
        except ConnectionClosed:
            pass
        except TimeoutError:
            SOCKETS_DROPPED.labels(reason="send_timeout").inc()
            stuck = True
        except OSError:
            pass
        finally:
            self.hub.unsubscribe(subscriber)
            SOCKETS_OPEN.dec()
            if stuck:  # a close frame would only wait for the same full buffer again
                with contextlib.suppress(OSError):
                    ws.sock.shutdown(socket.SHUT_RDWR)
                ws.connected = False
            with contextlib.suppress(Exception):
                ws.close()
        return str(ws.mode)

    def _pump(self, ws: Server, subscriber: Subscriber, wake: threading.Event) -> None:
        # Both the socket's reader thread and the hub set `wake`; client messages are drained
        # before the queue so a wake-up that arrives meanwhile is never lost.
        last_sent = time.monotonic()
        rate = MessageRate(self.config.messages_per_second, self.config.message_burst)
        while ws.connected and not self.hub.closing.is_set():
            wake.wait(self.config.heartbeat)
            wake.clear()
            while (incoming := ws.receive(timeout=0)) is not None:
                if not rate.allow():
                    SOCKETS_DROPPED.labels(reason="message_rate").inc()
                    ws.close(POLICY_VIOLATION, "too many messages")
                    return
                reply = _handle_client(subscriber, incoming)
                if reply:
                    ws.send(reply)
            outgoing = subscriber.take()
            if not outgoing and time.monotonic() - last_sent >= self.config.heartbeat:
                outgoing = [message("heartbeat", at=now())]
            for text in outgoing:
                ws.send(text)
            if outgoing:
                last_sent = time.monotonic()


BEARER_PROTOCOL = "valerix.bearer"


def socket_identity(tokens: Tokens, environ: dict[str, Any]) -> Identity:
    """Browsers cannot set headers on a WebSocket, so the page offers two subprotocols,
    ``valerix.bearer`` and its token (the server answers with the first only); other clients
    may send ``Authorization: Bearer``. Never a token in the URL, where logs would keep it."""
    offered = [p.strip() for p in environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(",") if p.strip()]
    if BEARER_PROTOCOL in offered:
        others = [p for p in offered if p != BEARER_PROTOCOL]
        if len(others) != 1:
            raise InvalidToken(f"Offer the subprotocols '{BEARER_PROTOCOL}' and your token, nothing else.")
        return tokens.verify(others[0])
    return tokens.verify(bearer(environ.get("HTTP_AUTHORIZATION")))


def _handle_client(subscriber: Subscriber, incoming: str | bytes) -> str | None:
    """Clients may say {"type": "watch", "orderIds": [...]} or {"type": "watch", "all": true}."""
    try:
        request = json.loads(incoming)
        if not isinstance(request, dict) or request.get("type") != "watch":
            raise ValueError
        if request.get("all") is True:
            subscriber.watch(None)
            return None
        ids = request.get("orderIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
            raise ValueError
    except ValueError:
        return message("error", detail='Send {"type": "watch", "orderIds": ["..."]} or {"type": "watch", "all": true}.')
    subscriber.watch(ids)
    return None


def _query_ids(environ: dict[str, Any]) -> list[str] | None:
    ids = [i for i in parse_qs(environ.get("QUERY_STRING", "")).get("orderId", []) if 0 < len(i) <= 64]
    return ids[:MAX_WATCHED_IDS] or None


def _same_origin(environ: dict[str, Any]) -> bool:
    origin = environ.get("HTTP_ORIGIN")
    if not origin:
        return True  # not a browser; nothing to forge
    return urlsplit(origin).netloc.lower() == environ.get("HTTP_HOST", "").lower()


def _problem(start_response: Callable[..., Any], status: int, detail: str,
             headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = json.dumps({"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                       "detail": detail, "instance": "/ws/orders"}).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}",
                   [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body))),
                    *(headers or [])])
    return [body]
