"""Run a WSGI app under gunicorn from Python, with prometheus multiprocess bookkeeping."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication


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
        "bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
        "timeout": timeout, "graceful_timeout": graceful_timeout, "keepalive": 5,
        "control_socket_disable": True, "child_exit": _child_exit, "accesslog": None,
        "worker_tmp_dir": os.environ.get("GUNICORN_TMP_DIR", "/tmp"),  # noqa: S108
        "max_requests": 0, "preload_app": False,
    }).run()
