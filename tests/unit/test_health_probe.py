"""Health probes: answers cached, and one probe's callers never take another probe's threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from valerix.kit.health import Probe


def test_a_cached_answer_costs_the_dependency_one_check():
    calls = []
    probe = Probe("test", {"database": lambda: calls.append(1)}, name="t", ttl=60.0)
    with ThreadPoolExecutor(16) as callers:
        answers = list(callers.map(lambda _: probe.run(quiet=True), range(200)))
    assert len(calls) == 1
    assert all(healthy and body["dependencies"] == {"database": "ok"} for healthy, body in answers)


def test_an_expired_answer_is_checked_again():
    calls = []
    probe = Probe("test", {"database": lambda: calls.append(1)}, name="t", ttl=0.0)
    probe.run(quiet=True)
    probe.run(quiet=True)
    assert len(calls) == 2


def test_a_hanging_dependency_of_one_probe_leaves_the_other_answering():
    release = threading.Event()
    everything = Probe("test", {"database": lambda: None, "inventory": lambda: release.wait(5) and None},
                       name="all", ttl=0.0, timeout=0.2)
    readiness = Probe("test", {"database": lambda: None}, name="ready", ttl=0.0, timeout=0.2)
    try:
        with ThreadPoolExecutor(8) as flood:
            floods = [flood.submit(everything.run, True) for _ in range(40)]
            for _ in range(20):
                healthy, body = readiness.run(quiet=True)
                assert healthy and body["dependencies"] == {"database": "ok"}
            assert not any(f.result()[0] for f in floods)  # the hanging one is reported, not waited for
    finally:
        release.set()


def test_an_old_answer_is_never_served_while_a_refresh_is_under_way():
    """The background watch refreshing every few seconds must not make a request see an answer
    from before the database died: past ttl + timeout, the caller waits for the fresh one."""
    healthy, entered, release = threading.Event(), threading.Event(), threading.Event()
    healthy.set()

    def database() -> None:
        if not healthy.is_set():
            entered.set()
            release.wait(5)  # hangs: the refresh ends at the probe's timeout
            raise ConnectionError("down")

    probe = Probe("test", {"database": database}, name="t", ttl=0.05, timeout=0.5)
    assert probe.run(quiet=True)[0]
    healthy.clear()
    time.sleep(0.6)  # the healthy answer is now older than ttl + timeout
    refresher = threading.Thread(target=probe.run, args=(True,))
    refresher.start()
    try:
        assert entered.wait(5)
        assert not probe.run(quiet=True)[0]
    finally:
        release.set()
        refresher.join()


@pytest.mark.parametrize("how", ["executor", "interpreter"])
def test_the_watch_ends_quietly_when_the_interpreter_shuts_its_executors_down(caplog, monkeypatch, how):
    import concurrent.futures.thread

    from valerix.kit.health import watch

    probe = Probe("test", {"database": lambda: None}, name="t", ttl=0.0)
    if how == "executor":
        probe._executor.shutdown()  # what interpreter exit does to every executor
    else:  # what every executor says once the interpreter has begun to exit
        monkeypatch.setattr(concurrent.futures.thread, "_shutdown", True)
    thread = watch(probe, interval=0.01)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert "health watch failed" not in caplog.text
