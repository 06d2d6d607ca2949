"""The chart's workloads as real containers: images built once per session by scripts/image,
the chart rendered with the kind values, every Deployment (2 replicas each) and StatefulSet
started at once on a private podman network, and everything removed once the cluster's tests
are done (not at the end of the session: a dozen idle containers would take CPU from the rest of
the run), even when a test fails. Skips only when podman is absent (scripts/ci-deps installs it)."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from chart import chartlib
from kubelet import Cluster

ROOT = Path(__file__).resolve().parents[2]
TAG = "ctest"
IMAGES = {"valerix": f"localhost/valerix:{TAG}", "postgres": f"localhost/valerix-postgres:{TAG}",
          "k6": f"localhost/valerix-k6:{TAG}"}
# What the test deploys: the kind values, our own images (no registry), two replicas of every
# Deployment (as the AKS HPAs will run them) and a short, bounded k6 Job.
VALUES = (
    "image.repository=localhost/valerix", f"image.tag={TAG}", "image.pullPolicy=Never",
    "postgresql.image.repository=localhost/valerix-postgres", f"postgresql.image.tag={TAG}",
    "postgresql.image.digest=", "postgresql.image.pullPolicy=Never",
    "k6.image.repository=localhost/valerix-k6", f"k6.image.tag={TAG}", "k6.image.pullPolicy=Never",
    "order.api.replicas=2", "order.worker.replicas=2", "inventory.api.replicas=2", "inventory.worker.replicas=2",
    "k6.enabled=true", "k6.vus=2", "k6.rate=4", "k6.duration=10s", "k6.thresholds.p99Ms=1500",
    "k6.env.PRODUCTS=SKU-005\\,SKU-007",
)



@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Builds the three images once (podman's layer cache makes a rebuild of unchanged code quick)."""
    started = time.monotonic()
    result = subprocess.run([str(ROOT / "scripts" / "image"), "--tag", TAG], cwd=ROOT, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, f"scripts/image failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    print(f"\nscripts/image ({time.monotonic() - started:.0f} s):\n{result.stdout}")
    return IMAGES


@pytest.fixture(scope="session")
def manifests() -> list[dict]:
    return [d for d in yaml.safe_load_all(chartlib.template_text("values-kind.yaml", *VALUES)) if d]


@pytest.fixture(scope="module")  # only test_containers_cluster.py uses it
def cluster(images: dict[str, str], manifests: list[dict], tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("kubelet")
    workdir.chmod(0o755)
    c = Cluster(manifests, f"vxt-{secrets.token_hex(3)}", workdir)
    request.addfinalizer(c.cleanup)
    c.create_network()
    c.start(c.workloads("StatefulSet", "Deployment"))
    for pod in c.all_pods():
        c.wait_probe(pod, "startupProbe")
        c.wait_probe(pod, "readinessProbe", deadline_s=90)
    yield c
