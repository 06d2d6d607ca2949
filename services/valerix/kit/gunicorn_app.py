"""Run a WSGI app under gunicorn from Python, with prometheus multiprocess bookkeeping."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

# When the request's connection was handed to the worker's thread pool (time.monotonic()):
# a request may queue there behind busy threads, and a deadline promised to the client counts
# from its arrival, not from when a thread picks it up. None outside gunicorn (tests, Flask's
# own server): the request arrived when its handler started.
arrived_at: ContextVar[float | None] = ContextVar("arrived_at", default=None)


class ArrivalStampingWorker(ThreadWorker):
    """gunicorn's gthread worker, stamping each connection when it is queued for a thread."""

    def enqueue_req(self, conn: Any) -> None:
        conn.valerix_arrived_at = time.monotonic()
        super().enqueue_req(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        arrived_at.set(getattr(conn, "valerix_arrived_at", None))
        try:
            return super().handle_request(req, conn)
        finally:
            arrived_at.set(None)


def reset_multiproc_dir() -> None:
    """Metric files of a previous run would be summed into this one: start empty. Call it
    before the first metric is created in the process."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class _Application(BaseApplication):
    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._factory()


def run(factory: Callable[[], Any], *, bind: str, workers: int, threads: int,
        timeout: int = 30, graceful_timeout: int = 10) -> None:
    _Application(factory, {
        "bind": bind, "workers": workers, "threads": threads, "worker_class": f"{__name__}.ArrivalStampingWorker",
        "timeout": timeout, "graceful_timeout": graceful_timeout, "keepalive": 5,
        "control_socket_disable": True, "child_exit": _child_exit, "accesslog": None,
        "worker_tmp_dir": os.environ.get("GUNICORN_TMP_DIR", "/tmp"),  # noqa: S108
        "max_requests": 0, "preload_app": False,
    }).run()
