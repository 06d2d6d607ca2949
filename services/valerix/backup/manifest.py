"""The snapshot manifest: what was dumped, how to check it, and what the cut means."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from valerix.backup.files import sha256_file

FORMAT = "valerix-snapshot/1"
MANIFEST = "manifest.json"
CONSISTENCY_NOTE = (
    "Each database dump is a single consistent MVCC snapshot. The snapshots of all databases are "
    "exported back to back (order, then inventory, then bus) before any dump starts, so they are "
    "milliseconds apart (cut.startedAt..cut.finishedAt), never a dump's duration. Across databases "
    "the state is what the reliability model already tolerates after a crash: in-flight orders "
    "(pending / pending_verification, unsent outbox rows) finish through the sweeper and the "
    "idempotent verification once the workers run on the restored databases. Inventory is never "
    "older than orders, so a confirmed order's reservation is always in the restored inventory unless "
    "it was released inside the cut window."
)


class DatabaseDump(BaseModel):
    name: str                          # logical: order, inventory, bus
    database: str                      # the database's own name at dump time
    file: str
    size: int
    sha256: str
    schema_version: str | None
    server_version: str
    exported_at: datetime
    row_counts: dict[str, int] = Field(default_factory=dict)


class Cut(BaseModel):
    started_at: datetime
    finished_at: datetime
    order: list[str]
    note: str = CONSISTENCY_NOTE


class Manifest(BaseModel):
    format: str = FORMAT
    id: str
    created_at: datetime
    pg_dump_version: str
    cut: Cut
    databases: list[DatabaseDump]

    def database(self, name: str) -> DatabaseDump:
        for dump in self.databases:
            if dump.name == name:
                return dump
        raise KeyError(name)


class CorruptSnapshot(Exception):
    """A snapshot whose manifest or files do not check out; never restore it."""


def load(folder: Path) -> Manifest:
    try:
        return Manifest.model_validate(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CorruptSnapshot(f"{folder}: no {MANIFEST}") from None
    except (ValueError, ValidationError) as error:
        raise CorruptSnapshot(f"{folder}: unreadable {MANIFEST}: {error}") from None


def check_files(folder: Path, manifest: Manifest) -> list[str]:
    """Problems found comparing the files with the manifest (empty when all is well)."""
    problems: list[str] = []
    for dump in manifest.databases:
        path = folder / dump.file
        if Path(dump.file).name != dump.file:
            problems.append(f"{dump.name}: file name {dump.file!r} leaves the snapshot folder")
        elif not path.is_file():
            problems.append(f"{dump.name}: {dump.file} is missing")
        elif path.stat().st_size != dump.size:
            size = path.stat().st_size
            problems.append(f"{dump.name}: {dump.file} is {size} bytes, manifest says {dump.size}")
        elif sha256_file(path) != dump.sha256:
            problems.append(f"{dump.name}: {dump.file} sha256 does not match the manifest")
    return problems
