"""Issue 16 in the chart: the gRPC service credential, TLS to the managed PostgreSQL, egress
limited to named ranges, and images pinned by digest."""

from __future__ import annotations

import re

import chartlib as chart
import pytest
import yaml

DB_URLS = ("ORDER_DATABASE_URL", "INVENTORY_DATABASE_URL", "BUS_DATABASE_URL")
DIGEST = re.compile(r"^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$")
AKS_VALUES = yaml.safe_load((chart.CHART / "values-aks.yaml").read_text())


def _fails(values_file: str, *args: str) -> str:
    result = chart.helm("template", "x", str(chart.CHART), "-f", str(chart.CHART / values_file), *args, check=False)
    assert result.returncode != 0, f"rendered with {args}"
    return result.stderr


# -- the gRPC service credential --

def test_only_the_order_api_and_inventory_api_get_the_grpc_token(values_file: str) -> None:
    docs = chart.render_all(values_file)
    secret = chart.one(docs, "Secret", "valerix-grpc-token")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert set(secret["data"]) == {"token"}
    holders = set()
    for doc, spec in chart.workloads(docs):
        for container in chart.containers(spec):
            var = chart.env_of(container).get("INVENTORY_GRPC_TOKEN")
            if var is not None:
                assert var["valueFrom"]["secretKeyRef"] == {"name": "valerix-grpc-token", "key": "token"}
                holders.add(f"{doc['metadata']['name']}/{container['name']}")
    assert holders == {"order-api/order-api", "inventory-api/inventory-api"}


def test_the_grpc_token_can_come_from_an_existing_secret() -> None:
    docs = chart.render("values.yaml", "grpcAuth.existingSecret=my-token", "grpcAuth.key=value")
    assert "valerix-grpc-token" not in chart.of_kind(docs, "Secret")
    api = chart.pod_spec(chart.one(docs, "Deployment", "order-api"))
    assert api is not None
    ref = chart.env_of(api["containers"][0])["INVENTORY_GRPC_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "my-token", "key": "value"}


# -- TLS to the managed PostgreSQL (AKS) --

def test_every_aks_database_connection_verifies_the_server_against_the_azure_ca() -> None:
    tls = AKS_VALUES["externalDatabase"]["tls"]
    assert tls["sslMode"] == "verify-full" and tls["caConfigMap"]
    checked = 0
    for doc, spec in chart.workloads(chart.render_all("values-aks.yaml")):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in chart.containers(spec):
            env = chart.env_of(container)
            if not set(DB_URLS) & set(env):
                continue
            where = f"{doc['metadata']['name']}/{container['name']}"
            assert env["PGSSLMODE"]["value"] == "verify-full", where
            ca_path = env["PGSSLROOTCERT"]["value"]
            mounts = [m for m in container["volumeMounts"] if ca_path.startswith(m["mountPath"] + "/")]
            assert len(mounts) == 1 and mounts[0]["readOnly"], where
            volume = volumes[mounts[0]["name"]]
            assert volume["configMap"]["name"] == tls["caConfigMap"], where
            assert ca_path.endswith("/" + volume["configMap"]["items"][0]["path"]), where
            checked += 1
    assert checked >= 9  # 4 app containers, their migrate init containers, the backup job


def test_in_cluster_databases_get_no_tls_settings() -> None:
    for _doc, spec in chart.workloads(chart.render_all("values.yaml")):
        for container in chart.containers(spec):
            assert "PGSSLMODE" not in chart.env_of(container)


def test_verifying_without_a_ca_is_refused() -> None:
    assert "externalDatabase.tls.caConfigMap is required" in _fails(
        "values-aks.yaml", "--set", "externalDatabase.tls.caConfigMap=")


# -- egress to named ranges only (AKS) --

APPS = ("order-api", "order-worker", "inventory-api", "inventory-worker")


def _egress_ip_rules(docs: list[chart.Doc]) -> dict[str, list[tuple[set[str], set[int]]]]:
    """Per NetworkPolicy, its egress rules to address ranges (cidrs, ports)."""
    rules: dict[str, list[tuple[set[str], set[int]]]] = {}
    for name, policy in chart.of_kind(docs, "NetworkPolicy").items():
        for rule in policy["spec"].get("egress", []):
            if name in APPS:
                assert rule.get("to"), f"{name} has an egress rule open to every address: {rule}"
            cidrs = {peer["ipBlock"]["cidr"] for peer in rule.get("to", []) if "ipBlock" in peer}
            if cidrs:
                rules.setdefault(name, []).append((cidrs, {p["port"] for p in rule.get("ports", [])}))
    return rules


def test_aks_app_pods_reach_only_the_named_ranges() -> None:
    external = AKS_VALUES["networkPolicy"]["external"]
    postgres = (set(external["postgres"]["cidrs"]), {5432})
    service_bus = (set(external["serviceBus"]["cidrs"]), {5671, 443})
    rules = _egress_ip_rules(chart.render_all("values-aks.yaml"))
    for app in APPS:
        assert sorted(rules[app], key=str) == sorted([postgres, service_bus], key=str), app
    assert rules["backup"] == [postgres]  # the backup job never talks to the broker
    assert rules["bus-provision"] == [service_bus]  # the hook Job creates the entities, nothing else
    assert set(rules) == {*APPS, "backup", "bus-provision"}
    everything = {cidr for policy in rules.values() for cidrs, _ in policy for cidr in cidrs}
    assert not any(cidr.endswith("/0") for cidr in everything)


def test_default_values_open_no_address_range() -> None:
    assert _egress_ip_rules(chart.render_all("values.yaml")) == {}


@pytest.mark.parametrize(("args", "message"), [
    (("--set-json", "networkPolicy.external.postgres.cidrs=[]"), "networkPolicy.external.postgres.cidrs: name the"),
    (("--set-json", "networkPolicy.external.serviceBus.cidrs=[]"), "networkPolicy.external.serviceBus.cidrs: name the"),
    (("--set-json", 'networkPolicy.external.postgres.cidrs=["10.20.1.0/24","0.0.0.0/0"]'),
     "0.0.0.0/0 opens egress to the whole internet"),
    (("--set-json", 'networkPolicy.external.serviceBus.cidrs=["::/0"]'), "::/0 opens egress to the whole internet"),
])
def test_aks_refuses_egress_without_named_ranges_or_to_everywhere(args: tuple[str, ...], message: str) -> None:
    assert message in _fails("values-aks.yaml", *args)


# -- images by digest --

def test_postgres_images_are_pinned_by_digest(values_file: str) -> None:
    images = {container["image"] for _doc, spec in chart.workloads(chart.render_all(values_file))
              for container in chart.containers(spec) if "postgres" in container["image"]}
    if values_file != "values-aks.yaml":
        assert images
    for image in images:
        assert DIGEST.match(image), image
