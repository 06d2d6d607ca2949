"""Browser fixtures: headless Debian Chromium (never a downloaded browser) driving the
storefront of the whole system running as real processes under supervisor (valerix.local.stack):
PostgreSQL, order api (gunicorn), order worker, inventory api, inventory worker, embedded bus."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from valerix.chaos.switches import OFF_VALUES, gremlin_values, write_local
from valerix.kit.auth import Identity, Role
from valerix.local.config import Ports, StackConfig
from valerix.local.prometheus import find_prometheus
from valerix.local.stack import Stack

from support.browser import ARGS, CHROMIUM, DESKTOP, PHONE, SHOTS, open_page

CHAOS_TTL = 0.6   # the processes re-read CHAOS_DIR at most every 0.5 s


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(
                    reason="/usr/bin/chromium is absent: apt-get install -y --no-install-recommends chromium "
                           "(.ci/run does this)"))


class Shop:
    """The running system as the browser tests see it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.order_url
        self.has_prometheus = stack.config.with_prometheus

    def gremlin(self, on: bool, delay_ms: int = 2600) -> None:
        """Turns Gremlin on or off live, as `valerix chaos gremlin` does: files in CHAOS_DIR."""
        write_local(self.stack.home / "chaos",
                    gremlin_values(True, None, delay_ms, delay_ms, None) if on else OFF_VALUES)
        time.sleep(CHAOS_TTL)

    @property
    def operator(self) -> dict[str, str]:
        """An operator's headers, minted from the stack's key as `valerix auth token` does."""
        issued = self.stack.tokens().issue(Identity("operator:browser-test", Role.OPERATOR), timedelta(hours=1))
        return {"Authorization": f"Bearer {issued.token}"}

    @staticmethod
    def customer_of(page: Any) -> dict[str, str]:
        """The headers of the guest customer the page got from POST /api/session and kept."""
        token = page.evaluate("JSON.parse(window.localStorage.getItem('valerix.session')).token")
        return {"Authorization": f"Bearer {token}"}

    def status(self, order_id: str) -> str:
        return str(httpx.get(f"{self.url}/api/orders/{order_id}", headers=self.operator, timeout=5).json()["status"])

    def pause(self, program: str) -> None:
        assert "stopped" in self.stack.ctl("stop", program)

    def resume(self, program: str) -> None:
        assert "started" in self.stack.ctl("start", program)


@pytest.fixture(scope="session")
def shop() -> Iterator[Shop]:
    # One gunicorn worker with 8 threads: 4 socket slots (half), so filling them is deterministic.
    stack = Stack(StackConfig(home=Path(tempfile.mkdtemp(prefix="valerix-browser-")), ports=Ports.free(),
                              order_api_workers=1, order_api_threads=8,
                              with_prometheus=find_prometheus() is not None, with_backup=False))
    try:
        stack.start(wait=90)
        yield Shop(stack)
    finally:
        stack.destroy()


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
def desktop(browser, shop) -> Iterator[Any]:
    page = open_page(browser, shop.url, DESKTOP)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser, shop) -> Iterator[Any]:
    page = open_page(browser, shop.url, PHONE)
    yield page
    page.context.close()
