"""skaffold.yaml and the Tiltfile point at the real chart, values files and image, and forward
the documented ports."""

from __future__ import annotations

import ast

import chartlib as chart
import yaml

SKAFFOLD = yaml.safe_load((chart.ROOT / "skaffold.yaml").read_text())


def _profile(name: str) -> dict:
    return next(p for p in SKAFFOLD["profiles"] if p["name"] == name)


def test_skaffold_builds_the_dockerfile_image() -> None:
    (artifact,) = SKAFFOLD["build"]["artifacts"]
    assert artifact["image"] == "valerix"
    assert (chart.ROOT / artifact["docker"]["dockerfile"]).is_file()


def test_skaffold_deploys_the_chart_with_each_values_file() -> None:
    expected = {"kind": "values-kind.yaml", "aks": "values-aks.yaml"}
    for profile, values in expected.items():
        releases = {r["name"]: r for r in _profile(profile)["deploy"]["helm"]["releases"]}
        valerix = releases["valerix"]
        assert (chart.ROOT / valerix["chartPath"]) == chart.CHART
        assert valerix["valuesFiles"] == [f"charts/valerix/{values}"]
        assert valerix["setValueTemplates"] == {"image.repository": "{{.IMAGE_REPO_valerix}}",
                                                "image.tag": "{{.IMAGE_TAG_valerix}}"}


def test_skaffold_kind_profile_installs_monitoring_first_and_forwards_ports() -> None:
    kind = _profile("kind")
    names = [r["name"] for r in kind["deploy"]["helm"]["releases"]]
    assert names == ["kube-prometheus-stack", "valerix"]
    stack = kind["deploy"]["helm"]["releases"][0]
    assert stack["version"] and stack["wait"] is True
    forwards = {f["localPort"] for f in kind["portForward"]}
    assert {3000, 3001, 9090} <= forwards
    # The chart's monitoring label must select on the stack's release name.
    values = yaml.safe_load((chart.CHART / "values.yaml").read_text())
    assert values["monitoring"]["release"] == stack["name"]


def test_skaffold_set_values_exist_in_the_schema() -> None:
    schema = yaml.safe_load((chart.CHART / "values.schema.json").read_text())
    for key in _profile("kind")["deploy"]["helm"]["releases"][1]["setValues"]:
        node = schema
        for part in key.split("."):
            node = node["properties"][part]


def test_tiltfile_uses_the_same_chart_and_ports() -> None:
    text = (chart.ROOT / "Tiltfile").read_text()
    ast.parse(text)  # Starlark is syntactically a subset of Python
    assert "charts/valerix/values-kind.yaml" in text
    assert "docker_build('valerix'" in text
    for port in ("3000, 3000", "3001, 3001", "9090, 9090"):
        assert port in text
