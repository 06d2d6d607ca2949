"""Takes a snapshot: one consistent cut across the service databases, dumped with pg_dump,
checksummed, and published atomically (a temp folder renamed into place)."""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from valerix.backup import manifest as mf
from valerix.backup import pgtools
from valerix.backup.files import exclusive, fsync_dir, fsync_file, sha256_file, write_json_atomic
from valerix.backup.settings import BackupSettings

log = logging.getLogger(__name__)
ID_FORMAT = "%Y%m%dT%H%M%S%fZ"
TABLES = """SELECT schemaname, tablename FROM pg_catalog.pg_tables
            WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"""


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Snapshot:
    id: str
    folder: Path

    @property
    def taken_at(self) -> datetime:
        return datetime.strptime(self.id, ID_FORMAT).replace(tzinfo=UTC)


def list_snapshots(snapshots_dir: Path) -> list[Snapshot]:
    """Published snapshots, oldest first (the id is a UTC timestamp, so name order is time order)."""
    if not snapshots_dir.is_dir():
        return []
    found = []
    for folder in snapshots_dir.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            datetime.strptime(folder.name, ID_FORMAT)
        except ValueError:
            continue
        found.append(Snapshot(folder.name, folder))
    return sorted(found, key=lambda s: s.id)


def _describe(conn: psycopg.Connection[Any]) -> tuple[str, str, str | None, dict[str, int]]:
    """Database name, server version, schema version and row counts, all inside the exported snapshot."""
    row = conn.execute("SELECT current_database(), current_setting('server_version')").fetchone()
    name, server = row if row else ("", "")
    counts: dict[str, int] = {}
    for schema, table in conn.execute(TABLES).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        row = conn.execute(query).fetchone()
        counts[table if schema == "public" else f"{schema}.{table}"] = int(row[0]) if row else 0
    version = None
    if "schema_migrations" in counts:
        row = conn.execute("SELECT max(name) FROM schema_migrations").fetchone()
        version = row[0] if row else None
    return str(name), str(server), version, counts


def take(settings: BackupSettings, now: datetime | None = None) -> mf.Manifest:
    databases = settings.databases()
    if not databases:
        raise BackupError("no database configured: set ORDER_DATABASE_URL, INVENTORY_DATABASE_URL "
                          "or BUS_DATABASE_URL")
    pg_dump = pgtools.tool("pg_dump", settings.backup_pg_bin)
    created = now or datetime.now(UTC)
    snapshot_id = created.strftime(ID_FORMAT)
    settings.snapshots_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.snapshots_dir / f".tmp-{snapshot_id}-{os.getpid()}"
    tmp.mkdir()
    try:
        with ExitStack() as stack:
            # The exporting transactions must outlive every dump that imports their snapshot.
            keep_open = "-c idle_in_transaction_session_timeout=0 -c statement_timeout=0"
            conns = {name: stack.enter_context(psycopg.connect(url, connect_timeout=10, options=keep_open))
                     for name, url in databases.items()}
            for conn in conns.values():
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
            # Connections are open before the cut starts, so the cut spans only the exports.
            exported: dict[str, tuple[psycopg.Connection[Any], str, datetime]] = {}
            cut_started = datetime.now(UTC)
            for name, conn in conns.items():
                row = conn.execute("SELECT pg_export_snapshot()").fetchone()
                exported[name] = (conn, str(row[0]) if row else "", datetime.now(UTC))
            cut = mf.Cut(started_at=cut_started, finished_at=datetime.now(UTC), order=list(exported))
            dumps = []
            for name, (conn, snapshot, exported_at) in exported.items():
                database, server, schema_version, counts = _describe(conn)
                path = tmp / f"{name}.dump"
                pgtools.run(pg_dump, ["--format=custom", f"--snapshot={snapshot}", "--lock-wait-timeout=30s",
                                      f"--file={path}"], url=databases[name])
                fsync_file(path)
                dumps.append(mf.DatabaseDump(
                    name=name, database=database, file=path.name, size=path.stat().st_size,
                    sha256=sha256_file(path), schema_version=schema_version, server_version=server,
                    exported_at=exported_at, row_counts=counts))
        manifest = mf.Manifest(id=snapshot_id, created_at=created, pg_dump_version=pgtools.version(pg_dump),
                               cut=cut, databases=dumps)
        write_json_atomic(tmp / mf.MANIFEST, manifest.model_dump(mode="json"))
        final = settings.snapshots_dir / snapshot_id
        os.rename(tmp, final)
        fsync_dir(settings.snapshots_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("snapshot taken", extra={"snapshot": snapshot_id, "databases": list(databases),
                                      "bytes": sum(d.size for d in dumps)})
    return manifest


def take_exclusive(settings: BackupSettings, now: datetime | None = None) -> mf.Manifest:
    """One snapshot at a time per backup directory (a second scheduler gets files.Busy)."""
    with exclusive(settings.backup_dir / "snapshot.lock"):
        return take(settings, now)


def verify(folder: Path, pg_restore: Path) -> list[str]:
    """Problems with a snapshot folder: manifest, sizes, checksums, and pg_restore --list of each dump."""
    try:
        manifest = mf.load(folder)
    except mf.CorruptSnapshot as error:
        return [str(error)]
    problems = mf.check_files(folder, manifest)
    if not problems:
        for dump in manifest.databases:
            try:
                pgtools.run(pg_restore, ["--list", str(folder / dump.file)])
            except pgtools.PgToolError as error:
                problems.append(f"{dump.name}: {error}")
    return problems
