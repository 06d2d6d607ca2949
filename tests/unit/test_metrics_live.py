"""kit.metrics: collectors that read state at scrape time (stock levels) are exported when
PROMETHEUS_MULTIPROC_DIR is set, as in every pod, and without it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from valerix.kit import metrics
from valerix.kit.web import create_app


class _Live:
    def __init__(self, name: str) -> None:
        self.name = name

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, "test gauge", labels=["product_id"])
        family.add_metric(["SKU-001"], 42.0)
        yield family


@pytest.fixture
def live() -> Iterator[str]:
    name = f"valerix_test_live_{uuid.uuid4().hex[:8]}"
    collector = _Live(name)
    metrics.register_live(collector)
    yield name
    metrics._LIVE.remove(collector)
    REGISTRY.unregister(collector)


@pytest.mark.parametrize("multiprocess", [True, False])
def test_live_collectors_are_exported(live: str, multiprocess: bool, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if multiprocess:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    else:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    payload, _ = metrics.exposition()
    assert f'{live}{{product_id="SKU-001"}} 42.0' in payload.decode()


def test_the_shared_app_exports_them_too(live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers and apis serve /metrics through kit.web.create_app."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    app = create_app("test", {}, import_name=__name__)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert f'{live}{{product_id="SKU-001"}} 42.0' in text
