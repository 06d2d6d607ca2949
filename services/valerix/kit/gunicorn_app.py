"""Run a WSGI app under gunicorn from Python, with prometheus multiprocess bookkeeping."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

# When the request reached the machine (time.monotonic(), from the kernel's receive stamp, see
# kernel_arrival): a request may wait in its socket and then queue behind busy threads, and a
# deadline promised to the client counts from its arrival, not from when a thread picks it up.
# None outside gunicorn (tests, Flask's own server): the request arrived when its handler started.
arrived_at: ContextVar[float | None] = ContextVar("arrived_at", default=None)


# How long a thread keeps a kept-alive connection after answering, waiting for its next request,
# before handing it back to the worker's poller (when no other connection waits for a thread).
# KEEPALIVE_LINGER_MS=0: gthread's own behaviour. 200 ms covers the gap between a busy client's
# requests (an open-model load of ~440 orders/s spreads over ~40 connections, ~90 ms apart): at
# 20 ms most lingers ran out and the p99 was 1.3 to 2 times as long (BENCHMARKS.md).
DEFAULT_KEEPALIVE_LINGER_MS = 200
# A thread lingers only while this share of the worker's threads is free (in no handler and not
# lingering): lingering never takes the threads that new connections and long requests (a
# reservation Gremlin delays, an open WebSocket) need, and it stops as the pool fills.
FREE_SHARE_TO_LINGER = 0.25


class ArrivalStampingWorker(ThreadWorker):
    """gunicorn's gthread worker, stamping each connection when it is queued for a thread, and
    serving a busy kept-alive connection's next request on the same thread.

    gthread hands every kept-alive connection back to its poller after each answer, and every
    request then costs a round of hand-offs: the poller's thread wakes, unregisters the socket,
    submits it to the pool (a future, its condition, a done callback writing to a pipe), and
    registers it again when the answer is out. That was about 40 % of the order API's CPU
    under load. A client sending request after request on its connection is served here in a
    loop instead, while its next request comes within the linger (``KEEPALIVE_LINGER_MS``), no
    other connection is waiting for a thread and ``FREE_SHARE_TO_LINGER`` of the threads are free;
    an idle connection still goes back to the poller."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._linger = int(os.environ.get("KEEPALIVE_LINGER_MS", DEFAULT_KEEPALIVE_LINGER_MS)) / 1000
        self._linger_while_in_handler = self.cfg.threads - max(1, int(self.cfg.threads * FREE_SHARE_TO_LINGER))
        self._waiting_lock = threading.Lock()
        self._waiting = 0   # connections queued for a thread
        self._in_handler = 0   # threads serving a connection or lingering on one

    def enqueue_req(self, conn: Any) -> None:
        if not getattr(conn, "valerix_stamped", False):
            stamp_arrivals(conn.sock)
            conn.valerix_stamped = True
        conn.valerix_arrived_at = kernel_arrival(conn.sock)
        with self._waiting_lock:
            self._waiting += 1
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        with self._waiting_lock:
            self._waiting -= 1
            self._in_handler += 1
        try:
            keepalive = super().handle(conn)
            while (keepalive is True and self._may_linger()
                   and (arrived := _next_request_within(conn, self._linger)) is not None):
                conn.valerix_arrived_at = arrived
                keepalive = super().handle(conn)
            return keepalive
        finally:
            with self._waiting_lock:
                self._in_handler -= 1

    def _may_linger(self) -> bool:
        """Whether this thread may wait for its connection's next request: nothing waits for a
        thread, and enough threads are free."""
        return (self._linger > 0 and self.alive and not self._waiting
                and self._in_handler <= self._linger_while_in_handler)

    def handle_request(self, req: Any, conn: Any) -> Any:
        arrived_at.set(getattr(conn, "valerix_arrived_at", None))
        try:
            return super().handle_request(req, conn)
        finally:
            arrived_at.set(None)


def _next_request_within(conn: Any, seconds: float) -> float | None:
    """When the connection's next request began to arrive (see ``kernel_arrival``), if it has
    (bytes already read ahead, or readable within ``seconds``). None also when the client closed
    it: the poller then finds it readable and the pool reads its end, as for any kept-alive
    connection."""
    sock = conn.sock
    if conn.parser.unreader.buf.getvalue():
        return kernel_arrival(sock)
    try:
        sock.settimeout(seconds)
        waiting, arrived = _peek(sock, 0)
    finally:
        with contextlib.suppress(OSError):
            sock.setblocking(True)
    return arrived if waiting else None


_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux; the constant is missing on some builds
_TIMESPEC = struct.Struct("qq")
_STAMP_PLAUSIBLE_S = 60.0


def stamp_arrivals(sock: socket.socket) -> None:
    """Asks the kernel to stamp the socket's incoming packets (for ``kernel_arrival``)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)


def kernel_arrival(sock: socket.socket) -> float:
    """When the first unread byte of the socket reached the machine (time.monotonic()), from
    the kernel's receive timestamp; now when none is waiting or the kernel gives no stamp.

    Under load, a request waits in its socket until the worker's poller (or a lingering thread)
    gets the GIL back and reads it: stamped in Python, that wait was outside the budget (past
    capacity, the slow answers' median queue went from 18 to 182 ms with this stamp,
    BENCHMARKS.md). The kernel stamps each packet as it arrives (``stamp_arrivals``,
    SO_TIMESTAMPNS); peeking one byte returns the stamp without consuming it. A stamp from the
    future or over a minute old (the wall clock stepped) is ignored."""
    return _peek(sock, socket.MSG_DONTWAIT)[1]


def _peek(sock: socket.socket, flags: int) -> tuple[bool, float]:
    """Peeks at the socket's first unread byte (waiting as the socket's timeout and ``flags``
    say): whether one came, and when it reached the machine (now without a plausible stamp)."""
    try:
        data, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(_TIMESPEC.size), socket.MSG_PEEK | flags)
    except (OSError, AttributeError):   # nothing came (EAGAIN, timeout), closed, or not a TCP socket
        return False, time.monotonic()
    now, wall = time.monotonic(), time.time()
    for level, kind, stamp in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(stamp) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(stamp)
            waited = wall - (seconds + nanoseconds / 1e9)
            return bool(data), now - waited if 0.0 <= waited < _STAMP_PLAUSIBLE_S else now
    return bool(data), now


def reset_multiproc_dir() -> None:
    """Metric files of a previous run would be summed into this one: start empty. Call it
    before the first metric is created in the process."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class _Application(BaseApplication):
    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._factory()


def run(factory: Callable[[], Any], *, bind: str, workers: int, threads: int,
        timeout: int = 30, graceful_timeout: int = 10) -> None:
    _Application(factory, {
        "bind": bind, "workers": workers, "threads": threads, "worker_class": f"{__name__}.ArrivalStampingWorker",
        "timeout": timeout, "graceful_timeout": graceful_timeout, "keepalive": 5,
        "control_socket_disable": True, "child_exit": _child_exit, "accesslog": None,
        "worker_tmp_dir": os.environ.get("GUNICORN_TMP_DIR", "/tmp"),  # noqa: S108
        "max_requests": 0, "preload_app": False,
    }).run()
