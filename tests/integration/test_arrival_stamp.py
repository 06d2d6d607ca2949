"""gunicorn's gthread worker queues a request behind busy threads before any handler runs;
the order API's 2 s budget counts from the arrival, so the worker stamps it (issue #13)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from valerix.kit.ports import free_port

TESTS = Path(__file__).resolve().parents[1]


@contextmanager
def queued_app(**env: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]), **env}
    server = subprocess.Popen([sys.executable, "-m", "support.queued_app", str(port)], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the gunicorn app did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_a_request_queued_behind_a_busy_thread_knows_when_it_arrived():
    with queued_app() as url, ThreadPoolExecutor(2) as clients:
        first = clients.submit(httpx.get, url, timeout=10)
        time.sleep(0.2)
        second = clients.submit(httpx.get, url, timeout=10)
        queued = sorted(f.result().json()["queued"] for f in (first, second))
    assert queued[0] < 0.5
    assert 0.6 < queued[1] < 2.0  # it waited for the one thread, about 0.8 s


def test_the_next_request_on_a_kept_connection_is_stamped_when_it_arrives():
    """The thread that answered keeps the connection for its next request (the linger, long
    here so the test does not depend on timing): that request's arrival is when its bytes
    came, not when the connection first queued."""
    with queued_app(KEEPALIVE_LINGER_MS="3000", THREADS="2") as url, httpx.Client(timeout=10) as client:
        first = client.get(url).json()
        time.sleep(0.3)
        second = client.get(url).json()
    assert first["client_port"] == second["client_port"]  # the same kept-alive connection
    assert second["queued"] < 0.2


def test_lingering_threads_leave_the_rest_free_for_new_connections():
    """A thread lingers only while a quarter of the threads (at least one) stays free: of two,
    one lingers on its kept-alive connection and the other goes back to the pool, so a new
    connection does not wait out a linger (3 s here) for a thread."""
    with queued_app(KEEPALIVE_LINGER_MS="3000", THREADS="2") as url, \
            httpx.Client(timeout=10) as a, httpx.Client(timeout=10) as b:
        a.get(url)            # its thread lingers on a's connection
        b.get(url)            # the second thread answers b and does not linger
        started = time.monotonic()
        newcomer = httpx.get(url, timeout=10).json()
    assert newcomer["queued"] < 0.5 and time.monotonic() - started < 2.0
