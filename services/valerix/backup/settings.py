"""Backup configuration, read from the environment (the same names in scripts/up and the chart)."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Dump order = the order of the consistent cut: intent (orders) before effects (stock), so
# restored inventory is never older than restored orders. See README.md "Cross-database".
DATABASE_ORDER = ("order", "inventory", "bus")


class BackupSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    order_database_url: SecretStr | None = None
    inventory_database_url: SecretStr | None = None
    bus_database_url: SecretStr | None = None
    backup_dir: Path = Path(".valerix/backups")
    backup_service_url: str = "http://127.0.0.1:25080"
    backup_client_id: str = "valerix"
    backup_snapshot_interval: timedelta = timedelta(minutes=15)
    # "auto": the pgserver wheel's binaries when installed, else pg_dump on PATH;
    # "path": always PATH (a server newer than 16 needs a newer pg_dump); or a directory.
    backup_pg_bin: str = "auto"
    backup_keep_all_hours: int = 24
    backup_keep_daily_days: int = 14
    backup_bundle_max_bytes: int = 512 * 1024 * 1024
    backup_ship_timeout: float = 300.0
    # run-scheduled ships at its first run at or after this UTC time of day; the bundle then holds
    # every snapshot since the previous shipment (with the default, all of the previous day's).
    backup_ship_at: time = time(0, 0)

    @field_validator("backup_snapshot_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        """Seconds ("900"), a unit ("15m", "1h", "30s"), ISO 8601 ("PT15M") or "00:15:00"."""
        if isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value)):
            number, unit = float(match[1]), match[2] or "s"
            return timedelta(seconds=number * {"s": 1, "m": 60, "h": 3600}[unit])
        return value

    def databases(self) -> dict[str, str]:
        """Logical name -> URL of every configured database, in cut order."""
        urls = {"order": self.order_database_url, "inventory": self.inventory_database_url,
                "bus": self.bus_database_url}
        return {name: url.get_secret_value() for name in DATABASE_ORDER
                if (url := urls[name]) is not None and url.get_secret_value()}

    @property
    def snapshots_dir(self) -> Path:
        return self.backup_dir / "snapshots"

    @property
    def bundles_dir(self) -> Path:
        return self.backup_dir / "bundles"
