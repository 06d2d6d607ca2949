"""Group commit: the units of work of concurrent callers done as one transaction.

Under load, many request threads each want a short transaction on the same few rows (every
reservation locks the same hot products, and holds them through its commit's fsync). Here one
of the callers, the leader, takes everything queued, runs it as one batch, hands each caller
its own result and passes the lead to the next caller waiting. There is no thread of its own
and no timer: a batch is whatever arrived while the previous one ran, so a caller alone waits
for nothing, and under load the cost of a transaction is shared by all of its batch.

Each item stays all-or-nothing on its own: when a batch fails, each of its items is run again
alone, so a bad item fails only its own caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram

T = TypeVar("T")
R = TypeVar("R")

BATCH_SIZE = Histogram(
    "valerix_group_commit_batch_size", "Callers served by one transaction of a group commit", ["batch"],
    buckets=(1, 2, 4, 8, 16, 32, 64))


class _Slot(Generic[T, R]):
    __slots__ = ("error", "item", "leads", "ready", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.leads = False
        self.ready = threading.Event()

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit(Generic[T, R]):
    """``submit(item)`` returns ``run([item, ...])``'s result for that item. ``run`` does one
    transaction for the batch and returns a result per item, in order."""

    def __init__(self, name: str, run: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 64) -> None:
        self.name = name
        self._run = run
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._leading = False

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            leads = slot.leads = not self._leading
            self._leading = True
        if not leads:
            slot.ready.wait()
        if slot.leads:
            self._lead()
        return slot.outcome()

    def submit_all(self, items: Sequence[T]) -> list[R | Exception]:
        """``submit`` for several items at once (they join the queue together, so they share a
        batch when they fit): each item's result, or the exception that failed it."""
        slots: list[_Slot[T, R]] = [_Slot(item) for item in items]
        if not slots:
            return []
        with self._lock:
            self._queue.extend(slots)
            if not self._leading:   # then the queue was empty: this caller's first slot is its head
                slots[0].leads = self._leading = True
        for slot in slots:
            if not slot.leads:
                slot.ready.wait()
            if slot.leads:
                self._lead()
        outcomes: list[R | Exception] = []
        for slot in slots:
            if slot.error is not None and not isinstance(slot.error, Exception):
                raise slot.error
            outcomes.append(slot.error if slot.error is not None else slot.result)  # type: ignore[arg-type]
        return outcomes

    def _lead(self) -> None:
        """Runs the queue's head (this caller's slot first) and hands on the lead."""
        with self._lock:
            batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
        try:
            self._run_batch(batch)
        finally:
            with self._lock:
                if self._queue:
                    head = self._queue[0]
                    head.leads = True
                    head.ready.set()
                else:
                    self._leading = False
            for slot in batch[1:]:
                slot.ready.set()

    def _run_batch(self, batch: list[_Slot[T, R]]) -> None:
        BATCH_SIZE.labels(batch=self.name).observe(len(batch))
        try:
            results = run_together(self._run, [slot.item for slot in batch], self.name)
        except BaseException as error:
            for slot in batch:
                slot.error = error
            raise
        for slot, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                slot.error = result
            else:
                slot.result = result


def run_together(run: Callable[[Sequence[T]], Sequence[R]], items: Sequence[T],
                 name: str = "batch") -> list[R | Exception]:
    """``run(items)`` as one transaction; if it fails, each item again alone, so one bad item
    fails only itself. Each item's result, or the exception that ended it."""
    try:
        results = run(items)
        if len(results) != len(items):
            raise RuntimeError(f"group commit {name}: {len(results)} results for {len(items)} items")
        return list(results)
    except Exception as error:
        if len(items) == 1:
            return [error]
    return [_alone(run, item) for item in items]


def _alone(run: Callable[[Sequence[T]], Sequence[R]], item: T) -> R | Exception:
    try:
        return run([item])[0]
    except Exception as error:
        return error
