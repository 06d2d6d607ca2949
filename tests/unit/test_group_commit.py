"""Group commit: concurrent callers share one run, each gets its own result, and one bad item
fails only its own caller."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from valerix.kit.group_commit import GroupCommit


def test_a_caller_alone_runs_a_batch_of_one():
    batches: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        return [item * 10 for item in items]

    commit = GroupCommit("t", run)
    assert [commit.submit(1), commit.submit(2)] == [10, 20]
    assert batches == [[1], [2]]


def _held_first_batch() -> tuple[GroupCommit[int, int], list[list[int]], threading.Event, threading.Event]:
    """A group commit whose batch starting with item 0 runs until ``release_first`` is set
    (``first_running`` says it started); ``batches`` records every batch."""
    first_running, release_first = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if items[0] == 0:
            first_running.set()
            assert release_first.wait(5)
        return [item * 10 for item in items]

    return GroupCommit("t", run), batches, first_running, release_first


def test_callers_arriving_while_a_batch_runs_share_the_next_one():
    commit, batches, first_running, release_first = _held_first_batch()
    with ThreadPoolExecutor(max_workers=9) as pool:
        first = pool.submit(commit.submit, 0)
        assert first_running.wait(5)
        rest = [pool.submit(commit.submit, i) for i in range(1, 9)]
        # every later caller is queued behind the running batch before it ends
        while len(commit._queue) < 8:
            threading.Event().wait(0.01)
        release_first.set()
        assert first.result(5) == 0
        assert [f.result(5) for f in rest] == [i * 10 for i in range(1, 9)]
    assert batches[0] == [0]
    assert sorted(batches[1]) == list(range(1, 9)) and len(batches) == 2


def test_a_batch_is_at_most_max_batch_and_the_rest_follow():
    gate = threading.Event()
    batches: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        gate.wait(5)
        return list(items)

    commit = GroupCommit("t", run, max_batch=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(commit.submit, 0)]
        while not batches:
            threading.Event().wait(0.01)
        futures += [pool.submit(commit.submit, i) for i in range(1, 8)]
        while len(commit._queue) < 7:
            threading.Event().wait(0.01)
        gate.set()
        assert [f.result(5) for f in futures] == list(range(8))
    assert [len(b) for b in batches] == [1, 3, 3, 1]


def test_a_failing_batch_runs_each_item_alone_so_only_the_bad_one_fails():
    gate = threading.Event()
    calls: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if items == [0]:
            gate.wait(5)
        if 13 in items:
            raise ValueError("thirteen")
        return [item + 1 for item in items]

    commit = GroupCommit("t", run)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(commit.submit, 0)
        while not calls:
            threading.Event().wait(0.01)
        others = {i: pool.submit(commit.submit, i) for i in (12, 13, 14)}
        while len(commit._queue) < 3:
            threading.Event().wait(0.01)
        gate.set()
        assert first.result(5) == 1
        assert others[12].result(5) == 13 and others[14].result(5) == 15
        with pytest.raises(ValueError, match="thirteen"):
            others[13].result(5)
    assert sorted(calls[1]) == [12, 13, 14]
    assert sorted(calls[2:]) == [[12], [13], [14]]


def test_a_run_returning_the_wrong_number_of_results_fails_its_callers():
    commit = GroupCommit("t", lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        commit.submit(1)


def test_the_lead_passes_on_after_a_failure_so_nobody_waits_forever():
    def run(items: Sequence[int]) -> list[int]:
        # A batch fails as a whole if any item in it is bad, as one transaction does.
        if any(item % 2 for item in items):
            raise ValueError("odd")
        return list(items)

    commit = GroupCommit("t", run)
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(commit.submit, i) for i in range(200)]
        outcomes = [f.exception(10) is None for f in futures]
    assert outcomes == [i % 2 == 0 for i in range(200)]
    assert not commit._leading and not commit._queue


def test_submit_all_answers_each_item_in_order_and_a_bad_item_fails_only_itself():
    batches: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if 3 in items:
            raise ValueError("three")
        return [item * 10 for item in items]

    commit = GroupCommit("t", run, max_batch=4)
    outcomes = commit.submit_all([1, 2, 3, 4, 5, 6])
    assert outcomes[:2] == [10, 20] and isinstance(outcomes[2], ValueError) and outcomes[3:] == [40, 50, 60]
    # four items fit a batch: it failed, so each ran alone; the other two shared the next batch
    assert batches == [[1, 2, 3, 4], [1], [2], [3], [4], [5, 6]]
    assert commit.submit_all([]) == [] and commit.submit(7) == 70


def test_submit_all_shares_a_batch_with_callers_queued_beside_it():
    commit, batches, first_running, release_first = _held_first_batch()
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(commit.submit, 0)
        assert first_running.wait(5)
        together = pool.submit(commit.submit_all, [1, 2, 3])
        alone = pool.submit(commit.submit, 4)
        while len(commit._queue) < 4:
            threading.Event().wait(0.01)
        release_first.set()
        assert first.result(5) == 0 and together.result(5) == [10, 20, 30] and alone.result(5) == 40
    assert batches[0] == [0] and sorted(batches[1]) == [1, 2, 3, 4] and len(batches) == 2
