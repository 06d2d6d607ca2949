"""run_worker(): a worker process is a few named loops in threads, an HTTP port with
/health/live, /health and /metrics, and a graceful stop on SIGTERM."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import waitress

from valerix.kit import process
from valerix.kit.health import Check
from valerix.kit.web import create_app

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]


def every(seconds: float, step: Callable[[], object]) -> Loop:
    """A loop that runs ``step`` every ``seconds`` and survives its failures."""

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                step()
            except Exception:
                log.exception("periodic step failed", extra={"step": getattr(step, "__name__", str(step))})
            stop.wait(seconds)

    return run


def _guarded(name: str, loop: Loop, stop: threading.Event) -> Callable[[], None]:
    def run() -> None:
        try:
            loop(stop)
        except Exception:
            # A loop that dies takes the process with it, so supervisor/kubelet restarts a whole worker.
            log.exception("worker loop crashed", extra={"loop": name})
            stop.set()

    return run


def run_worker(service: str, loops: Mapping[str, object], checks: Mapping[str, Check], *, metrics_port: int,
               on_stop: Sequence[Callable[[], object]] = (), host: str = "0.0.0.0") -> None:  # noqa: S104
    stop = process.stop_event()
    http = waitress.create_server(create_app(service, checks, import_name=__name__), host=host, port=metrics_port,
                                  threads=4, ident="valerix")
    threading.Thread(target=http.run, name="http", daemon=True).start()
    threads = [threading.Thread(target=_guarded(name, loop, stop), name=name, daemon=True)  # type: ignore[arg-type]
               for name, loop in loops.items()]
    for thread in threads:
        thread.start()
    log.info("worker started", extra={"loops": list(loops), "metricsPort": metrics_port})
    stop.wait()
    log.info("worker stopping")
    for thread in threads:
        thread.join(timeout=10)
    http.close()
    for close in on_stop:
        try:
            close()
        except Exception:
            log.exception("error while stopping")
