"""kit.timing: the named steps of a request, for its Server-Timing header."""

from __future__ import annotations

import contextvars
import time

import pytest

from valerix.kit import timing
from valerix.kit.web import server_timing


def test_steps_are_recorded_in_the_order_they_finish_even_when_one_raises() -> None:
    def request() -> list[tuple[str, float]]:
        timing.begin()
        with timing.step("save"):
            time.sleep(0.01)
        with pytest.raises(RuntimeError), timing.step("reserve"):
            raise RuntimeError("inventory fell over")
        return timing.recorded()

    steps = contextvars.Context().run(request)
    assert [name for name, _ in steps] == ["save", "reserve"]
    assert steps[0][1] >= 0.01


def test_outside_a_request_nothing_is_recorded() -> None:
    def worker() -> list[tuple[str, float]]:
        with timing.step("save"):
            pass
        return timing.recorded()

    assert contextvars.Context().run(worker) == []


def test_each_request_starts_a_new_record() -> None:
    def request(name: str) -> list[tuple[str, float]]:
        timing.begin()
        with timing.step(name):
            pass
        return timing.recorded()

    context = contextvars.Context()   # a kept-alive thread serves one request after another
    assert [n for n, _ in context.run(request, "save")] == ["save"]
    assert [n for n, _ in context.run(request, "settle")] == ["settle"]


def test_after_a_request_nothing_is_recorded() -> None:
    def thread() -> list[tuple[str, float]]:
        timing.begin()
        timing.end()
        with timing.step("save"):   # e.g. a group-commit leader's later work on this thread
            pass
        return timing.recorded()

    assert contextvars.Context().run(thread) == []


def test_the_header_lists_queue_app_then_the_steps_in_milliseconds() -> None:
    assert server_timing(0.0021, 0.0456, [("save", 0.012), ("reserve", 0.0204)]) == \
        "queue;dur=2.1, app;dur=45.6, save;dur=12.0, reserve;dur=20.4"
    assert server_timing(0.0, 0.001) == "queue;dur=0.0, app;dur=1.0"
