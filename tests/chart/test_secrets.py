"""No secret is written into the chart or its values: the only Secrets rendered are generated
at install time (random on every render), and every credential reaches a pod by reference."""

from __future__ import annotations

import re
from typing import Any

import chartlib as chart
import yaml

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CONNECTION_STRING|_KEY$|_DATABASE_URL$")
LITERAL_CREDENTIAL = re.compile(r"://[^/:@\s]+:(?!\$\()[^@\s]+@|SharedAccessKey=|AccountKey=", re.IGNORECASE)


def _secrets(values_file: str, salt: str) -> dict[str, dict[str, str]]:
    # A different --set per call defeats the render cache: each render is a fresh helm run.
    docs = chart.render(values_file, *chart.EVERYTHING, f"order.api.env.RENDER={salt}")
    return {name: doc.get("data", {}) for name, doc in chart.of_kind(docs, "Secret").items()}


def test_rendered_secrets_are_generated_not_defaults(values_file: str) -> None:
    first, second = _secrets(values_file, "a"), _secrets(values_file, "b")
    assert set(first) == set(second)
    for name, data in first.items():
        assert data, name
        for key, value in data.items():
            assert value != second[name][key], f"{name}.{key} is the same on every install: a default secret"
    # The gRPC service token is internal to the release, so it is generated everywhere; AKS takes
    # every other secret from existing Secrets.
    if values_file == "values-aks.yaml":
        assert set(first) == {"valerix-grpc-token"}
    else:
        assert set(first) == {"order-db-credentials", "inventory-db-credentials", "bus-db-credentials",
                              "valerix-grpc-token", "order-auth-signing-key"}


def test_only_order_pods_get_the_token_signing_key(values_file: str) -> None:
    seen = set()
    for doc, spec in chart.workloads(chart.render_all(values_file)):
        for container in chart.containers(spec):
            var = chart.env_of(container).get("AUTH_SIGNING_KEY")
            if var is not None:
                seen.add(doc["metadata"]["name"])
                assert set(var["valueFrom"]["secretKeyRef"]) == {"name", "key"}
    assert seen == {"order-api", "order-worker"}, seen


def test_generated_secrets_survive_uninstall() -> None:
    for doc in chart.of_kind(chart.render("values.yaml"), "Secret").values():
        assert doc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_credentials_reach_pods_only_by_reference(values_file: str) -> None:
    for doc, spec in chart.workloads(chart.render_all(values_file)):
        for container in chart.containers(spec):
            for name, var in chart.env_of(container).items():
                where = f"{doc['metadata']['name']}/{container['name']}: {name}"
                value = var.get("value", "")
                assert not LITERAL_CREDENTIAL.search(value), where
                if SECRET_NAME.search(name) and "value" in var:
                    assert "$(" in value, f"{where} is a literal, not a secretKeyRef"


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (str(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [str(node)]


def test_values_files_hold_no_plaintext_secret(values_file: str) -> None:
    values = yaml.safe_load((chart.CHART / values_file).read_text())
    for text in _strings(values):
        assert not LITERAL_CREDENTIAL.search(text), text
    assert values.get("postgresql", {}).get("databases") is None or all(
        not d.get("password") for d in values["postgresql"]["databases"].values())


def test_the_credential_pattern_catches_literals() -> None:
    assert LITERAL_CREDENTIAL.search("postgresql://order_svc:hunter2@db:25432/order_db")
    assert LITERAL_CREDENTIAL.search("Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=b")
    assert not LITERAL_CREDENTIAL.search("postgresql://order_svc:$(ORDER_DB_PASSWORD)@order-db:25432/order_db")
