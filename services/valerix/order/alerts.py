"""The storefront's alert light: the state of the three order-service alerts, read from
Prometheus's rules API and mapped to green / amber / red.

States: a rule that is `inactive` is green, `pending` (condition true, its `for:` not yet
elapsed) is amber, `firing` is red; a rule Prometheus does not know is `unknown`. When
Prometheus is not configured or not reachable the answer says `available: false` and every
light is `unknown` — the storefront keeps working. Answers are cached for a couple of
seconds so a page full of pollers costs Prometheus one request per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)

# light -> the alerts (names in charts/valerix/files/prometheus/alerts.yml) that drive it
LIGHTS: dict[str, tuple[str, ...]] = {
    "responseTime": ("OrderServiceSlowResponses",),
    "errorRate": ("OrderServiceHighErrorRate",),
    "dependencies": ("DependencyUnhealthy", "ServiceDown"),
}
RULE_STATE_TO_LIGHT = {"inactive": "green", "pending": "amber", "firing": "red"}
SEVERITY = ("green", "unknown", "amber", "red")  # later is worse


def _worst(states: Iterable[str]) -> str:
    return max(states, key=SEVERITY.index, default="unknown")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _alerting_rules(rules_payload: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    found: dict[str, list[Mapping[str, Any]]] = {}
    for group in rules_payload.get("data", {}).get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("type") == "alerting":
                found.setdefault(rule["name"], []).append(rule)
    return found


def _light(rules: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not rules:
        return {"state": "unknown", "since": None, "summary": None}
    active = [alert for rule in rules for alert in rule.get("alerts", [])
              if alert.get("state") in ("pending", "firing")]
    active.sort(key=lambda a: (a.get("state") != "firing", a.get("activeAt", "")))
    state = _worst(RULE_STATE_TO_LIGHT.get(rule.get("state", ""), "unknown") for rule in rules)
    first = active[0] if active else {}
    return {"state": state, "since": first.get("activeAt"),
            "summary": first.get("annotations", {}).get("summary")}


def summarize(rules_payload: Mapping[str, Any]) -> dict[str, Any]:
    """Pure mapping of a /api/v1/rules?type=alert answer to the lights."""
    by_name = _alerting_rules(rules_payload)
    lights = {light: _light([rule for name in names for rule in by_name.get(name, [])])
              for light, names in LIGHTS.items()}
    return {"available": True, "status": _worst(light["state"] for light in lights.values()),
            "alerts": lights, "checkedAt": _now()}


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "status": "unknown", "reason": reason,
            "alerts": {light: {"state": "unknown", "since": None, "summary": None} for light in LIGHTS},
            "checkedAt": _now()}


class AlertsClient:
    """Reads the alert lights from Prometheus. Thread-safe; never raises."""

    def __init__(self, prometheus_url: str, timeout: float = 0.5, cache_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = prometheus_url.rstrip("/")
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._http: httpx.Client | None = None  # created lazily: after gunicorn forks

    def status(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds:
                self._cached = (now, self._fetch())
            return self._cached[1]

    def _fetch(self) -> dict[str, Any]:
        # The rules API, not /api/v1/alerts: only it tells "inactive" from "not configured".
        try:
            if self._http is None:
                self._http = httpx.Client(timeout=self.timeout)
            response = self._http.get(f"{self.url}/api/v1/rules", params={"type": "alert"})
            response.raise_for_status()
            payload = response.json()
        except (httpx.HTTPError, ValueError) as error:
            log.warning("prometheus unreachable", extra={"url": self.url, "error": repr(error)})
            return unavailable("Prometheus is not reachable")
        if not isinstance(payload, dict) or payload.get("status") != "success":
            log.warning("prometheus answered an error", extra={"url": self.url})
            return unavailable("Prometheus answered with an error")
        try:
            return summarize(payload)
        except (AttributeError, KeyError, TypeError):
            log.warning("prometheus answered an unexpected shape", extra={"url": self.url})
            return unavailable("Prometheus answered something unexpected")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def alerts_view(client: AlertsClient | None) -> dict[str, Any]:
    """The body of GET /api/alerts (always 200; `available` says whether Prometheus answered)."""
    if client is None:
        return unavailable("PROMETHEUS_URL is not set")
    return client.status()
