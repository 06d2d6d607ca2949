"""A real Prometheus (Debian's binary) with the real rules file scrapes a tiny real HTTP server
whose latency the test controls; AlertsClient reads the outcome from Prometheus's API."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from valerix.kit.metrics import LATENCY_BUCKETS
from valerix.kit.ports import free_port, wait_listening
from valerix.local import prometheus
from valerix.order.alerts import AlertsClient, alerts_view

pytestmark = pytest.mark.skipif(
    prometheus.find_prometheus() is None,
    reason="prometheus is not installed (Debian package `prometheus`; scripts/ci-deps installs it)")


@dataclass
class FakeOrderApi:
    """Serves /metrics like the order API, observing a steady stream of requests (every 0.1 s)
    at `latency` seconds, plus slow /health probes that the alert must ignore."""

    latency: float = 0.05
    port: int = field(default_factory=free_port)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.histogram = Histogram("valerix_http_request_duration_seconds", "HTTP request duration",
                                   ["service", "method", "route", "status"], buckets=LATENCY_BUCKETS,
                                   registry=self.registry)
        self.server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.traffic = threading.Thread(target=self._run, daemon=True)
        self.traffic.start()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self.histogram.labels("order", "POST", "/api/orders", "201").observe(self.latency)
            self.histogram.labels("order", "GET", "/health", "200").observe(5.0)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class RunningPrometheus:
    url: str
    log: Path
    process: subprocess.Popen[bytes]


@pytest.fixture
def order_api() -> Iterator[FakeOrderApi]:
    api = FakeOrderApi()
    yield api
    api.close()


@pytest.fixture
def worker_metrics() -> Iterator[FakeOrderApi]:
    api = FakeOrderApi()
    yield api
    api.close()


@pytest.fixture
def running_prometheus(order_api: FakeOrderApi, worker_metrics: FakeOrderApi) -> Iterator[RunningPrometheus]:
    home = Path(tempfile.mkdtemp(prefix="valerix-prom-"))
    port = free_port()
    argv = prometheus.prepare(home, {"order-api": [f"127.0.0.1:{order_api.port}"],
                                     "order-worker": [f"127.0.0.1:{worker_metrics.port}"]},
                              listen=f"127.0.0.1:{port}")
    assert argv is not None
    log = home / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, timeout=30)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 30)
        yield RunningPrometheus(url, log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(home, ignore_errors=True)


def wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.5) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if condition():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def light(client: AlertsClient, name: str) -> str:
    view: dict[str, Any] = alerts_view(client)
    assert view["available"] is True, view
    return str(view["alerts"][name]["state"])


def test_slow_average_fires_within_45s_and_clears(running_prometheus: RunningPrometheus,
                                                   order_api: FakeOrderApi,
                                                   worker_metrics: FakeOrderApi) -> None:
    client = AlertsClient(running_prometheus.url, timeout=1.0, cache_seconds=0)
    try:
        view = alerts_view(client)
        assert view["available"] is True and view["status"] == "green", view

        order_api.latency = 2.0
        fired_after = wait_for(lambda: light(client, "responseTime") == "red", 45)
        view = alerts_view(client)
        assert view["status"] == "red" and view["alerts"]["errorRate"]["state"] == "green", view
        assert re.fullmatch(r"Order service average response time [\d.]+s > 1s over 30s",
                            view["alerts"]["responseTime"]["summary"]), view
        print(f"OrderServiceSlowResponses firing {fired_after:.1f}s after the latency went to 2 s")

        # Fast again, and meanwhile a scrape target disappears: the lights move independently.
        order_api.latency = 0.05
        worker_metrics.close()
        cleared_after = wait_for(lambda: light(client, "responseTime") == "green", 60)
        print(f"OrderServiceSlowResponses inactive {cleared_after:.1f}s after the latency went to 0.05 s")
        wait_for(lambda: light(client, "dependencies") == "red", 30)
        view = alerts_view(client)
        assert view["alerts"]["responseTime"]["state"] == "green", view
        assert "order-worker" in view["alerts"]["dependencies"]["summary"], view
    except AssertionError:
        print(running_prometheus.log.read_text())
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
        first = time.monotonic() - start
        assert first < 2.0
        start = time.monotonic()
        assert alerts_view(client)["available"] is False
        assert time.monotonic() - start < 0.05  # served from the cache, no second timeout
        client.close()


def test_no_prometheus_url() -> None:
    view = alerts_view(None)
    assert view["available"] is False and "PROMETHEUS_URL" in view["reason"]
