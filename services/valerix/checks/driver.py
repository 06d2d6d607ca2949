"""A small concurrent order driver for the chaos pipeline: bounded in count and time, and
it keeps going when individual orders are affected."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

# Mostly plentiful products, plus one scarce product so that insufficient stock happens too.
CATALOGUE = [("SKU-001", 3), ("SKU-002", 4), ("SKU-004", 2), ("SKU-005", 5), ("SKU-007", 3), ("SKU-006", 2)]


@dataclass
class Sent:
    order_id: str | None
    status: int          # HTTP status, or 0 when no answer came back
    order_status: str | None
    reason: str | None
    latency: float
    at: float
    error: str | None = None


def _retry_after(response: httpx.Response | None) -> float:
    value = response.headers.get("Retry-After", "") if response is not None else ""
    return float(value) if value.isdigit() else 1.0


def guest_token(client: httpx.Client) -> str:
    response = client.post("/api/session")
    response.raise_for_status()
    return str(response.json()["token"])


def drive(base_url: str, seconds: float, concurrency: int = 6, max_orders: int = 5000,
          seed: int = 1, between: Callable[[], None] | None = None) -> list[Sent]:
    """Places orders from ``concurrency`` threads for ``seconds`` (at most ``max_orders``)."""
    results: list[Sent] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=base_url, timeout=10.0) as client:
            client.headers["Authorization"] = f"Bearer {guest_token(client)}"  # one customer per thread
            while time.monotonic() < deadline:
                with lock:
                    if len(results) >= max_orders:
                        return
                product, most = rng.choice(CATALOGUE)
                body = {"productId": product, "quantity": rng.randint(1, most)}
                started = time.monotonic()
                try:
                    response = client.post("/api/orders", json=body)
                    data = response.json() if response.content else {}
                    sent = Sent(data.get("orderId"), response.status_code, data.get("status"), data.get("reason"),
                                time.monotonic() - started, time.time())
                except (httpx.HTTPError, ValueError) as error:
                    sent = Sent(None, 0, None, None, time.monotonic() - started, time.time(), repr(error))
                with lock:
                    results.append(sent)
                if sent.status in (0, 503):  # as a polite client would: not a hot loop against an outage
                    time.sleep(min(1.0, _retry_after(response if sent.status else None)))
                if between:
                    between()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker, i) for i in range(concurrency)]:
            future.result()
    return results
