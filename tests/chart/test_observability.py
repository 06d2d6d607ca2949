"""Monitoring and load-test resources embed the project's own files (one source of truth):
files/prometheus/alerts.yml, files/grafana/*.json and files/k6/*.js. Those files are written by
the observability and benchmark work; these tests require them to exist."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import chartlib as chart
import pytest
import yaml

ALERTS = chart.CHART / "files" / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((chart.CHART / "files" / "grafana").glob("*.json"))
K6_SCRIPTS = sorted((chart.CHART / "files" / "k6").glob("*.js"))


def test_the_shared_files_exist() -> None:
    assert ALERTS.is_file(), f"{ALERTS} is missing"
    assert DASHBOARDS, "no dashboard JSON in charts/valerix/files/grafana/"
    assert K6_SCRIPTS, "no k6 script in charts/valerix/files/k6/"


def test_monitoring_is_off_by_default_and_switchable() -> None:
    kinds = {d["kind"] for d in chart.render("values.yaml")}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert "valerix-dashboards" not in chart.of_kind(chart.render("values.yaml"), "ConfigMap")
    assert "Job" not in kinds


def test_prometheus_rule_groups_are_the_alerts_file() -> None:
    docs = chart.render("values.yaml", "monitoring.prometheusRule.enabled=true", "monitoring.release=kps",
                        "monitoring.assumeOperatorCRDs=true")
    rule = chart.one(docs, "PrometheusRule", "valerix")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_promtool_accepts_the_rendered_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/ci-deps installs the Debian package prometheus"
    rule = chart.one(chart.render_all("values.yaml"), "PrometheusRule", "valerix")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_service_monitor_scrapes_every_metrics_port_every_5s() -> None:
    docs = chart.render_all("values.yaml")
    monitor = chart.one(docs, "ServiceMonitor", "valerix")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = {n: s for n, s in chart.of_kind(docs, "Service").items()
               if selector.items() <= s["metadata"]["labels"].items()}
    assert set(scraped) == {"order-api", "order-worker", "inventory-api", "inventory-worker"}
    endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    for name, service in scraped.items():
        assert endpoint_ports & {p["name"] for p in service["spec"]["ports"]}, name
    assert {e["interval"] for e in monitor["spec"]["endpoints"]} == {"5s"}
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}


def test_dashboard_configmap_is_the_json_files() -> None:
    docs = chart.render("values.yaml", "monitoring.grafanaDashboards.enabled=true",
                        "monitoring.grafanaDashboards.namespace=monitoring")
    config = chart.one(docs, "ConfigMap", "valerix-dashboards")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["namespace"] == "monitoring"
    assert config["data"] == {p.name: p.read_text() for p in DASHBOARDS}
    for text in config["data"].values():
        json.loads(text)


def test_k6_configmap_holds_the_scripts() -> None:
    scripts = chart.one(chart.render("values.yaml"), "ConfigMap", "valerix-k6-scripts")
    assert scripts["data"] == {p.name: p.read_text() for p in K6_SCRIPTS}


def test_k6_job_runs_the_chosen_script_with_the_chosen_load() -> None:
    script = chart.K6_SCRIPTS[0]
    docs = chart.render("values.yaml", "k6.enabled=true", f"k6.script={script}", "k6.scenario=gremlin",
                        "k6.vus=7", "k6.rate=50", "k6.duration=15s", "k6.thresholds.p99Ms=150",
                        "k6.env.PRODUCTS=SKU-001")
    job = chart.one(docs, "Job", "k6-gremlin")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = job["spec"]["template"]["spec"]
    main = spec["containers"][0]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in main["volumeMounts"] if "configMap" in volumes[m["name"]])
    assert volumes[mount["name"]]["configMap"]["name"] == "valerix-k6-scripts"
    assert f"{mount['mountPath']}/{script}" == main["args"][-1]
    env = {k: v["value"] for k, v in chart.env_of(main).items()}
    assert env["SCENARIO"] == "gremlin" and env["VUS"] == "7" and env["DURATION"] == "15s"
    assert env["RATE"] == "50" and env["PRODUCTS"] == "SKU-001"
    assert env["THRESHOLDS"] == "on" and env["P99_MS"] == "150" and "MAX_MS" not in env
    assert env["BASE_URL"] == "http://order-api:3000"
    script_text = (chart.CHART / "files" / "k6" / script).read_text()
    for name in ("BASE_URL", "SCENARIO", "VUS", "RATE", "DURATION", "THRESHOLDS", "P99_MS"):
        assert name in script_text, f"the k6 script does not read {name}"
    assert job["spec"]["backoffLimit"] == 0  # a failed threshold is a failed run, not a retry


def test_k6_thresholds_can_be_switched_off() -> None:
    docs = chart.render("values.yaml", "k6.enabled=true", f"k6.script={chart.K6_SCRIPTS[0]}",
                        "k6.thresholds.enabled=false")
    env = chart.env_of(chart.one(docs, "Job", "k6-normal")["spec"]["template"]["spec"]["containers"][0])
    assert env["THRESHOLDS"]["value"] == "off"


def test_k6_job_refuses_a_missing_script() -> None:
    result = chart.helm("template", "x", str(chart.CHART), "--set", "k6.enabled=true",
                        "--set", "k6.script=nope.js", check=False)
    assert result.returncode != 0 and 'k6.script "nope.js" is not in files/k6/' in result.stderr


@pytest.mark.parametrize("hook", ["post-install,post-upgrade"])
def test_k6_can_run_after_each_deploy(hook: str) -> None:
    docs = chart.render("values.yaml", "k6.enabled=true", f"k6.script={chart.K6_SCRIPTS[0]}",
                        f"k6.hook={hook.replace(',', chr(92) + ',')}")
    assert chart.one(docs, "Job", "k6-normal")["metadata"]["annotations"]["helm.sh/hook"] == hook
