"""Readiness checks: every dependency probed in parallel, each with a short timeout.

A ``Probe`` is a set of checks with its own threads and a result cached for about a second:
however many requests ask, a dependency sees at most one probe per second, and a flood of one
probe's callers never occupies the threads of another (``/health/ready`` keeps answering
while ``/health`` is hammered)."""

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
Result = tuple[bool, dict[str, Any]]
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


class Probe:
    """``checks`` run together on threads of this probe's own, the answer cached ``ttl`` seconds.
    While one caller refreshes an expired answer, the others get the previous one at once if
    it is recent (under a flood it always is); an answer older than ``ttl + timeout`` is never
    served, since the database may have died since: those callers wait for the refresh."""

    def __init__(self, service: str, checks: Mapping[str, Check], *, name: str, ttl: float = 1.0,
                 timeout: float = 1.5) -> None:
        self.service, self.checks, self._ttl, self._timeout = service, dict(checks), ttl, timeout
        # Twice the checks: a check still hanging past its timeout must not delay the next probe.
        self._executor = ThreadPoolExecutor(max_workers=max(2, 2 * len(self.checks)),
                                            thread_name_prefix=f"health-{name}")
        self._refreshing = threading.Lock()
        self._answer: tuple[float, Result] | None = None

    def run(self, quiet: bool = False) -> Result:
        answer = self._answer
        if answer is not None and time.monotonic() - answer[0] < self._ttl:
            return answer[1]
        recent = answer is not None and time.monotonic() - answer[0] < self._ttl + self._timeout
        if not self._refreshing.acquire(blocking=not recent):
            assert answer is not None
            return answer[1]
        try:
            answer = self._answer
            if answer is None or time.monotonic() - answer[0] >= self._ttl:
                answer = (time.monotonic(), run_checks(self.service, self.checks, self._timeout, quiet,
                                                       executor=self._executor))
                self._answer = answer
            return answer[1]
        finally:
            self._refreshing.release()


def run_checks(service: str, checks: Mapping[str, Check], timeout: float = 1.5,
               quiet: bool = False, executor: ThreadPoolExecutor | None = None) -> Result:
    futures = {name: (executor or _pool).submit(check) for name, check in checks.items()}
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


def watch(probe: Probe, interval: float = 5.0) -> threading.Thread:
    """Runs the checks in the background so valerix_dependency_up is fresh for Prometheus
    even when nothing polls /health."""

    def loop() -> None:
        previous: dict[str, str] = {}
        while True:
            try:
                _, body = probe.run(quiet=True)
                changed = {k: v for k, v in body["dependencies"].items() if previous.get(k, "ok") != v}
                if changed:  # log transitions only, not every failing probe
                    log.warning("dependency health changed", extra={"dependencies": changed})
                previous = body["dependencies"]
            except RuntimeError as error:
                # "cannot schedule new futures after [interpreter] shutdown": the process is
                # exiting and its executors are gone.
                if str(error).endswith("shutdown"):
                    return
                log.exception("health watch failed")
            except Exception:
                log.exception("health watch failed")
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="health-watch", daemon=True)
    thread.start()
    return thread
