"""What makes an install work first time on a real cluster: Prometheus Operator objects only where
the cluster serves their API, a working Prometheus address for the storefront, no dead backup
default, and the Azure Service Bus entities created by a hook Job that alone holds Manage rights."""

from __future__ import annotations

import chartlib as chart
import pytest
import yaml

OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
IN_CLUSTER_PROMETHEUS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
AZURE = ("bus.backend=azure", "bus.azure.existingSecret=sb-send-listen",
         "bus.azure.provision.existingSecret=sb-manage", "networkPolicy.external.serviceBus.cidrs={10.0.2.0/24}")


def render(values_file: str, *sets: str, api_versions: tuple[str, ...] = ()) -> list[chart.Doc]:
    args = ["template", chart.RELEASE, str(chart.CHART), "--namespace", chart.NAMESPACE,
            "-f", str(chart.CHART / values_file)]
    for item in sets:
        args += ["--set", item]
    for version in api_versions:
        args += ["--api-versions", version]
    return [d for d in yaml.safe_load_all(chart.helm(*args).stdout) if d]


def kinds(docs: list[chart.Doc]) -> set[str]:
    return {d["kind"] for d in docs}


def order_api_env(docs: list[chart.Doc]) -> dict[str, chart.Doc]:
    container = chart.pod_spec(chart.one(docs, "Deployment", "order-api"))["containers"][0]  # type: ignore[index]
    return chart.env_of(container)


# --- Prometheus Operator objects ----------------------------------------------------------------

def test_aks_values_without_the_operator_api_render_no_operator_kinds() -> None:
    docs = render("values-aks.yaml")
    assert not kinds(docs) & OPERATOR_KINDS
    assert "PROMETHEUS_URL" not in order_api_env(docs)  # no rules installed, so no light to ask for


def test_aks_values_with_the_operator_api_render_monitor_and_rules() -> None:
    docs = render("values-aks.yaml", api_versions=("monitoring.coreos.com/v1",))
    assert kinds(docs) >= OPERATOR_KINDS
    assert order_api_env(docs)["PROMETHEUS_URL"]["value"] == IN_CLUSTER_PROMETHEUS


def test_an_unrelated_api_version_is_not_the_operator() -> None:
    assert not kinds(render("values-aks.yaml", api_versions=("monitoring.coreos.com/v1alpha1",))) & OPERATOR_KINDS


def test_a_value_forces_them_for_offline_rendering() -> None:
    docs = render("values-aks.yaml", "monitoring.assumeOperatorCRDs=true")
    assert kinds(docs) >= OPERATOR_KINDS


def test_disabled_objects_stay_off_even_where_the_operator_runs() -> None:
    docs = render("values.yaml", api_versions=("monitoring.coreos.com/v1",))
    assert not kinds(docs) & OPERATOR_KINDS
    assert "PROMETHEUS_URL" not in order_api_env(docs)


# --- the storefront's Prometheus ----------------------------------------------------------------

