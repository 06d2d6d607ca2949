"""The local ledger of the day's single call to the backup service.

States of a UTC day's entry:
  in_flight    written (fsynced) BEFORE the request leaves; if we crash, it stays and counts as spent
  accepted     201 from the service: the bundle is stored off-site
  refused      429: the service says the day's call is already used (Retry-After says until when)
  unknown      the request may have reached the service (timeout, reset, 5xx without proof)
  not_counted  the service proved it did not count it (header Backup-Call-Counted: false), or the
               connection failed before anything was sent: the day's call is still free
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from valerix.backup.files import write_json_atomic

SPENT = frozenset({"in_flight", "accepted", "refused", "unknown"})
Ledger = dict[str, Any]


def load(path: Path) -> Ledger:
    if not path.exists():
        return {"days": {}, "lastShipped": None}
    data: Ledger = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("days", {})
    data.setdefault("lastShipped", None)
    return data


def save(path: Path, ledger: Ledger) -> None:
    write_json_atomic(path, ledger)


def day_key(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


def next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)


def entry(ledger: Ledger, now: datetime) -> dict[str, Any] | None:
    found: dict[str, Any] | None = ledger["days"].get(day_key(now))
    return found


def spent_today(ledger: Ledger, now: datetime) -> bool:
    today = entry(ledger, now)
    return today is not None and today.get("state") in SPENT


def next_call_allowed(ledger: Ledger, now: datetime) -> datetime:
    """When the next call may be made: now if today's call is free, else the next UTC midnight
    (or later, if the service's Retry-After said so)."""
    allowed = next_midnight(now) if spent_today(ledger, now) else now
    for value in ledger["days"].values():
        if until := value.get("retryUntil"):
            allowed = max(allowed, datetime.fromisoformat(until))
    return allowed


def last_call(ledger: Ledger) -> tuple[date, dict[str, Any]] | None:
    if not ledger["days"]:
        return None
    day = max(ledger["days"])
    return date.fromisoformat(day), ledger["days"][day]
