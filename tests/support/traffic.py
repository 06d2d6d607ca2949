"""A steady trickle of orders and a polling helper, shared by the alert tests."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


class Trickle:
    """POSTs `body` to /api/orders every `every` seconds whatever each request takes, so the
    request rate stays steady when the requests become slow. Counts answers by status (0: none)."""

    def __init__(self, base_url: str, body: dict[str, Any], every: float = 0.5, workers: int = 16,
                 headers: dict[str, str] | None = None) -> None:
        self.url = f"{base_url}/api/orders"
        self.body = body
        self.every = every
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trickle")
        self._http = httpx.Client(timeout=15, headers=headers or {})
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._http.close()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._pool.submit(self._order)

    def _order(self) -> None:
        try:
            status = self._http.post(self.url, json=self.body).status_code
        except httpx.HTTPError:
            status = 0
        self.statuses[status] += 1


def wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.5) -> float:
    """Seconds until `condition()` held; AssertionError after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if condition():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")
