"""The pure mapping from Prometheus's rules API to the storefront's alert lights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from valerix.order.alerts import LIGHTS, summarize

RULES_FILE = Path(__file__).resolve().parents[2] / "charts/valerix/files/prometheus/alerts.yml"


def rule(name: str, state: str = "inactive", *alerts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "alerting", "name": name, "state": state, "query": "x > 1", "duration": 0,
            "labels": {"severity": "critical"}, "annotations": {}, "alerts": list(alerts),
            "health": "ok", "lastEvaluation": "2026-11-27T04:00:00Z", "evaluationTime": 0.001}


def active(state: str, at: str, summary: str) -> dict[str, Any]:
    return {"labels": {"alertname": "x"}, "annotations": {"summary": summary}, "state": state,
            "activeAt": at, "value": "2e+00"}


def payload(*rules: dict[str, Any]) -> dict[str, Any]:
    recording = {"type": "recording", "name": "job:x:rate30s", "query": "rate(x[30s])", "health": "ok"}
    return {"status": "success", "data": {"groups": [
        {"name": "valerix-order-slo", "file": "alerts.yml", "interval": 5, "rules": [*rules[:2], recording]},
        {"name": "valerix-health", "file": "alerts.yml", "interval": 5, "rules": list(rules[2:])},
    ]}}


ALL_QUIET = [rule("OrderServiceSlowResponses"), rule("OrderServiceHighErrorRate"),
             rule("DependencyUnhealthy"), rule("ServiceDown")]


def states(view: dict[str, Any]) -> dict[str, str]:
    return {name: light["state"] for name, light in view["alerts"].items()}


def test_all_inactive_is_green() -> None:
    view = summarize(payload(*ALL_QUIET))
    assert view["available"] is True and view["status"] == "green"
    assert states(view) == {"responseTime": "green", "errorRate": "green", "dependencies": "green"}


def test_firing_is_red_with_its_summary_and_start() -> None:
    summary = "Order service average response time 2s > 1s over 30s"
    slow = rule("OrderServiceSlowResponses", "firing", active("firing", "2026-11-27T04:00:05Z", summary))
    view = summarize(payload(slow, *ALL_QUIET[1:]))
    assert view["status"] == "red"
    assert view["alerts"]["responseTime"] == {
        "state": "red", "since": "2026-11-27T04:00:05Z",
        "summary": summary}
    assert states(view)["errorRate"] == "green"


def test_pending_is_amber() -> None:
    pending = rule("DependencyUnhealthy", "pending",
                   active("pending", "2026-11-27T04:00:00Z", "order cannot reach database"))
    view = summarize(payload(*ALL_QUIET[:2], pending, ALL_QUIET[3]))
    assert states(view)["dependencies"] == "amber" and view["status"] == "amber"


def test_dependencies_light_is_the_worst_of_its_alerts_and_prefers_the_firing_one() -> None:
    pending = rule("DependencyUnhealthy", "pending", active("pending", "2026-11-27T04:00:00Z", "pending one"))
    down = rule("ServiceDown", "firing", active("firing", "2026-11-27T04:00:10Z", "order-worker is down"))
    view = summarize(payload(*ALL_QUIET[:2], pending, down))
    assert view["alerts"]["dependencies"]["state"] == "red"
    assert view["alerts"]["dependencies"]["summary"] == "order-worker is down"


def test_other_alerts_do_not_light_the_storefront() -> None:
    dead = rule("DeadLetters", "firing", active("firing", "2026-11-27T04:00:00Z", "3 dead letters"))
    view = summarize(payload(*ALL_QUIET, dead))
    assert view["status"] == "green"


def test_a_rule_prometheus_does_not_know_is_unknown() -> None:
    view = summarize(payload(*ALL_QUIET[:3]))
    assert states(view)["dependencies"] == "green"  # ServiceDown missing, DependencyUnhealthy known
    view = summarize(payload(ALL_QUIET[0], ALL_QUIET[1]))
    assert states(view)["dependencies"] == "unknown" and view["status"] == "unknown"


def test_empty_answer_is_all_unknown() -> None:
    view = summarize({"status": "success", "data": {"groups": []}})
    assert set(states(view).values()) == {"unknown"}


def test_lights_name_alerts_that_exist_in_the_rules_file() -> None:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    defined = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert {name for names in LIGHTS.values() for name in names} <= defined
