"""run-scheduled decisions with an injected clock: snapshot when due, ship not before BACKUP_SHIP_AT."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from valerix.backup import schedule
from valerix.backup.settings import BackupSettings
from valerix.backup.snapshot import ID_FORMAT
from valerix.kit.ports import free_port

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def settings_with_snapshot(tmp_path, taken: datetime, **extra) -> BackupSettings:
    nobody = f"http://127.0.0.1:{free_port()}"
    settings = BackupSettings(backup_dir=tmp_path, order_database_url=None, inventory_database_url=None,
                              bus_database_url=None, backup_service_url=nobody, **extra)
    folder = settings.snapshots_dir / taken.strftime(ID_FORMAT)
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    return settings


def test_snapshot_is_due_after_the_interval_less_a_little_slack(tmp_path):
    settings = settings_with_snapshot(tmp_path, NOW - timedelta(minutes=10))
    assert not schedule.snapshot_due(settings, NOW)
    assert schedule.snapshot_due(settings, NOW + timedelta(minutes=4))     # 14 min >= 0.9 * 15 min
    assert schedule.next_due(settings, NOW) == NOW + timedelta(minutes=3, seconds=30)


def test_ship_waits_for_the_configured_time_of_day_then_tries_once(tmp_path):
    settings = settings_with_snapshot(tmp_path, NOW - timedelta(minutes=1), backup_ship_at=time(23, 30))
    report = schedule.run_scheduled(settings, NOW)
    assert report == {"snapshot": None, "pruned": [], "ship": "not before 23:30:00 UTC"}
    late = NOW.replace(hour=23, minute=31)
    settings.backup_snapshot_interval = timedelta(days=1)  # no snapshot due: no database needed
    report = schedule.run_scheduled(settings, late)
    assert report["ship"]["called"] is True
    assert report["ship"]["state"] == "not_counted"                      # nobody listens: still free
