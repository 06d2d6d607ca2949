"""Restores a snapshot into FRESH databases: checksums first, then pg_restore in one transaction
per database, then the restored row counts and schema version are compared with the manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from valerix.backup import manifest as mf
from valerix.backup import pgtools, snapshot
from valerix.kit.db import connect_admin

log = logging.getLogger(__name__)
MAX_IDENTIFIER = 63


class RestoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class Restored:
    name: str
    database: str
    url: str
    rows: int
    schema_version: str | None


def database_url(admin_url: str, database: str) -> str:
    params = {k: str(v) for k, v in conninfo_to_dict(admin_url).items() if v is not None}
    params["dbname"] = database
    return make_conninfo(**params)


def _check(url: str, dump: mf.DatabaseDump) -> int:
    with psycopg.connect(url, connect_timeout=10) as conn:
        for table, expected in dump.row_counts.items():
            schema, _, name = table.rpartition(".")
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema or "public"),
                                                                 sql.Identifier(name))
            row = conn.execute(query).fetchone()
            if not row or row[0] != expected:
                found = row[0] if row else None
                raise RestoreError(f"{dump.name}: {table} has {found} rows, manifest says {expected}")
        if dump.schema_version is not None:
            row = conn.execute("SELECT max(name) FROM schema_migrations").fetchone()
            if not row or row[0] != dump.schema_version:
                raise RestoreError(f"{dump.name}: schema version {row} != {dump.schema_version}")
    return sum(dump.row_counts.values())


def restore(folder: Path, admin_url: str, targets: dict[str, str], owners: dict[str, str],
            only: list[str] | None = None, pg_bin: str = "auto") -> list[Restored]:
    pg_restore = pgtools.tool("pg_restore", pg_bin)
    problems = snapshot.verify(folder, pg_restore)
    if problems:
        raise mf.CorruptSnapshot("; ".join(problems))
    manifest = mf.load(folder)
    dumps = [d for d in manifest.databases if not only or d.name in only]
    if only and {d.name for d in dumps} != set(only):
        raise RestoreError(f"the snapshot has {[d.name for d in manifest.databases]}, not {only}")
    stamp = manifest.id[:15].lower()
    names = {d.name: targets.get(d.name) or f"{d.database}_restored_{stamp}" for d in dumps}
    for name, database in names.items():
        if not 0 < len(database.encode()) <= MAX_IDENTIFIER:  # PostgreSQL would silently truncate it
            raise RestoreError(f"{name}: database name {database!r} must be 1-{MAX_IDENTIFIER} bytes")
    with connect_admin(admin_url) as admin:
        for name, database in names.items():
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                raise RestoreError(f"{name}: database {database!r} already exists; "
                                   "restore only into fresh databases")
    restored = []
    for dump in dumps:
        restored.append(_restore_one(folder, dump, admin_url, names[dump.name], owners.get(dump.name),
                                     pg_restore))
    return restored


def _restore_one(folder: Path, dump: mf.DatabaseDump, admin_url: str, database: str, owner: str | None,
                 pg_restore: Path) -> Restored:
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
    if owner:
        create += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
    with connect_admin(admin_url) as admin:
        admin.execute(create)
    url = database_url(admin_url, database)
    args: list[str] = ["--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges"]
    if owner:
        args.append(f"--role={owner}")  # objects are created by (so owned by) the service role
    try:
        pgtools.run(pg_restore, [*args, str(folder / dump.file)], url=url)
        rows = _check(url, dump)
    except BaseException:
        with connect_admin(admin_url) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        raise
    log.info("database restored", extra={"database": database, "from": dump.file, "rows": rows})
    return Restored(dump.name, database, url, rows, dump.schema_version)


def summary(restored: list[Restored]) -> list[dict[str, Any]]:
    return [{"name": r.name, "database": r.database, "rows": r.rows, "schemaVersion": r.schema_version}
            for r in restored]