def test_the_order_api_may_reach_the_default_prometheus() -> None:
    docs = render("values-aks.yaml", api_versions=("monitoring.coreos.com/v1",))
    egress = chart.one(docs, "NetworkPolicy", "order-api")["spec"]["egress"]
    to_prometheus = [rule for rule in egress if rule.get("ports") == [{"port": 9090, "protocol": "TCP"}]]
    assert to_prometheus, egress
    assert to_prometheus[0]["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}


def test_an_explicit_prometheus_url_wins() -> None:
    docs = render("values-aks.yaml", "order.api.prometheusUrl=http://prom.example:9090",
                  api_versions=("monitoring.coreos.com/v1",))
    assert order_api_env(docs)["PROMETHEUS_URL"]["value"] == "http://prom.example:9090"


# --- no dead defaults -----------------------------------------------------------------------------

def test_backups_on_without_a_service_url_are_refused() -> None:
    result = chart.helm("template", chart.RELEASE, str(chart.CHART), "--set", "backup.enabled=true", check=False)
    assert result.returncode != 0
    assert "serviceUrl" in result.stderr, result.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090", "backup.example.com", "https://"])
def test_a_backup_url_must_be_http_and_not_loopback_or_empty_host(url: str) -> None:
    result = chart.helm("template", chart.RELEASE, str(chart.CHART), "--set", "backup.enabled=true",
                        "--set", f"backup.serviceUrl={url}", check=False)
    assert result.returncode != 0, f"{url} was accepted"


def test_backups_with_a_service_url_render_the_cronjob() -> None:
    docs = chart.render("values.yaml", "backup.enabled=true", "backup.serviceUrl=https://backup.example.com")
    assert chart.one(docs, "CronJob", "backup")


def test_the_aks_values_ship_backups_somewhere() -> None:
    docs = chart.render("values-aks.yaml")
    env = chart.env_of(chart.pod_spec(chart.one(docs, "CronJob", "backup"))["containers"][0])  # type: ignore[index]
    assert env["BACKUP_SERVICE_URL"]["value"].startswith("https://")


# --- bus provisioning -----------------------------------------------------------------------------

def secret_refs(spec: chart.Doc) -> set[str]:
    return {e["valueFrom"]["secretKeyRef"]["name"] for c in chart.containers(spec) for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


def test_azure_bus_entities_come_from_a_pre_install_pre_upgrade_hook_job() -> None:
    docs = chart.render("values.yaml", *AZURE)
    job = chart.one(docs, "Job", "bus-provision")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = chart.pod_spec(job)
    assert spec is not None
    container = spec["containers"][0]
    assert container["args"] == ["bus", "provision"]
    env = chart.env_of(container)
    assert env["BUS_BACKEND"]["value"] == "azure"
    assert env["SERVICE_BUS_CONNECTION_STRING"]["valueFrom"]["secretKeyRef"] == {
        "name": "sb-manage", "key": "SERVICE_BUS_ADMIN_CONNECTION_STRING"}
    assert spec["automountServiceAccountToken"] is False


def test_only_the_hook_job_reads_the_manage_connection_string() -> None:
    docs = chart.render("values.yaml", *AZURE)
    readers = {doc["metadata"]["name"] for doc, spec in chart.workloads(docs) if "sb-manage" in secret_refs(spec)}
    assert readers == {"bus-provision"}
    app_pods = [doc["metadata"]["name"] for doc, spec in chart.workloads(docs) if "sb-send-listen" in secret_refs(spec)]
    assert set(app_pods) == {"order-api", "order-worker", "inventory-api", "inventory-worker"}


def test_the_hook_job_has_its_own_network_policy_created_before_it() -> None:
    docs = chart.render("values-aks.yaml")
    policy = chart.one(docs, "NetworkPolicy", "bus-provision")
    assert policy["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(policy["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        chart.one(docs, "Job", "bus-provision")["metadata"]["annotations"]["helm.sh/hook-weight"])
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {53, 5671, 443} <= ports
    cidrs = {peer["ipBlock"]["cidr"] for rule in policy["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer}
    assert cidrs and cidrs <= set(yaml.safe_load((chart.CHART / "values-aks.yaml").read_text())["networkPolicy"]["external"]["serviceBus"]["cidrs"])


def test_no_hook_job_with_the_embedded_bus_or_when_turned_off() -> None:
    assert "bus-provision" not in chart.of_kind(chart.render("values.yaml"), "Job")
    docs = chart.render("values.yaml", *AZURE, "bus.azure.provision.enabled=false")
    assert "bus-provision" not in chart.of_kind(docs, "Job")


def test_the_manage_secret_is_required_when_provisioning() -> None:
    result = chart.helm("template", chart.RELEASE, str(chart.CHART), "--set", "bus.backend=azure",
                        "--set", "bus.azure.existingSecret=sb",
                        "--set", "networkPolicy.external.serviceBus.cidrs={10.0.2.0/24}", check=False)
    assert result.returncode != 0 and "bus.azure.provision.existingSecret" in result.stderr
