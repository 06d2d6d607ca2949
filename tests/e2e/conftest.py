"""End-to-end fixtures: the whole system as real processes under supervisor, on free ports."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from valerix.local.config import Ports, StackConfig
from valerix.local.stack import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    home = Path(tempfile.mkdtemp(prefix="valerix-e2e-"))
    started = Stack(StackConfig(home=home, ports=Ports.free(), with_prometheus=False, with_backup=False,
                                extra_env={"SWEEPER_RESEND_AFTER_S": "3"}))
    try:
        started.start(wait=90)
    except Exception:
        started.destroy()
        raise
    yield started
    started.destroy()
