"""NetworkPolicies, evaluated: who may talk to whom, on which port, for each values file.

A small evaluator of the NetworkPolicy rules (podSelector/namespaceSelector match labels, ports)
decides each connection the way the API specifies it: a pod selected by a policy of a direction
is isolated in that direction, and a connection needs both the sender's egress and the
receiver's ingress to allow it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import chartlib as chart
import pytest


@dataclass(frozen=True)
class Pod:
    name: str
    labels: dict[str, str]
    namespace: str = chart.NAMESPACE
    namespace_labels: dict[str, str] = field(default_factory=dict)
    external: bool = False  # an address outside the cluster (ipBlock)

    def ns_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


Policies = list[dict[str, Any]]
World = tuple[Policies, dict[str, Pod], str]


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    assert "matchExpressions" not in selector  # the evaluator only knows matchLabels
    return selector.get("matchLabels", {}).items() <= labels.items()


def _peer_matches(peer: dict[str, Any], pod: Pod) -> bool:
    if "ipBlock" in peer:
        return pod.external
    if pod.external:
        return False
    if "namespaceSelector" not in peer and pod.namespace != chart.NAMESPACE:
        return False
    return (_matches(peer.get("namespaceSelector"), pod.ns_labels())
            and _matches(peer.get("podSelector"), pod.labels))


def _rule_allows(rule: dict[str, Any], peer_key: str, pod: Pod, port: int) -> bool:
    peers = rule.get(peer_key)
    ports = rule.get("ports")
    peer_ok = not peers or any(_peer_matches(p, pod) for p in peers)
    port_ok = not ports or any(p.get("port") in (None, port) for p in ports)
    return peer_ok and port_ok


def _direction_allows(policies: Policies, subject: Pod, other: Pod, port: int, direction: str) -> bool:
    if subject.external or subject.namespace != chart.NAMESPACE:
        return True  # not governed by this chart's policies
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], subject.labels)
                 and direction in p["spec"]["policyTypes"]]
    if not selecting:
        return True
    key, peer_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    rules = [rule for p in selecting for rule in p["spec"].get(key) or []]
    return any(_rule_allows(rule, peer_key, other, port) for rule in rules)


def allowed(policies: Policies, src: Pod, dst: Pod, port: int) -> bool:
    return (_direction_allows(policies, src, dst, port, "Egress")
            and _direction_allows(policies, dst, src, port, "Ingress"))


def _pods(docs: list[chart.Doc]) -> dict[str, Pod]:
    pods = {(c := chart.pod_labels(d)["app.kubernetes.io/component"]): Pod(c, chart.pod_labels(d))
            for d, _ in chart.workloads(docs)}
    pods["prometheus"] = Pod("prometheus", {"app.kubernetes.io/name": "prometheus"}, "monitoring")
    pods["kube-dns"] = Pod("kube-dns", {"k8s-app": "kube-dns"}, "kube-system")
    pods["stranger"] = Pod("stranger", {"app": "other"})
    pods["internet"] = Pod("internet", {}, external=True)
    return pods


@pytest.fixture(params=chart.VALUES_FILES)
def world(request: pytest.FixtureRequest) -> World:
    docs = chart.render_all(str(request.param))
    return list(chart.of_kind(docs, "NetworkPolicy").values()), _pods(docs), str(request.param)


def test_default_deny_covers_every_pod_of_the_release(world: World) -> None:
    policies, pods, _ = world
    deny = next(p for p in policies if p["metadata"]["name"] == "valerix-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny["spec"]
    for pod in pods.values():
        if pod.namespace == chart.NAMESPACE and not pod.external and pod.name != "stranger":
            assert _matches(deny["spec"]["podSelector"], pod.labels), pod.name


def test_only_order_pods_reach_inventory_grpc(world: World) -> None:
    policies, pods, _ = world
    inventory = pods["inventory-api"]
    for name, pod in pods.items():
        expected = name in ("order-api", "order-worker")
        assert allowed(policies, pod, inventory, 50051) is expected, name
        assert _direction_allows(policies, inventory, pod, 50051, "Ingress") is expected, name


def test_each_service_reaches_only_its_own_database(world: World) -> None:
    policies, pods, values_file = world
    if values_file == "values-aks.yaml":
        assert not any(n.endswith("-db") for n in pods)
        return
    may = {
        "order-db": {"order-api", "order-worker", "backup"},
        "inventory-db": {"inventory-api", "inventory-worker", "backup"},
        "bus-db": {"order-api", "order-worker", "inventory-api", "inventory-worker", "backup"},
    }
    for db, clients in may.items():
        for name, pod in pods.items():
            assert allowed(policies, pod, pods[db], 25432) is (name in clients), f"{name} -> {db}"
            # Each side holds on its own: the database's ingress alone admits only its clients.
            admits = _direction_allows(policies, pods[db], pod, 25432, "Ingress")
            assert admits is (name in clients), f"{db} admits {name}"


def test_dns_and_prometheus_scrapes_are_allowed(world: World) -> None:
    policies, pods, _ = world
    clients = ["order-api", "order-worker", "inventory-api", "inventory-worker", "backup"]
    for name in clients + (["k6"] if chart.K6_SCRIPTS else []):
        assert allowed(policies, pods[name], pods["kube-dns"], 53), name
    scrape = {"order-api": 3000, "inventory-api": 3001, "order-worker": 9100, "inventory-worker": 9100}
    for name, port in scrape.items():
        assert allowed(policies, pods["prometheus"], pods[name], port), name
    assert not allowed(policies, pods["stranger"], pods["order-worker"], 9100)


def test_public_entry_points_and_nothing_else(world: World) -> None:
    policies, pods, values_file = world
    assert allowed(policies, pods["stranger"], pods["order-api"], 3000)
    if chart.K6_SCRIPTS:
        assert allowed(policies, pods["k6"], pods["order-api"], 3000)
        assert not allowed(policies, pods["k6"], pods["internet"], 443)
    assert not allowed(policies, pods["order-api"], pods["order-worker"], 9100)
    assert not allowed(policies, pods["inventory-api"], pods["order-api"], 3000)
    # Only the AKS values open egress to the outside (Service Bus, managed PostgreSQL).
    assert allowed(policies, pods["order-api"], pods["internet"], 5671) is (values_file == "values-aks.yaml")
