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

    def outcome(self) -> R | Exception:
        """The result, or the Exception that failed the item; anything else that ended the
        batch (KeyboardInterrupt, SystemExit) is raised."""
        if self.error is not None and not isinstance(self.error, Exception):
            raise self.error
        return self.error if self.error is not None else self.result  # type: ignore[return-value]


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
        outcome = self.submit_all((item,))[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

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
        return [slot.outcome() for slot in slots]

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
            results = self._run([slot.item for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"group commit {self.name}: {len(results)} results for {len(batch)} items")
        except Exception as error:
            if len(batch) == 1:
                batch[0].error = error
                return
            for slot in batch:  # one bad item must not fail the others: each alone
                self._run_alone(slot)
            return
        except BaseException as error:
            for slot in batch:
                slot.error = error
            raise
        for slot, result in zip(batch, results, strict=True):
            slot.result = result

    def _run_alone(self, slot: _Slot[T, R]) -> None:
        try:
            slot.result = self._run([slot.item])[0]
        except Exception as error:
            slot.error = error
