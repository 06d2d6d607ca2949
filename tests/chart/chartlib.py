"""Renders the chart with the real helm binary and gives typed views of the manifests."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "valerix"
HELM = ROOT / ".tools" / "bin" / "helm"
VALUES_FILES = ("values.yaml", "values-kind.yaml", "values-aks.yaml")
RELEASE = "valerix"
NAMESPACE = "valerix"
K6_SCRIPTS = sorted(p.name for p in (CHART / "files" / "k6").glob("*.js"))
# Turns every optional part on, so that the policy tests see all of it. The k6 scripts come from
# the benchmark work; test_observability fails on its own when they are missing.
EVERYTHING = (
    "monitoring.assumeOperatorCRDs=true",
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.grafanaDashboards.enabled=true",
    "backup.enabled=true",
    "backup.serviceUrl=https://backup.example.com",
    *(("k6.enabled=true", f"k6.script={K6_SCRIPTS[0]}") if K6_SCRIPTS else ()),
)
_HELM_HOME = ROOT / ".helm"  # helm's cache/config dirs: in the (git-ignored) checkout, never in $HOME

Doc = dict[str, Any]


def ensure_helm() -> Path:
    if not HELM.exists():
        subprocess.run([str(ROOT / "scripts" / "install-helm")], check=True, cwd=ROOT)
    return HELM


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": f"{_HELM_HOME}/cache",
           "HELM_CONFIG_HOME": f"{_HELM_HOME}/config", "HELM_DATA_HOME": f"{_HELM_HOME}/data"}
    env.pop("KUBECONFIG", None)  # rendering must never talk to a cluster
    result = subprocess.run([str(ensure_helm()), *args], capture_output=True, text=True, env=env, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


@functools.lru_cache(maxsize=64)
def template_text(values_file: str, *sets: str) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(CHART / values_file)]
    for item in sets:
        args += ["--set", item]
    return helm(*args).stdout


def render(values_file: str, *sets: str) -> list[Doc]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(template_text(values_file, *sets), Loader=loader) if d]


def render_all(values_file: str) -> list[Doc]:
    return render(values_file, *EVERYTHING)


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = of_kind(docs, kind)
    assert name in found, f"no {kind} {name}; have {sorted(found)}"
    return found[name]


def pod_spec(doc: Doc) -> Doc | None:
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_labels(doc: Doc) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return doc["spec"]["template"]["metadata"]["labels"]


def workloads(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            yield doc, spec


def containers(spec: Doc) -> list[Doc]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}
