"""Retention: keep every snapshot younger than ``keep_all``, then the newest of each UTC day for
``daily_days`` days, and always the newest snapshot (so a stopped scheduler never empties the shelf)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path

from valerix.backup.snapshot import list_snapshots

HOUR = timedelta(hours=1)
STALE_TEMP = 6 * HOUR


def to_keep(taken: Iterable[datetime], now: datetime, keep_all: timedelta = timedelta(hours=24),
            daily_days: int = 14) -> set[datetime]:
    times = sorted(set(taken))
    if not times:
        return set()
    keep = {times[-1]}
    newest_per_day: dict[date, datetime] = {}
    for t in times:
        age = now - t
        if age < keep_all:
            keep.add(t)
        if age < timedelta(days=daily_days):
            newest_per_day[t.date()] = t  # times are sorted, so the last one wins
    return keep | set(newest_per_day.values())


def prune(snapshots_dir: Path, now: datetime, keep_all: timedelta, daily_days: int) -> list[str]:
    """Deletes what the policy drops (and temp folders a crash left behind); returns the deleted ids."""
    snapshots = list_snapshots(snapshots_dir)
    keep = to_keep((s.taken_at for s in snapshots), now, keep_all, daily_days)
    deleted = []
    for snapshot in snapshots:
        if snapshot.taken_at not in keep:
            shutil.rmtree(snapshot.folder)
            deleted.append(snapshot.id)
    for leftover in snapshots_dir.glob(".tmp-*") if snapshots_dir.is_dir() else []:
        if time.time() - leftover.stat().st_mtime > STALE_TEMP.total_seconds():
            shutil.rmtree(leftover, ignore_errors=True)
    return deleted
