"""Ships the day's bundle in exactly one HTTP call, guarded by the ledger and a file lock.

Protocol with the backup service (the mock implements it; see README.md):
  POST {BACKUP_SERVICE_URL}/v1/bundles   Content-Type: application/x-tar, Content-Length,
       X-Client-Id, X-Content-SHA256, Idempotency-Key (the bundle id)
  201 + Backup-Call-Counted: true            stored; the day's call is used
  429 + Retry-After + Backup-Call-Counted: false   the day's call was already used
  4xx/5xx + Backup-Call-Counted: false       not counted: the call may be made again
  anything else, or no answer after sending  unknown: counted as spent (never risk a second call)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from valerix.backup import bundle, ledger
from valerix.backup.files import exclusive
from valerix.backup.settings import BackupSettings
from valerix.backup.snapshot import list_snapshots

log = logging.getLogger(__name__)
COUNTED = "Backup-Call-Counted"
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request never left this machine


@dataclass
class ShipResult:
    called: bool
    state: str
    detail: str
    next_allowed: datetime
    snapshots: list[str] = field(default_factory=list)
    receipt: dict[str, Any] | None = None


def ledger_path(settings: BackupSettings) -> Path:
    return settings.backup_dir / "ship-ledger.json"


def _classify(response: httpx.Response, now: datetime) -> tuple[str, dict[str, Any]]:
    counted = response.headers.get(COUNTED, "").lower()
    if response.status_code == 201 and counted == "true":
        return "accepted", {"receipt": response.json()}
    detail = _detail(response)
    if response.status_code == 429:
        retry = response.headers.get("Retry-After", "")
        seconds = int(retry) if retry.isdigit() else int((ledger.next_midnight(now) - now).total_seconds())
        return "refused", {"error": detail, "retryUntil": (now + timedelta(seconds=seconds)).isoformat()}
    if counted == "false":
        return "not_counted", {"error": f"{response.status_code}: {detail}"}
    return "unknown", {"error": f"{response.status_code} without proof it was not counted: {detail}"}


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text[:300]))
    except ValueError:
        return response.text[:300]


def ship(settings: BackupSettings, now: datetime | None = None, lock_wait: float = 30.0) -> ShipResult:
    now = now or datetime.now(UTC)
    path = ledger_path(settings)
    with exclusive(settings.backup_dir / "ship.lock", wait=lock_wait):
        book = ledger.load(path)
        if ledger.spent_today(book, now):
            state = (ledger.entry(book, now) or {}).get("state", "")
            return ShipResult(False, state, f"today's call is already used ({state}); no call made",
                              ledger.next_call_allowed(book, now))
        snapshots = {s.id: s for s in list_snapshots(settings.snapshots_dir)}
        candidates = [bundle.Candidate(s.id, bundle.snapshot_size(s)) for s in snapshots.values()]
        chosen = bundle.select(candidates, book["lastShipped"], settings.backup_bundle_max_bytes)
        if not chosen:
            return ShipResult(False, "nothing_to_ship", "no snapshot newer than the last shipment; "
                              "no call made", ledger.next_call_allowed(book, now))
        bundle_path, digest = bundle.build([snapshots[i] for i in chosen], settings.bundles_dir,
                                           settings.backup_client_id)
        day = book["days"].setdefault(ledger.day_key(now), {"attempts": 0})
        day.update(state="in_flight", startedAt=now.isoformat(), attempts=day["attempts"] + 1,
                   bundle={"file": bundle_path.name, "sha256": digest, "snapshots": chosen}, error=None)
        ledger.save(path, book)  # the call counts as spent from here until proven otherwise
        try:
            state, outcome = _post(settings, bundle_path, digest, now)
        finally:
            bundle_path.unlink(missing_ok=True)
        day.update(state=state, finishedAt=datetime.now(UTC).isoformat(), **outcome)
        if state == "accepted":
            book["lastShipped"] = chosen[-1]
        ledger.save(path, book)
        log.info("bundle shipped" if state == "accepted" else "ship failed",
                 extra={"state": state, "snapshots": len(chosen), "error": outcome.get("error")})
        return ShipResult(True, state, str(outcome.get("error") or "stored off-site"),
                          ledger.next_call_allowed(book, now), chosen, outcome.get("receipt"))


def _post(settings: BackupSettings, bundle_path: Path, digest: str, now: datetime) -> tuple[str, dict[str, Any]]:
    headers = {"Content-Type": "application/x-tar", "X-Client-Id": settings.backup_client_id,
               "X-Content-SHA256": digest, "Idempotency-Key": bundle_path.stem,
               "Content-Length": str(bundle_path.stat().st_size)}
    timeout = httpx.Timeout(settings.backup_ship_timeout, connect=10.0)
    try:
        with httpx.Client(timeout=timeout) as client, bundle_path.open("rb") as body:
            response = client.post(f"{settings.backup_service_url.rstrip('/')}/v1/bundles",
                                   content=body, headers=headers)
    except NOT_SENT as error:
        return "not_counted", {"error": f"connection failed before sending: {error!r}"}
    except httpx.HTTPError as error:
        return "unknown", {"error": f"no answer after sending: {error!r}"}
    return _classify(response, now)
