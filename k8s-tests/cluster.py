"""Helpers of the live-cluster tests: tools, the release under test, running commands."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "valerix"
TOOLS = ROOT / ".tools" / "bin"
IMAGE = os.environ.get("VALERIX_IMAGE", "valerix:dev")
INSTALL_TIMEOUT = os.environ.get("VALERIX_INSTALL_TIMEOUT", "10m")


def cluster_problem() -> str | None:
    """None when a cluster answers, else why the live tests cannot run."""
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if not any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p):
        return (f"no Kubernetes cluster configured (KUBECONFIG unset and {kubeconfig} missing); "
                "run scripts/kind-up")
    try:
        from kubernetes import client, config

        config.load_kube_config()
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as error:  # any failure means: no usable cluster
        return f"Kubernetes cluster from {kubeconfig} is not reachable: {error.__class__.__name__}: {error}"
    return None


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        subprocess.run([str(ROOT / "scripts" / "install-helm")], check=True)
    return str(path)


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str

    def helm(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return run(tool("helm"), *args, "--namespace", self.namespace, timeout=timeout)

    def kubectl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run(tool("kubectl"), "--namespace", self.namespace, *args, timeout=timeout)

    def install_args(self) -> list[str]:
        repository, _, tag = IMAGE.rpartition(":")
        return [str(CHART), "-f", str(CHART / "values-kind.yaml"), "--set", f"image.repository={repository}",
                "--set", f"image.tag={tag}", "--set", "image.pullPolicy=IfNotPresent",
                "--set", "backup.enabled=false", "--wait", "--timeout", INSTALL_TIMEOUT]
