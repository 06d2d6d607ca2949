"""A threaded WSGI server (waitress) in the background, for processes whose main job is
something else: the inventory api (gRPC first) and the workers (health and metrics)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import waitress


def serve_in_background(app: Any, host: str, port: int, threads: int = 4) -> Callable[[], None]:
    """Starts serving now; returns the function that stops it."""
    server = waitress.create_server(app, host=host, port=port, threads=threads, ident="valerix")
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            if not stopping.is_set():  # closing the sockets wakes the loop with EBADF: expected
                raise

    thread = threading.Thread(target=run, name="http", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        server.close()
        thread.join(timeout=5)

    return stop
