"""Browser fixtures: headless Debian Chromium (never a downloaded browser) driving the real
storefront served by a real gunicorn order API (see support.storefront)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.storefront import Storefront, running_storefront

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = Path(__file__).resolve().parents[2] / "test-results"
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}


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


def open_page(browser: Any, storefront: Storefront, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(storefront.url + "/")
    page.wait_for_selector("#product-rows .stock")
    return page


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
