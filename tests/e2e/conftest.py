"""End-to-end fixtures: the whole system as real processes under supervisor, on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from valerix.local.stack import Stack

from support.stacks import running_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack("valerix-e2e-") as started:
        yield started
