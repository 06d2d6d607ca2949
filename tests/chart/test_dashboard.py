"""The Grafana dashboard: the committed JSON is what the code generates, every query parses
(promtool) and names metrics that some process actually exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from valerix.observability import dashboard
from valerix.order.alerts import LIGHTS

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "charts/valerix/files/grafana/valerix-overview.json"
RULES = ROOT / "charts/valerix/files/prometheus/alerts.yml"
REGENERATE = f".venv/bin/python -m valerix.observability.dashboard --output {COMMITTED.relative_to(ROOT)}"
PROMETHEUS_BUILTINS = {"up", "ALERTS", "ALERTS_FOR_STATE"}
SERIES = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*(?:\{|\[)|\b(valerix_[a-z0-9_]+)\b")
DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary|GaugeMetricFamily)\(\s*\"(valerix_[a-z0-9_]+)\"")


def exprs(document: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in document["panels"] for target in panel.get("targets", [])]


def exported_series() -> set[str]:
    """Every series name the code base can export, from the metric definitions in services/."""
    names = set(PROMETHEUS_BUILTINS)
    for path in (ROOT / "services/valerix").rglob("*.py"):
        if "observability" in path.parts:
            continue
        for kind, name in DEFINITION.findall(path.read_text(encoding="utf-8")):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names |= {name, base + "_total"} if kind == "Counter" else {name}
            if kind in ("Histogram", "Summary"):
                names |= {f"{name}_sum", f"{name}_count", f"{name}_bucket"}
    return names


def referenced_series(expr: str) -> set[str]:
    functions = {"sum", "rate", "max", "min", "count", "increase", "histogram_quantile", "vector", "by"}
    return {a or b for a, b in SERIES.findall(expr)} - functions


def test_committed_json_is_regenerated() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == dashboard.render(), f"stale: run `{REGENERATE}`"


def test_dashboard_is_valid_json_for_the_grafana_sidecar() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    model = Dashboard.from_json(document)  # Grafana's schema, as the SDK types it: a lossless round trip
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == document
    assert document["uid"] == "valerix-overview" and document["title"] == "Valerix overview"
    assert document["schemaVersion"] >= 39
    ids = [panel["id"] for panel in document["panels"] if "id" in panel]
    assert len(ids) == len(set(ids))
    for panel in document["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]


def test_required_panels_are_present() -> None:
    titles = {panel["title"] for panel in dashboard.build()["panels"]}
    assert {"Alerts", "Orders by status", "Order API response time", "Order API 5xx share", "Stock levels",
            "Pending verification backlog", "Outbox publish lag", "Outbox backlog", "Dead letters",
            "Gremlin delays injected", "Schrödinger faults injected"} <= titles


def panel(title: str) -> dict[str, Any]:
    return next(p for p in dashboard.build()["panels"] if p["title"] == title)


def test_response_time_panel_has_average_p95_and_the_1s_line() -> None:
    response = panel("Order API response time")
    queries = [target["expr"] for target in response["targets"]]
    alert_expr = next(r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
                      if r.get("alert") == "OrderServiceSlowResponses")
    assert "[30s]" in queries[0] and "_sum" in queries[0] and "histogram_quantile(0.95" in queries[1]
    assert re.search(r">\s*1\s*$", alert_expr) and dashboard.SLOW_SECONDS == 1.0
    steps = response["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == dashboard.SLOW_SECONDS
    assert response["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] in {"line", "dashed"}


def test_alert_panel_covers_every_storefront_alert() -> None:
    queries = " ".join(target["expr"] for target in panel("Alerts")["targets"])
    for names in LIGHTS.values():
        for name in names:
            assert name in queries


def test_queries_name_only_exported_metrics() -> None:
    known = exported_series()
    rules = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    unknown = {name for expr in exprs(dashboard.build()) + rules for name in referenced_series(expr)} - known
    assert not unknown, f"no process exports {sorted(unknown)}"


def test_metric_name_check_can_fail() -> None:
    assert referenced_series('sum(rate(valerix_typo_seconds_count{service="order"}[1m]))') == {
        "valerix_typo_seconds_count"}
    assert "valerix_typo_seconds_count" not in exported_series()


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian package `prometheus`; scripts/ci-deps has it)")
def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses each dashboard query as a recording rule."""
    queries = exprs(dashboard.build())
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{index}", "expr": expr} for index, expr in enumerate(queries)]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian package `prometheus`; scripts/ci-deps has it)")
def test_alert_light_queries_give_0_ok_1_pending_2_firing(tmp_path: Path) -> None:
    """Evaluates the Alerts panel's queries in promtool against ALERTS series: the slow-response
    alert firing, a dependency alert pending, the error-rate alert absent."""
    queries = {target["legendFormat"]: target["expr"] for target in panel("Alerts")["targets"]}
    series = [
        'ALERTS{alertname="OrderServiceSlowResponses",alertstate="firing",severity="critical"}',
        'ALERTS{alertname="DependencyUnhealthy",alertstate="pending",service="order",dependency="database"}',
    ]
    expected = {"Response time": 2, "Error rate": 0, "Dependencies": 1}
    (tmp_path / "empty.yml").write_text("groups: []\n")
    test = {"rule_files": ["empty.yml"], "evaluation_interval": "5s", "tests": [{
        "interval": "5s",
        "input_series": [{"series": s, "values": "1x10"} for s in series],
        "promql_expr_test": [{"expr": queries[legend], "eval_time": "30s",
                              "exp_samples": [{"labels": "{}", "value": value}]}
                             for legend, value in expected.items()],
    }]}
    (tmp_path / "lights_test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(["promtool", "test", "rules", str(tmp_path / "lights_test.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
