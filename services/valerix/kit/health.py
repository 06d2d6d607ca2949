"""Readiness checks: every dependency probed in parallel, each with a short timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from valerix.kit import metrics

log = logging.getLogger(__name__)

Check = Callable[[], None]  # raises when the dependency is unhealthy
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


def run_checks(service: str, checks: Mapping[str, Check], timeout: float = 1.5,
               quiet: bool = False) -> tuple[bool, dict[str, Any]]:
    futures = {name: _pool.submit(check) for name, check in checks.items()}
    wait(futures.values(), timeout=timeout)
    dependencies: dict[str, str] = {}
    for name, future in futures.items():
        ok = False
        if future.done():
            error = future.exception()
            ok = error is None
            if error is not None and not quiet:
                log.warning("dependency unhealthy", extra={"dependency": name, "error": repr(error)})
        elif not quiet:
            log.warning("dependency check timed out", extra={"dependency": name})
        dependencies[name] = "ok" if ok else "error"
        metrics.DEPENDENCY_UP.labels(service=service, dependency=name).set(1 if ok else 0)
    healthy = all(v == "ok" for v in dependencies.values())
    body = {"status": "healthy" if healthy else "unhealthy", "service": service,
            "timestamp": datetime.now(UTC).isoformat(), "dependencies": dependencies}
    return healthy, body


def watch(service: str, checks: Mapping[str, Check], interval: float = 5.0) -> threading.Thread:
    """Runs the checks in the background so valerix_dependency_up is fresh for Prometheus
    even when nothing polls /health."""

    def loop() -> None:
        previous: dict[str, str] = {}
        while True:
            try:
                _, body = run_checks(service, checks, quiet=True)
                changed = {k: v for k, v in body["dependencies"].items() if previous.get(k, "ok") != v}
                if changed:  # log transitions only, not every failing probe
                    log.warning("dependency health changed", extra={"dependencies": changed})
                previous = body["dependencies"]
            except Exception:
                log.exception("health watch failed")
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="health-watch", daemon=True)
    thread.start()
    return thread
