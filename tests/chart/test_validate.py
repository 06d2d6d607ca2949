"""The rendered manifests are valid Kubernetes 1.30 and 1.35 objects (strict: no unknown field).
Custom resources (ServiceMonitor, PrometheusRule) have no bundled schema: they are reported."""

from __future__ import annotations

import chartlib as chart
import kubernetes_validate
import pytest

CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("version", ["1.30.0", "1.35.0"])
def test_manifests_validate_strictly(values_file: str, version: str) -> None:
    docs = chart.render_all(values_file)
    errors, unvalidated = [], set()
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unvalidated.add(doc["kind"])
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, error.path))}: "
                          f"{error.message}")
    assert not errors, "\n".join(errors)
    print(f"{values_file} on {version}: {len(docs)} objects, not validated (CRDs): {sorted(unvalidated)}")
    assert unvalidated <= CUSTOM_KINDS


def test_validation_catches_an_unknown_field() -> None:
    doc = chart.one(chart.render("values.yaml"), "Service", "order-api")
    doc["spec"]["ports"][0]["targetPortt"] = 3000
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, "1.35.0", strict=True)
