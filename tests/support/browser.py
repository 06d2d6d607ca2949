"""Headless Debian Chromium for the browser tests: the system package, never a downloaded browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = Path(__file__).resolve().parents[2] / "test-results"
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}


def open_page(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(url + "/")
    page.wait_for_selector("#product-rows .stock")
    return page
