"""The worker process's frame: named loops in threads, graceful SIGTERM, and the
/health/live, /health and /metrics endpoint on METRICS_PORT.

A loop is ``run_forever(stop)``: it returns when stop is set. A loop that raises or returns
early is logged and restarted with back-off, and /health reports it while it is down, so a
wedged worker fails readiness instead of silently doing nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from werkzeug.serving import make_server

from valerix.kit import health, process
from valerix.kit.web import create_app

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]


class _Supervised:
    def __init__(self, name: str, loop: Loop, stop: threading.Event) -> None:
        self.name, self._loop, self._stop = name, loop, stop
        self.running = False
        self.thread = threading.Thread(target=self._run, name=f"loop-{name}", daemon=True)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.running = True
            try:
                self._loop(self._stop)
                if self._stop.is_set():
                    return
                log.error("worker loop returned early; restarting", extra={"loop": self.name})
            except Exception:
                log.exception("worker loop crashed; restarting", extra={"loop": self.name})
            self.running = False
            failures += 1
            self._stop.wait(min(30.0, 0.5 * 2 ** min(failures, 10)))


def every(seconds: float, task: Callable[[], None]) -> Loop:
    """A loop that runs task every `seconds` (a sweeper); a failing run is logged and retried."""
    name = getattr(task, "__name__", "task")

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                task()
            except Exception:
                log.exception("periodic task failed", extra={"task": name})
            stop.wait(seconds)

    return run


def run_worker(service: str, loops: Mapping[str, Loop], checks: Mapping[str, health.Check], *,
               metrics_port: int, host: str = "0.0.0.0", stop: threading.Event | None = None,  # noqa: S104
               on_stop: Sequence[Callable[[], None]] = (), grace_seconds: float = 20.0) -> None:
    """Runs until SIGTERM/SIGINT (or stop is set), lets every loop finish its step, then
    calls on_stop (closing the bus and pools) in order."""
    stop = stop if stop is not None else process.stop_event()
    supervised = [_Supervised(name, loop, stop) for name, loop in loops.items()]

    def loops_alive() -> None:
        down = [s.name for s in supervised if not (s.running and s.thread.is_alive())]
        if down:
            raise RuntimeError(f"worker loops not running: {', '.join(down)}")

    app = create_app(service, {**checks, "loops": loops_alive})
    server = make_server(host, metrics_port, app, threaded=True)
    http = threading.Thread(target=server.serve_forever, name="worker-http", daemon=True)
    http.start()
    for s in supervised:
        s.thread.start()
    log.info("worker started", extra={"loops": list(loops), "port": metrics_port})
    try:
        stop.wait()
        log.info("worker stopping")
        for s in supervised:
            s.thread.join(timeout=grace_seconds)
            if s.thread.is_alive():
                log.warning("worker loop did not stop in time", extra={"loop": s.name})
    finally:
        server.shutdown()
        http.join(timeout=5)
        for close in on_stop:
            try:
                close()
            except Exception:
                log.exception("closing failed", extra={"closer": getattr(close, "__qualname__", repr(close))})
