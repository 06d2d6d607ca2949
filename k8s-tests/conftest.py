"""Live-cluster tests of the chart: `pytest k8s-tests` (outside the default testpaths).

They need a reachable cluster (KUBECONFIG or ~/.kube/config; scripts/kind-up makes one) and the
valerix image available to it (VALERIX_IMAGE, default valerix:dev, which scripts/kind-up builds
and loads into kind). Each session installs the chart into a fresh namespace and uninstalls it.
Without a cluster every test is skipped with the reason (an error when VALERIX_REQUIRE_CLUSTER
is set, as in .github/workflows/ci.yml)."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import Release, cluster_problem, run, tool


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = cluster_problem()
    if problem and os.environ.get("VALERIX_REQUIRE_CLUSTER"):  # CI made a cluster: not having one is a failure
        raise pytest.UsageError(f"VALERIX_REQUIRE_CLUSTER is set, but {problem}")
    if problem:
        skip = pytest.mark.skip(reason=problem)
        here = Path(__file__).parent
        for item in items:
            if here in item.path.parents:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def release() -> Iterator[Release]:
    rel = Release("valerix", f"valerix-test-{secrets.token_hex(3)}")
    run(tool("kubectl"), "create", "namespace", rel.namespace)
    try:
        started = time.monotonic()
        rel.helm("install", rel.name, *rel.install_args(), timeout=1200)
        print(f"installed into {rel.namespace} in {time.monotonic() - started:.0f} s")
        yield rel
        rel.helm("uninstall", rel.name, "--wait", "--timeout", "5m")
        left = rel.kubectl("get", "deploy,statefulset,svc", "-o", "name").stdout.split()
        assert not left, f"left after uninstall: {left}"
    finally:
        subprocess.run([tool("kubectl"), "delete", "namespace", rel.namespace, "--wait=false"],
                       capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def forward(release: Release) -> Iterator[dict[str, str]]:
    """Port-forwards to order-api and inventory-api on free local ports below 32768."""
    from valerix.kit.ports import free_port, wait_listening

    processes, urls = [], {}
    try:
        for service, remote in (("order-api", 3000), ("inventory-api", 3001)):
            local = free_port()
            processes.append(subprocess.Popen(
                [tool("kubectl"), "--namespace", release.namespace, "port-forward", f"svc/{service}",
                 f"{local}:{remote}", "--address", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_listening(local, timeout=30)
            urls[service] = f"http://127.0.0.1:{local}"
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
