"""Browser fixtures: headless Debian Chromium (never a downloaded browser) driving the real
storefront served by a real gunicorn order API (see support.storefront)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.browser import ARGS, CHROMIUM, DESKTOP, PHONE, SHOTS, open_page
from support.storefront import Storefront, running_storefront


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(
                    reason="/usr/bin/chromium is absent: apt-get install -y --no-install-recommends chromium "
                           "(.ci/run does this)"))


@pytest.fixture(scope="session")
def storefront(pg) -> Iterator[Storefront]:
    home = Path(tempfile.mkdtemp(prefix="valerix-browser-"))
    try:
        with running_storefront(pg.admin_url, home, workers=1, threads=8) as running:
            yield running
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(exist_ok=True)
    return SHOTS


@pytest.fixture
def desktop(browser, storefront) -> Iterator[Any]:
    page = open_page(browser, storefront, DESKTOP)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser, storefront) -> Iterator[Any]:
    page = open_page(browser, storefront, PHONE)
    yield page
    page.context.close()
