"""Named steps of the current request, timed for its Server-Timing header.

A use case marks its slow steps (``with step("reserve"):``); the web layer starts a record
per request (``begin``) and writes the steps beside its own queue and app figures, so a
client, k6 or a browser's network panel can see which step a slow answer waited in. Outside
a request (a worker, a test calling the service directly) nothing is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_steps: ContextVar[list[tuple[str, float]] | None] = ContextVar("timed_steps", default=None)


def begin() -> None:
    """Starts recording this request's steps (a new, empty record)."""
    _steps.set([])


def end() -> None:
    """Stops recording: what the thread does after its request is no request's step."""
    _steps.set(None)


def recorded() -> list[tuple[str, float]]:
    """This request's steps so far, in the order they finished: (name, seconds)."""
    return list(_steps.get() or ())


@contextmanager
def step(name: str) -> Iterator[None]:
    steps = _steps.get()
    if steps is None:
        yield
        return
    started = time.monotonic()
    try:
        yield
    finally:
        steps.append((name, time.monotonic() - started))
