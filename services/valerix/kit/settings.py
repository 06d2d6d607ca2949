"""Settings shared by every process, read from the environment (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from valerix.kit.gc_tuning import SERVING_THRESHOLDS


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    log_level: str = "INFO"
    bus_backend: Literal["postgres", "azure"] = "postgres"
    bus_database_url: SecretStr | None = None
    service_bus_connection_string: SecretStr | None = None
    chaos_dir: Path = Path(".valerix/chaos")
    metrics_port: int = 9100
    db_pool_size: int = 10
    # The API processes' youngest-generation GC threshold (kit/gc_tuning.py); 700 is CPython's.
    gc_young_threshold: int = Field(default=SERVING_THRESHOLDS[0], ge=1)
    # Which events reach the outbox: "subscribed" (those a Valerix service acts on) or "all"
    # (every event of docs/events.md, for other readers subscribed to the topics).
    publish_events: Literal["subscribed", "all"] = "subscribed"
    # Housekeeping (kit/retention.py): how often, and how long each kind of row is kept.
    housekeeping_interval_s: float = 300.0
    outbox_retention_s: float = 86400.0        # sent outbox rows; unsent rows are never trimmed
    inbox_retention_s: float = 7 * 86400.0     # handled event ids
    dead_letter_retention_s: float = 14 * 86400.0  # dead-lettered messages of the embedded bus
    consumer_threads: int = 4   # competing consumers per queue or subscription in a worker
    # A failed message is retried after base, 2*base, 4*base ... seconds, at most cap, until it succeeds.
    consumer_backoff_base_s: float = 1.0
    consumer_backoff_cap_s: float = 60.0
