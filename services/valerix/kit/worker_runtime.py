"""run_worker(): a worker process is a few named loops in threads, an HTTP port with
/health/live, /health and /metrics, and a graceful stop on SIGTERM.

A loop is ``run_forever(stop)``: it handles its own transient failures (the relay and the
consumers back off) and returns when stop is set. An exception that still escapes a loop
stops the whole worker with exit status 1, so supervisor or the kubelet restarts it fresh.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from valerix.kit import process
from valerix.kit.health import Check
from valerix.kit.http_server import serve_in_background
from valerix.kit.loops import Loop, every
from valerix.kit.web import create_app

log = logging.getLogger(__name__)

__all__ = ["Loop", "every", "run_worker"]

def _guarded(name: str, loop: Loop, stop: threading.Event, crashed: list[str]) -> Callable[[], None]:
    def run() -> None:
        try:
            loop(stop)
        except Exception:
            log.exception("worker loop crashed; stopping the worker", extra={"loop": name})
            crashed.append(name)
            stop.set()

    return run


def run_worker(service: str, loops: Mapping[str, object], checks: Mapping[str, Check], *, metrics_port: int,
               on_stop: Sequence[Callable[[], object]] = (), host: str = "0.0.0.0",  # noqa: S104
               stop: threading.Event | None = None, grace_seconds: float = 10.0) -> None:
    """Runs until SIGTERM/SIGINT (or ``stop`` is set), lets every loop finish its step, then
    calls ``on_stop`` in order (closing the bus and pools). Raises SystemExit(1) if a loop crashed."""
    stop = stop if stop is not None else process.stop_event()
    crashed: list[str] = []
    stop_http = serve_in_background(create_app(service, checks, import_name=__name__), host, metrics_port)
    threads = [threading.Thread(target=_guarded(name, loop, stop, crashed), name=name,  # type: ignore[arg-type]
                                daemon=True)
               for name, loop in loops.items()]
    for thread in threads:
        thread.start()
    log.info("worker started", extra={"loops": list(loops), "metricsPort": metrics_port})
    stop.wait()
    log.info("worker stopping")
    for thread in threads:
        thread.join(timeout=grace_seconds)
        if thread.is_alive():
            log.warning("worker loop did not stop in time", extra={"loop": thread.name})
    stop_http()
    for close in on_stop:
        try:
            close()
        except Exception:
            log.exception("error while stopping")
    if crashed:
        raise SystemExit(1)
