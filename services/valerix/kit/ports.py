"""Free TCP ports below the Linux ephemeral range (32768+), where outgoing connections
in TIME-WAIT can hold a port and make a server fail with 'Address already in use'."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# free_port() hands out [20000, 32000). The band above it, still below the ephemeral range, is
# for the servers of a test that runs beside the others (scripts/test's second worker): nothing
# else picks from it, so neither two stacks starting at once nor a server down for minutes can
# lose a port to another test.
SEPARATE_PORTS = (32000, 32768)


def free_port(low: int = 20000, high: int = SEPARATE_PORTS[0]) -> int:
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(low, high)
        if is_free(port):
            return port
    raise RuntimeError(f"no free port in [{low}, {high})")


def wait_listening(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_http_ok(url: str, timeout: float = 30.0, *, still_alive: Callable[[], bool] | None = None,
                 interval: float = 0.1) -> None:
    """Polls ``url`` until it answers 200; stops early when ``still_alive`` says the server died."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if still_alive is not None and not still_alive():
            raise RuntimeError(f"the server behind {url} exited")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
