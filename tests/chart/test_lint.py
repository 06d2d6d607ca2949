"""helm lint --strict and the values schema, for every values file."""

from __future__ import annotations

import chartlib as chart
import pytest


def test_helm_is_the_pinned_version() -> None:
    assert chart.helm("version", "--short").stdout.startswith("v3.18.0+")


def test_lint_strict(values_file: str) -> None:
    values = str(chart.CHART / values_file)
    result = chart.helm("lint", "--strict", str(chart.CHART), "-f", values, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_lint_strict_with_everything_on(values_file: str) -> None:
    sets = [a for s in chart.EVERYTHING for a in ("--set", s)]
    result = chart.helm("lint", "--strict", str(chart.CHART), "-f", str(chart.CHART / values_file), *sets,
                        check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("setting", "message"), [
    ("bus.backend=kafka", "bus.backend must be one of"),
    ("image.tag=latest", "image.tag"),
    ("typo=1", "Additional property typo is not allowed"),
    ("chaos.schrodinger.failure=explode", "chaos.schrodinger.failure"),
    ("k6.duration=forever", "k6.duration"),
])
def test_schema_rejects_bad_values(setting: str, message: str) -> None:
    result = chart.helm("template", "x", str(chart.CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(("sets", "message"), [
    (("bus.azure.existingSecret=",), "bus.azure.existingSecret is required when bus.backend=azure"),
    (("externalDatabase.existingSecret=",), "externalDatabase.existingSecret is required"),
])
def test_aks_refuses_to_render_without_its_secrets(sets: tuple[str, ...], message: str) -> None:
    args = [a for s in sets for a in ("--set", s)]
    result = chart.helm("template", "x", str(chart.CHART), "-f", str(chart.CHART / "values-aks.yaml"), *args,
                        check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_no_generated_passwords_without_existing_secret_is_an_error() -> None:
    result = chart.helm("template", "x", str(chart.CHART), "--set", "postgresql.generatePasswords=false",
                        check=False)
    assert result.returncode != 0
    assert "postgresql.databases.order.existingSecret is required" in result.stderr
