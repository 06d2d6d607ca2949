import threading
import time

import httpx
import pytest

from valerix.kit.ports import free_port, wait_listening
from valerix.kit.worker_runtime import every, run_worker


def start(loops, checks, stop, closed):
    port = free_port()
    outcome = {}

    def run():
        try:
            run_worker("test", loops, checks, metrics_port=port, host="127.0.0.1", stop=stop,
                       on_stop=[lambda: closed.append("closed")])
            outcome["exit"] = 0
        except SystemExit as exit_:
            outcome["exit"] = exit_.code

    thread = threading.Thread(target=run)
    thread.start()
    wait_listening(port)
    return thread, f"http://127.0.0.1:{port}", outcome


def test_loops_run_health_and_metrics_are_served_and_stop_is_graceful():
    stop, closed, finished = threading.Event(), [], []
    ticks = []

    def steady(stop):
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.05)
        finished.append("steady")

    thread, base, outcome = start({"steady": steady}, {"database": lambda: None}, stop, closed)
    try:
        assert httpx.get(f"{base}/health/live").status_code == 200
        health = httpx.get(f"{base}/health")
        assert health.status_code == 200 and health.json()["dependencies"] == {"database": "ok"}
        assert "valerix_dependency_up" in httpx.get(f"{base}/metrics").text
        assert ticks
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert (finished, closed, outcome) == (["steady"], ["closed"], {"exit": 0})


def test_a_crashed_loop_stops_the_worker_with_status_1():
    stop, closed, finished = threading.Event(), [], []

    def steady(stop):
        stop.wait()
        finished.append("steady")

    def broken(stop):
        time.sleep(0.2)
        raise RuntimeError("bug")

    thread, _, outcome = start({"steady": steady, "broken": broken}, {}, stop, closed)
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert (finished, closed, outcome) == (["steady"], ["closed"], {"exit": 1})


def test_every_runs_a_task_periodically_and_survives_its_failures():
    calls = []

    def task():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("first run fails")

    stop = threading.Event()
    thread = threading.Thread(target=every(0.05, task), args=(stop,))
    thread.start()
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=2)
    assert not thread.is_alive() and len(calls) >= 3


pytestmark = pytest.mark.timeout(60)
