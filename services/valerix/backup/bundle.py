"""The day's bundle: one uncompressed tar (the dumps are already compressed) holding every
snapshot taken since the last confirmed shipment, thinned when it would be too large."""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from valerix.backup.files import fsync_dir, fsync_file, sha256_file
from valerix.backup.snapshot import Snapshot

FORMAT = "valerix-bundle/1"
INDEX = "bundle.json"
MEMBER = re.compile(r"^(bundle\.json|\d{8}T\d{12}Z/(manifest\.json|[a-z][a-z0-9_]{0,30}\.dump))$")


@dataclass(frozen=True)
class Candidate:
    id: str           # snapshot id (a sortable UTC timestamp)
    size: int


def select(snapshots: Sequence[Candidate], last_shipped: str | None, max_bytes: int) -> list[str]:
    """Snapshot ids for the next bundle: all newer than the last confirmed shipment; if that is over
    ``max_bytes``, the newest of each hour; if still over, only the newest. Oldest first."""
    fresh = sorted((s for s in snapshots if last_shipped is None or s.id > last_shipped), key=lambda s: s.id)
    if not fresh or sum(s.size for s in fresh) <= max_bytes:
        return [s.id for s in fresh]
    hourly = {s.id[:11]: s for s in fresh}  # YYYYMMDDTHH -> newest snapshot of that hour
    thinned = sorted(hourly.values(), key=lambda s: s.id)
    if sum(s.size for s in thinned) <= max_bytes:
        return [s.id for s in thinned]
    return [fresh[-1].id]


def snapshot_size(snapshot: Snapshot) -> int:
    return sum(p.stat().st_size for p in snapshot.folder.iterdir() if p.is_file())


def build(snapshots: Sequence[Snapshot], bundles_dir: Path, client_id: str) -> tuple[Path, str]:
    """Writes the bundle tar atomically; returns (path, sha256)."""
    bundles_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    bundle_id = f"{client_id}-{created.strftime('%Y%m%dT%H%M%SZ')}"
    index = {"format": FORMAT, "id": bundle_id, "client": client_id, "createdAt": created.isoformat(),
             "snapshots": [s.id for s in snapshots]}
    final = bundles_dir / f"{bundle_id}.tar"
    tmp = bundles_dir / f".{bundle_id}.{os.getpid()}.tmp"
    index_file = bundles_dir / f".{bundle_id}.{os.getpid()}.json"
    index_file.write_text(json.dumps(index, indent=2), encoding="utf-8")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(index_file, arcname=INDEX)
            for snapshot in snapshots:
                for path in sorted(snapshot.folder.iterdir()):
                    tar.add(path, arcname=f"{snapshot.id}/{path.name}", recursive=False)
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_dir(bundles_dir)
    finally:
        index_file.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return final, sha256_file(final)


class BadBundle(Exception):
    pass


def extract(bundle: Path, into: Path) -> dict[str, object]:
    """Extracts a bundle after checking every member name (no paths out of ``into``, no links);
    returns its index. The snapshots' own checksums are checked by the caller."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            members = tar.getmembers()
            for member in members:
                if not member.isfile() or not MEMBER.match(member.name):
                    raise BadBundle(f"{bundle}: unexpected member {member.name!r}")
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BadBundle(f"{bundle}: not a readable bundle: {error}") from None
    try:
        index = json.loads((into / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BadBundle(f"{bundle}: no readable {INDEX}: {error}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise BadBundle(f"{bundle}: {INDEX} is not a {FORMAT} index")
    return index
