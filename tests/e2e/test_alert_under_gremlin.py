"""Issue 6's end-to-end proof: with Gremlin on and a steady trickle of orders, the response-time
alert goes firing in a real Prometheus within 45 s and back to inactive once Gremlin is off;
the order service's GET /api/alerts shows the same light.

Uses the session `stack` fixture (tests/e2e/conftest.py: every process under supervisor).
The stack's PROMETHEUS_URL port gets a Prometheus with the real rules file, unless the stack
already runs one there."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from valerix.kit.ports import is_free, wait_listening
from valerix.local import prometheus
from valerix.order.alerts import AlertsClient, alerts_view

NO_PROMETHEUS = "prometheus is not installed (Debian package `prometheus`; scripts/ci-deps has it)"
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(prometheus.find_prometheus() is None, reason=NO_PROMETHEUS)]
stack_module = pytest.importorskip(
    "valerix.local.stack", reason="the local stack (valerix.local.stack) is not on this branch yet")
chaos_cli = pytest.importorskip("valerix.chaos_cli", reason="`valerix chaos` is not on this branch yet")

FIRE_WITHIN_S = 45.0
ORDER_EVERY_S = 0.5
JOBS = ("order-api", "order-worker", "inventory-api", "inventory-worker")


def targets(stack: Any) -> dict[str, list[str]]:
    p = stack.config.ports
    ports = {"order-api": p.order_api, "order-worker": p.order_worker_metrics,
             "inventory-api": p.inventory_http, "inventory-worker": p.inventory_worker_metrics}
    return {job: [f"127.0.0.1:{port}"] for job, port in ports.items()}


@pytest.fixture(scope="module")
def prometheus_url(stack: Any) -> Iterator[str]:
    port = stack.config.ports.prometheus
    url = f"http://127.0.0.1:{port}"
    if not is_free(port):  # the stack started its own, from the same rules file
        yield url
        return
    home = stack.home / "e2e-prometheus"
    argv = prometheus.prepare(home, targets(stack), listen=f"127.0.0.1:{port}")
    assert argv is not None
    with (stack.home / "log" / "e2e-prometheus.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, timeout=30)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(home, ignore_errors=True)


class Trickle:
    """One POST /api/orders every ORDER_EVERY_S seconds, whatever each takes (so the request
    rate stays steady when Gremlin makes them slow)."""

    def __init__(self, order_url: str) -> None:
        self.order_url = order_url
        self.statuses: Counter[int] = Counter()
        self.stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=12, thread_name_prefix="trickle")
        self._http = httpx.Client(timeout=15)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._http.close()

    def _run(self) -> None:
        while not self.stop.wait(ORDER_EVERY_S):
            self._pool.submit(self._order)

    def _order(self) -> None:
        try:
            response = self._http.post(f"{self.order_url}/api/orders",
                                       json={"productId": "SKU-007", "quantity": 1})
            self.statuses[response.status_code] += 1
        except httpx.HTTPError:
            self.statuses[0] += 1


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout}s")


def all_targets_up(url: str) -> bool:
    try:
        result = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=2).json()["data"]["result"]
    except (httpx.HTTPError, KeyError, ValueError):
        return False
    up = {series["metric"]["job"]: series["value"][1] for series in result}
    return all(up.get(job) == "1" for job in JOBS)


def response_light(client: AlertsClient) -> str:
    view: dict[str, Any] = alerts_view(client)
    return str(view["alerts"]["responseTime"]["state"]) if view["available"] else "unavailable"


def test_gremlin_fires_the_response_time_alert_and_clearing_it_turns_it_off(stack: Any,
                                                                            prometheus_url: str) -> None:
    chaos_dir = stack.home / "chaos"
    client = AlertsClient(prometheus_url, timeout=1.0, cache_seconds=0)
    wait_for(lambda: all_targets_up(prometheus_url), 30)  # every process's /metrics is scrapeable
    try:
        with Trickle(stack.order_url) as trickle:
            time.sleep(10)
            assert response_light(client) == "green"
            chaos_cli.write_local(chaos_dir, chaos_cli.gremlin_values(True, None, 1500, 2500, None))
            fired = wait_for(lambda: response_light(client) == "red", FIRE_WITHIN_S)
            api_view = httpx.get(f"{stack.order_url}/api/alerts", timeout=5).json()
            assert api_view["available"] is True and api_view["alerts"]["responseTime"]["state"] == "red"
            chaos_cli.write_local(chaos_dir, chaos_cli.OFF_VALUES)
            cleared = wait_for(lambda: response_light(client) == "green", 60)
        print(f"firing {fired:.1f}s after Gremlin on, inactive {cleared:.1f}s after off, {trickle.statuses}")
        assert not [status for status in trickle.statuses if status == 0 or status >= 500], trickle.statuses
        api_view = httpx.get(f"{stack.order_url}/api/alerts", timeout=5).json()
        assert api_view["alerts"]["responseTime"]["state"] == "green", api_view
    finally:
        chaos_cli.write_local(chaos_dir, chaos_cli.OFF_VALUES)
        client.close()
