"""Where a restore or verify reads from: a local snapshot, a bundle file, or the backup service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from valerix.backup import bundle
from valerix.backup.files import sha256_file
from valerix.backup.manifest import CorruptSnapshot
from valerix.backup.settings import BackupSettings
from valerix.backup.snapshot import list_snapshots


def local_snapshot(settings: BackupSettings, ident: str) -> Path:
    snapshots = list_snapshots(settings.snapshots_dir)
    if not snapshots:
        raise FileNotFoundError(f"no snapshot in {settings.snapshots_dir}")
    if ident == "latest":
        return snapshots[-1].folder
    for s in snapshots:
        if s.id == ident:
            return s.folder
    raise FileNotFoundError(f"no snapshot {ident} in {settings.snapshots_dir}")


def snapshot_in_bundle(bundle_file: Path, ident: str, workdir: Path) -> Path:
    """Extracts the bundle into ``workdir`` and returns the chosen snapshot's folder."""
    try:
        index = bundle.extract(bundle_file, workdir)
    except bundle.BadBundle as error:
        raise CorruptSnapshot(str(error)) from None
    ids = [str(i) for i in index.get("snapshots", [])]  # type: ignore[attr-defined]
    if not ids:
        raise CorruptSnapshot(f"{bundle_file}: the bundle lists no snapshot")
    chosen = ids[-1] if ident == "latest" else ident
    if chosen not in ids:
        raise FileNotFoundError(f"{bundle_file} holds {ids}, not {chosen}")
    return workdir / chosen


def _client(settings: BackupSettings) -> httpx.Client:
    return httpx.Client(base_url=settings.backup_service_url.rstrip("/"),
                        timeout=httpx.Timeout(300, connect=10),
                        headers={"X-Client-Id": settings.backup_client_id})


def remote_bundles(settings: BackupSettings) -> list[dict[str, Any]]:
    """The bundles the service holds for us (listing is not rate-limited)."""
    with _client(settings) as client:
        response = client.get("/v1/bundles")
        response.raise_for_status()
        bundles: list[dict[str, Any]] = response.json()["bundles"]
        return bundles


def download(settings: BackupSettings, bundle_id: str, workdir: Path) -> Path:
    """Downloads a shipped bundle and checks it against the service's recorded sha256."""
    bundles = remote_bundles(settings)
    if not bundles:
        raise FileNotFoundError("the backup service holds no bundle for this client")
    matching = (b for b in bundles if bundle_id in ("latest", b["bundleId"]))
    wanted = bundles[-1] if bundle_id == "latest" else next(matching, None)
    if wanted is None:
        raise FileNotFoundError(f"the backup service has no bundle {bundle_id}")
    target = workdir / f"{wanted['bundleId']}.tar"
    with _client(settings) as client, client.stream("GET", f"/v1/bundles/{wanted['bundleId']}") as response:
        response.raise_for_status()
        with target.open("wb") as f:
            for chunk in response.iter_bytes():
                f.write(chunk)
    if sha256_file(target) != wanted["sha256"]:
        raise CorruptSnapshot(f"downloaded {wanted['bundleId']} does not match the service's sha256")
    return target
