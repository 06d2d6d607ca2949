"""Issue 6's end-to-end proof: with Gremlin on and a steady trickle of orders, the response-time
alert goes firing in a real Prometheus within 45 s and back to inactive once Gremlin is off;
the order service's GET /api/alerts shows the same light.

Uses the session `stack` fixture (tests/e2e/conftest.py: every process under supervisor).
The stack's PROMETHEUS_URL port gets a Prometheus with the real rules file, unless the stack
already runs one there."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from valerix.chaos import switches
from valerix.kit.ports import is_free
from valerix.local import prometheus
from valerix.local.stack import Stack
from valerix.order.alerts import AlertsClient, alerts_view

from support import auth
from support.prometheus import NOT_INSTALLED, running
from support.traffic import Trickle, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(prometheus.find_prometheus() is None, reason=NOT_INSTALLED)]

FIRE_WITHIN_S = 45.0
ORDER_EVERY_S = 0.5
JOBS = ("order-api", "order-worker", "inventory-api", "inventory-worker")


def targets(stack: Stack) -> dict[str, list[str]]:
    p = stack.config.ports
    ports = {"order-api": p.order_api, "order-worker": p.order_worker_metrics,
             "inventory-api": p.inventory_http, "inventory-worker": p.inventory_worker_metrics}
    return {job: [f"127.0.0.1:{port}"] for job, port in ports.items()}


@pytest.fixture(scope="module")
def prometheus_url(stack: Stack) -> Iterator[str]:
    port = stack.config.ports.prometheus
    url = f"http://127.0.0.1:{port}"
    if not is_free(port):  # the stack started its own, from the same rules file
        yield url
        return
    home = stack.home / "e2e-prometheus"
    try:
        with running(home, targets(stack), port, stack.home / "log" / "e2e-prometheus.log") as url:
            yield url
    finally:
        shutil.rmtree(home, ignore_errors=True)


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


def api_light(stack: Stack) -> str:
    """The light as the storefront sees it: GET /api/alerts on the order service."""
    view = httpx.get(f"{stack.order_url}/api/alerts", timeout=5).json()
    assert view["available"] is True, view
    return str(view["alerts"]["responseTime"]["state"])


def test_gremlin_fires_the_response_time_alert_and_clearing_it_turns_it_off(stack: Stack,
                                                                            prometheus_url: str) -> None:
    chaos_dir = stack.home / "chaos"
    client = AlertsClient(prometheus_url, timeout=1.0, cache_seconds=0)
    wait_for(lambda: all_targets_up(prometheus_url), 30)  # every process's /metrics is scrapeable
    try:
        with Trickle(stack.order_url, {"productId": "SKU-007", "quantity": 1}, every=ORDER_EVERY_S,
                     headers=auth.session(stack.order_url)) as trickle:
            wait_for(lambda: response_light(client) == "green", 45)  # no slow requests from earlier tests
            switches.write_local(chaos_dir, switches.gremlin_values(True, None, 1500, 2500, None))
            fired = wait_for(lambda: response_light(client) == "red", FIRE_WITHIN_S)
            wait_for(lambda: api_light(stack) == "red", 5)  # the order API caches Prometheus for ~2 s
            switches.write_local(chaos_dir, switches.OFF_VALUES)
            cleared = wait_for(lambda: response_light(client) == "green", 60)
            wait_for(lambda: api_light(stack) == "green", 5)
        print(f"firing {fired:.1f}s after Gremlin on, inactive {cleared:.1f}s after off, {trickle.statuses}")
        assert not [status for status in trickle.statuses if status == 0 or status >= 500], trickle.statuses
    finally:
        switches.write_local(chaos_dir, switches.OFF_VALUES)
        client.close()
