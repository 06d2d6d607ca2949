"""A real Prometheus (Debian's binary) with the real rules file scrapes a real order-style API
(the kit web app under gunicorn, two workers, multiprocess metrics) whose latency the test
controls; AlertsClient reads the outcome from Prometheus's API."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from valerix.kit.ports import free_port, wait_listening
from valerix.local import prometheus
from valerix.order.alerts import AlertsClient, alerts_view

from support import slow_order_api
from support.prometheus import NOT_INSTALLED, running, stop
from support.traffic import Trickle, wait_for

needs_prometheus = pytest.mark.skipif(prometheus.find_prometheus() is None, reason=NOT_INSTALLED)
FAST, SLOW = 0.02, 2.0


@dataclass
class OrderApi:
    port: int
    latency_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def latency(self, seconds: float) -> None:
        self.latency_file.write_text(str(seconds))


@dataclass
class RunningPrometheus:
    url: str
    log: Path


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="valerix-prom-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def order_api(workdir: Path) -> Iterator[OrderApi]:
    api = OrderApi(free_port(), workdir / "latency")
    api.latency(FAST)
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(workdir / "multiproc"), "GUNICORN_TMP_DIR": str(workdir)}
    with (workdir / "order-api.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, slow_order_api.__file__, str(api.port), str(api.latency_file)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(api.port, timeout=30)
        yield api
    finally:
        stop(process)


@pytest.fixture
def worker_metrics() -> Iterator[Any]:
    """A worker-style /metrics endpoint that the test can take away."""
    registry = CollectorRegistry()
    Gauge("valerix_outbox_backlog", "Outbox rows not yet published", ["service"], registry=registry).labels("order")
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    server.port = port  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def running_prometheus(workdir: Path, order_api: OrderApi, worker_metrics: Any) -> Iterator[RunningPrometheus]:
    targets = {"order-api": [f"127.0.0.1:{order_api.port}"], "order-worker": [f"127.0.0.1:{worker_metrics.port}"]}
    log = workdir / "prometheus.log"
    with running(workdir, targets, free_port(), log) as url:
        yield RunningPrometheus(url, log)


def light(client: AlertsClient, name: str) -> str:
    view: dict[str, Any] = alerts_view(client)
    assert view["available"] is True, view
    return str(view["alerts"][name]["state"])


@needs_prometheus
def test_slow_average_fires_within_45s_and_clears(running_prometheus: RunningPrometheus, order_api: OrderApi,
                                                   worker_metrics: Any, workdir: Path) -> None:
    client = AlertsClient(running_prometheus.url, timeout=1.0, cache_seconds=0)
    try:
        with Trickle(order_api.url, {"productId": "SKU-001", "quantity": 1}, every=0.2) as trickle:
            time.sleep(6)  # a scrape or two of fast traffic
            view = alerts_view(client)
            assert view["available"] is True and view["status"] == "green", view

            order_api.latency(SLOW)
            fired_after = wait_for(lambda: light(client, "responseTime") == "red", 45)
            view = alerts_view(client)
            assert view["status"] == "red" and view["alerts"]["errorRate"]["state"] == "green", view
            assert re.fullmatch(r"Order service average response time [\d.]+s > 1s over 30s",
                                view["alerts"]["responseTime"]["summary"]), view

            # Fast again, and meanwhile a scrape target disappears: the lights move independently.
            order_api.latency(FAST)
            worker_metrics.shutdown()
            worker_metrics.server_close()
            cleared_after = wait_for(lambda: light(client, "responseTime") == "green", 60)
            wait_for(lambda: light(client, "dependencies") == "red", 30)
        print(f"\nOrderServiceSlowResponses firing {fired_after:.1f}s after requests went to {SLOW}s, "
              f"inactive {cleared_after:.1f}s after they went back to {FAST}s; answers {dict(trickle.statuses)}")
        view = alerts_view(client)
        assert view["alerts"]["responseTime"]["state"] == "green", view
        assert "order-worker" in view["alerts"]["dependencies"]["summary"], view
        assert set(trickle.statuses) == {201}, trickle.statuses
    except AssertionError:
        for log in (running_prometheus.log, workdir / "order-api.log"):
            print(log.read_text(errors="replace")[-3000:])
        raise
    finally:
        client.close()


def test_absent_prometheus_is_reported_unavailable_quickly() -> None:
    client = AlertsClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    start = time.monotonic()
    view = alerts_view(client)
    assert time.monotonic() - start < 1.5
    assert view["available"] is False and view["status"] == "unknown"
    assert {light["state"] for light in view["alerts"].values()} == {"unknown"}


def test_hung_prometheus_times_out_and_is_cached() -> None:
    with socket.socket() as hung:  # accepts connections (backlog) but never answers
        hung.bind(("127.0.0.1", free_port()))
        hung.listen(8)
        client = AlertsClient(f"http://127.0.0.1:{hung.getsockname()[1]}", timeout=0.5, cache_seconds=30)
        start = time.monotonic()
        assert alerts_view(client)["available"] is False
        assert time.monotonic() - start < 2.0
        start = time.monotonic()
        assert alerts_view(client)["available"] is False
        assert time.monotonic() - start < 0.05  # served from the cache, no second timeout
        client.close()


@pytest.mark.parametrize("body", [b"not json", b'{"status": "error", "error": "boom"}',
                                  b'{"status": "success", "data": [1, 2]}', b"[]"])
def test_a_strange_answer_is_unavailable_not_an_error(body: bytes) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        view = alerts_view(AlertsClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=1))
        assert view["available"] is False and view["status"] == "unknown", view
    finally:
        server.shutdown()
        server.server_close()


def test_no_prometheus_url() -> None:
    view = alerts_view(None)
    assert view["available"] is False and "PROMETHEUS_URL" in view["reason"]
