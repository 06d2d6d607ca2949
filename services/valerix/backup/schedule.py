"""run_scheduled(): snapshot when one is due, then ship if the day's call is still free.
The CronJob runs it once; `valerix backup scheduler` runs it every BACKUP_SNAPSHOT_INTERVAL."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from typing import Any

from valerix.backup import ledger, retention, ship, snapshot
from valerix.backup.files import Busy
from valerix.backup.settings import BackupSettings

log = logging.getLogger(__name__)
DUE_SLACK = 0.9  # a cron tick a little early must not skip a whole interval


def snapshot_due(settings: BackupSettings, now: datetime) -> bool:
    existing = snapshot.list_snapshots(settings.snapshots_dir)
    if not existing:
        return True
    return (now - existing[-1].taken_at) >= settings.backup_snapshot_interval * DUE_SLACK


def run_scheduled(settings: BackupSettings, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    report: dict[str, Any] = {"snapshot": None, "pruned": [], "ship": None}
    if snapshot_due(settings, now):
        try:
            report["snapshot"] = snapshot.take_exclusive(settings).id
        except Busy:
            report["snapshot"] = "skipped: another snapshot is running"
        report["pruned"] = retention.prune(settings.snapshots_dir, now,
                                           settings.backup_keep_all_hours * retention.HOUR,
                                           settings.backup_keep_daily_days)
    book = ledger.load(ship.ledger_path(settings))
    if now.astimezone(UTC).time() < settings.backup_ship_at:
        report["ship"] = f"not before {settings.backup_ship_at.isoformat()} UTC"
    elif ledger.spent_today(book, now):
        report["ship"] = f"not due until {ledger.next_call_allowed(book, now).isoformat()}"
    elif snapshot.list_snapshots(settings.snapshots_dir):
        try:
            result = ship.ship(settings, now=now, lock_wait=0)
            report["ship"] = {"called": result.called, "state": result.state, "detail": result.detail}
        except Busy:
            report["ship"] = "skipped: another ship is running"
    return report


def loop(settings: BackupSettings) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    interval = settings.backup_snapshot_interval.total_seconds()
    while not stop.is_set():
        try:
            log.info("scheduled run", extra={"report": run_scheduled(settings)})
        except Exception:
            log.exception("scheduled run failed; trying again next interval")
        stop.wait(interval)


def next_due(settings: BackupSettings, now: datetime) -> datetime:
    existing = snapshot.list_snapshots(settings.snapshots_dir)
    return existing[-1].taken_at + settings.backup_snapshot_interval * DUE_SLACK if existing else now
