"""gunicorn's gthread worker queues a request behind busy threads before any handler runs;
the order API's 2 s budget counts from the arrival, so the worker stamps it (issue #13)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from valerix.kit.ports import free_port

TESTS = Path(__file__).resolve().parents[1]


def test_a_request_queued_behind_a_busy_thread_knows_when_it_arrived():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
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
        with ThreadPoolExecutor(2) as clients:
            first = clients.submit(httpx.get, f"http://127.0.0.1:{port}/", timeout=10)
            time.sleep(0.2)
            second = clients.submit(httpx.get, f"http://127.0.0.1:{port}/", timeout=10)
            queued = sorted(f.result().json()["queued"] for f in (first, second))
        assert queued[0] < 0.5
        assert 0.6 < queued[1] < 2.0  # it waited for the one thread, about 0.8 s
    finally:
        server.terminate()
        server.wait(timeout=15)
