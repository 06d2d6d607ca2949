import threading
import time

import httpx

from valerix.kit.ports import free_port, wait_listening
from valerix.kit.worker_runtime import every, run_worker


def test_loops_run_crashed_loops_restart_health_reports_and_stop_is_graceful():
    stop = threading.Event()
    ticks = {"steady": 0, "flaky": 0}
    finished = []

    def steady(stop):
        while not stop.is_set():
            ticks["steady"] += 1
            stop.wait(0.05)
        finished.append("steady")

    def flaky(stop):
        ticks["flaky"] += 1
        if ticks["flaky"] == 1:
            raise RuntimeError("first run fails")
        stop.wait()
        finished.append("flaky")

    port = free_port()
    worker = threading.Thread(target=run_worker, args=("test", {"steady": steady, "flaky": flaky},
                                                       {"database": lambda: None}),
                              kwargs={"metrics_port": port, "host": "127.0.0.1", "stop": stop,
                                      "on_stop": [lambda: finished.append("closed")]})
    worker.start()
    try:
        wait_listening(port)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health/live").status_code == 200
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)  # "flaky" is down until its restart after the back-off
        body = httpx.get(f"{base}/health").json()
        assert body["dependencies"] == {"database": "ok", "loops": "ok"}
        assert ticks["flaky"] == 2 and ticks["steady"] > 0
        assert "valerix_dependency_up" in httpx.get(f"{base}/metrics").text
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert sorted(finished[:2]) == ["flaky", "steady"] and finished[2:] == ["closed"]


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
