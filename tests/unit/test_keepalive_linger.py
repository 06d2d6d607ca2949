"""When a gunicorn thread keeps a kept-alive connection for its next request (the linger) and
when it hands it back to the poller (valerix.kit.gunicorn_app.ArrivalStampingWorker)."""

from __future__ import annotations

from types import SimpleNamespace

from valerix.kit.gunicorn_app import ArrivalStampingWorker


def worker(threads: int, holding: int, waiting: int) -> ArrivalStampingWorker:
    stub = object.__new__(ArrivalStampingWorker)   # the decision only: no gunicorn arbiter
    stub.cfg = SimpleNamespace(threads=threads)
    stub._holding, stub._waiting = holding, waiting
    return stub


def test_a_thread_lingers_while_every_queued_connection_has_a_free_thread():
    # Under load a connection is queued for a moment most of the time; with threads to spare,
    # handing every kept-alive connection back to the poller then cost most requests a round
    # of hand-offs (the old rule: linger only when none is queued).
    assert worker(threads=160, holding=25, waiting=3)._thread_free_for_each_waiting()
    assert worker(threads=4, holding=2, waiting=2)._thread_free_for_each_waiting()


def test_a_thread_hands_its_connection_back_when_a_queued_one_would_find_no_thread():
    assert not worker(threads=4, holding=2, waiting=3)._thread_free_for_each_waiting()
    assert not worker(threads=1, holding=1, waiting=1)._thread_free_for_each_waiting()
