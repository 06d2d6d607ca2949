"""`valerix backup ...`: snapshots, the daily ship, restore drills, and the mock backup service."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from valerix.backup import ledger, pgtools, retention, schedule, ship, snapshot, sources
from valerix.backup import restore as restore_mod
from valerix.backup.files import Busy
from valerix.backup.manifest import CorruptSnapshot
from valerix.backup.settings import BackupSettings
from valerix.kit import logs


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _out(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default))


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key or not item:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint=what)
        pairs[key] = item
    return pairs


@click.group()
@click.pass_context
def backup(ctx: click.Context) -> None:
    """Local snapshots, one shipment a day to the off-site service, verified restores."""
    settings = BackupSettings()
    logs.configure("backup", "WARNING")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)  # stdout carries the command's JSON answer
    ctx.obj = settings


@backup.command("snapshot")
@click.option("--no-prune", is_flag=True, help="Keep every snapshot (skip the retention policy).")
@click.pass_obj
def snapshot_cmd(settings: BackupSettings, no_prune: bool) -> None:
    """Dump every configured database (one consistent cut) and apply retention."""
    try:
        manifest = snapshot.take_exclusive(settings)
    except Busy as error:
        raise click.ClickException(str(error)) from None
    pruned = [] if no_prune else retention.prune(settings.snapshots_dir, datetime.now(UTC),
                                                 settings.backup_keep_all_hours * retention.HOUR,
                                                 settings.backup_keep_daily_days)
    _out({"snapshot": manifest.id, "folder": str(settings.snapshots_dir / manifest.id),
          "databases": {d.name: {"size": d.size, "sha256": d.sha256} for d in manifest.databases},
          "pruned": pruned})


@backup.command("ship")
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for another ship.")
@click.pass_obj
def ship_cmd(settings: BackupSettings, lock_wait: float) -> None:
    """Send the day's bundle in the day's single call (never a second one)."""
    try:
        result = ship.ship(settings, lock_wait=lock_wait)
    except Busy as error:
        raise click.ClickException(f"{error}; another ship is running, no call made") from None
    _out({"called": result.called, "state": result.state, "detail": result.detail,
          "snapshots": result.snapshots, "receipt": result.receipt, "nextCallAllowed": result.next_allowed})
    if result.called and result.state in ("unknown", "not_counted"):
        sys.exit(1)


@backup.command("restore")
@click.option("--snapshot", "snapshot_id", default=None, help="Local snapshot id, or 'latest'.")
@click.option("--bundle", "bundle_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--from-service", "remote", default=None, help="Bundle id on the backup service, or 'latest'.")
@click.option("--admin-url", envvar="BACKUP_RESTORE_ADMIN_URL", required=True,
              help="A role that may CREATE DATABASE on the target server (env BACKUP_RESTORE_ADMIN_URL).")
@click.option("--target", multiple=True, help="NAME=DATABASE, e.g. order=order_db_restored.")
@click.option("--owner", multiple=True, help="NAME=ROLE that will own the restored database and objects.")
@click.option("--only", multiple=True, help="Restore only these logical databases (order, inventory, bus).")
@click.option("--reconcile/--no-reconcile", "settle", default=True, show_default=True,
              help="Settle orders the cut split between order and inventory (see `backup reconcile`).")
@click.pass_obj
def restore_cmd(settings: BackupSettings, snapshot_id: str | None, bundle_file: Path | None,
                remote: str | None, admin_url: str, target: tuple[str, ...], owner: tuple[str, ...],
                only: tuple[str, ...], settle: bool) -> None:
    """Rebuild the databases into FRESH databases, after checking every checksum."""
    if sum(x is not None for x in (snapshot_id, bundle_file, remote)) > 1:
        raise click.UsageError("give one of --snapshot, --bundle, --from-service")
    with tempfile.TemporaryDirectory(prefix="valerix-restore-") as work:
        try:
            if remote is not None:
                bundle_file = sources.download(settings, remote, Path(work))
            folder = (sources.snapshot_in_bundle(bundle_file, snapshot_id or "latest", Path(work) / "x")
                      if bundle_file else sources.local_snapshot(settings, snapshot_id or "latest"))
            restored = restore_mod.restore(folder, admin_url, _pairs(target, "--target"),
                                           _pairs(owner, "--owner"), list(only) or None,
                                           settings.backup_pg_bin)
        except CorruptSnapshot as error:
            raise click.ClickException(f"refusing to restore a corrupted backup: {error}") from None
        except (FileNotFoundError, restore_mod.RestoreError, pgtools.PgToolError) as error:
            raise click.ClickException(str(error)) from None
    urls = {r.name: r.url for r in restored}
    settled = None
    if settle and {"order", "inventory"} <= set(urls):
        from valerix.backup.reconcile import reconcile

        settled = reconcile(urls["order"], urls["inventory"])
    _out({"restoredFrom": folder.name, "databases": restore_mod.summary(restored), "reconciled": settled})


@backup.command("reconcile")
@click.option("--order-url", required=True, help="The restored order database.")
@click.option("--inventory-url", required=True, help="The restored inventory database.")
def reconcile_cmd(order_url: str, inventory_url: str) -> None:
    """Settle orders a snapshot's cut split between order_db and inventory_db (after a restore)."""
    from valerix.backup.reconcile import reconcile

    _out({"reconciled": reconcile(order_url, inventory_url)})


