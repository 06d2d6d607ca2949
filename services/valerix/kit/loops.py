"""The one loop every worker thread runs: repeat a step until stop is set, pause as the step's
result asks, back off after failures (logged, never raised), so a broken bus or database
costs retries, not the thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Loop = Callable[[threading.Event], None]


def doubling(cap: float = 30.0, base: float = 0.5) -> Callable[[int], float]:
    """1, 2, 4 ... times base after the 1st, 2nd, 3rd ... failure in a row, at most cap."""
    return lambda failures: min(cap, base * 2 ** min(failures, 10))


def run_steps(stop: threading.Event, step: Callable[[], T], *, message: str,
              pause: Callable[[T], object] = lambda _: None,
              backoff: Callable[[int], float] | None = None, extra: Mapping[str, Any] | None = None,
              traceback: bool = True) -> None:
    """Runs ``step`` until ``stop`` is set; after a success ``pause(result)`` (a wait of its
    own), after a failure logs ``message`` and waits ``backoff(failures in a row)``."""
    backoff = backoff or doubling()
    failures = 0
    while not stop.is_set():
        try:
            result = step()
        except Exception as error:
            failures += 1
            delay = backoff(failures)
            details = {**(extra or {}), "retryInSeconds": delay}
            if traceback:
                log.exception(message, extra=details)
            else:
                log.warning(message, extra={**details, "error": repr(error)})
            stop.wait(delay)
            continue
        failures = 0
        pause(result)


def every(seconds: float, step: Callable[[], object], *, message: str = "periodic step failed",
          traceback: bool = True) -> Loop:
    """A loop that runs ``step`` every ``seconds`` and survives its failures (a sweeper)."""

    def run(stop: threading.Event) -> None:
        run_steps(stop, step, message=message, pause=lambda _: stop.wait(seconds), backoff=lambda _: seconds,
                  extra={"step": getattr(step, "__name__", str(step))}, traceback=traceback)

    return run
