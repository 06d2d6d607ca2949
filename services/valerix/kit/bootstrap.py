"""Wiring helpers every process uses to build its dependencies from settings."""

from __future__ import annotations

from valerix.kit.chaos import ChaosSource, ReserveChaos
from valerix.kit.health import Check
from valerix.kit.settings import CommonSettings


def bus_check(settings: CommonSettings) -> Check:
    """Readiness of the event bus: the embedded bus's database, or Azure Service Bus."""
    if settings.bus_backend == "postgres":
        url = settings.bus_database_url.get_secret_value() if settings.bus_database_url else None

        def check_postgres() -> None:
            if not url:
                raise RuntimeError("BUS_DATABASE_URL is not set")
            import psycopg

            with psycopg.connect(url, connect_timeout=1) as conn:
                conn.execute("SELECT 1")

        return check_postgres

    def check_azure() -> None:
        if not settings.service_bus_connection_string:
            raise RuntimeError("SERVICE_BUS_CONNECTION_STRING is not set")

    return check_azure


def chaos_hooks(settings: CommonSettings) -> ReserveChaos:
    return ReserveChaos(ChaosSource(settings.chaos_dir))