@backup.command("verify")
@click.option("--snapshot", "snapshot_id", default=None, help="One local snapshot id (default: all).")
@click.option("--bundle", "bundle_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def verify_cmd(settings: BackupSettings, snapshot_id: str | None, bundle_file: Path | None) -> None:
    """Check manifests, sizes, sha256 and pg_restore --list; exit 1 on any problem."""
    pg_restore = pgtools.tool("pg_restore", settings.backup_pg_bin)
    results: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="valerix-verify-") as work:
        if bundle_file is not None:
            try:
                from valerix.backup import bundle

                index = bundle.extract(bundle_file, Path(work))
                folders = [Path(work) / str(i) for i in index.get("snapshots", [])]  # type: ignore[attr-defined]
            except bundle.BadBundle as error:
                folders, results[bundle_file.name] = [], [str(error)]
        elif snapshot_id:
            folders = [sources.local_snapshot(settings, snapshot_id)]
        else:
            folders = [s.folder for s in snapshot.list_snapshots(settings.snapshots_dir)]
        for folder in folders:
            results[folder.name] = snapshot.verify(folder, pg_restore)
    _out({"checked": len(results), "problems": {k: v for k, v in results.items() if v}})
    if any(results.values()):
        sys.exit(1)


@backup.command("status")
@click.option("--remote", is_flag=True, help="Also list the bundles the backup service holds.")
@click.pass_obj
def status_cmd(settings: BackupSettings, remote: bool) -> None:
    """What is where: local snapshots, the last ship, when the next call is allowed."""
    now = datetime.now(UTC)
    snaps = snapshot.list_snapshots(settings.snapshots_dir)
    book = ledger.load(ship.ledger_path(settings))
    last = ledger.last_call(book)
    _out({"backupDir": str(settings.backup_dir), "databases": list(settings.databases()),
          "snapshots": {"count": len(snaps), "oldest": snaps[0].id if snaps else None,
                        "latest": snaps[-1].id if snaps else None,
                        "nextDue": schedule.next_due(settings, now)},
          "service": settings.backup_service_url,
          "lastCall": {"day": last[0], **last[1]} if last else None,
          "lastShippedSnapshot": book["lastShipped"],
          "todaysCallUsed": ledger.spent_today(book, now),
          "nextCallAllowed": ledger.next_call_allowed(book, now),
          **({"remoteBundles": sources.remote_bundles(settings)} if remote else {})})


@backup.command("run-scheduled")
@click.pass_obj
def run_scheduled_cmd(settings: BackupSettings) -> None:
    """One pass (the CronJob): snapshot if due, ship if the day's call is unused."""
    _out(schedule.run_scheduled(settings))


@backup.command("scheduler")
@click.pass_obj
def scheduler_cmd(settings: BackupSettings) -> None:
    """run-scheduled every BACKUP_SNAPSHOT_INTERVAL until SIGTERM (under supervisor)."""
    logs.configure("backup", "INFO")
    schedule.loop(settings)


@backup.command("mock-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=25080, show_default=True, type=int)
@click.option("--data-dir", "--storage", "storage", default=Path(".valerix/backup-service"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Where received bundles are kept.")
@click.option("--max-bytes", default=1024**3, show_default=True, type=int)
@click.option("--allow-clock-header", is_flag=True, envvar="BACKUP_MOCK_ALLOW_CLOCK_HEADER",
              help="Honour X-Mock-Now (tests only: lets clients move the server's clock).")
def mock_server_cmd(host: str, port: int, storage: Path, max_bytes: int, allow_clock_header: bool) -> None:
    """The rate-limited off-site backup service (a mock): one upload per client per UTC day."""
    from valerix.backup.mock_server import serve

    logs.configure("backup-mock", "INFO")
    serve(storage, host, port, max_bytes, allow_clock_header)
