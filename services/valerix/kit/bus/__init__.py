"""The event bus: a small port (port.py) and two backends chosen by BUS_BACKEND.

``postgres`` is the embedded bus on its own database (BUS_DATABASE_URL); ``azure`` is Azure
Service Bus (SERVICE_BUS_CONNECTION_STRING). Both pass tests/integration/bus.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from valerix.kit.bus.port import Bus, BusAdmin, BusError, EntityNotFound, EntityStats, LockLost, ReceivedMessage
from valerix.kit.bus.topology import Topology, contract_topology
from valerix.kit.health import Check
from valerix.kit.settings import CommonSettings

__all__ = ["Bus", "BusAdmin", "BusError", "EntityNotFound", "EntityStats", "LockLost", "ReceivedMessage",
           "Topology", "bus_check", "migrations_package", "open_bus"]

migrations_package = "valerix.kit.bus"  # `valerix migrate bus` applies valerix/kit/bus/migrations/*.sql


def open_bus(settings: CommonSettings | Mapping[str, str] | None = None, *,
             topology: Topology | None = None) -> Bus:
    """The configured backend. For postgres the topology's entities are created or updated
    (idempotent), so a freshly migrated bus_db is usable at once."""
    if not isinstance(settings, CommonSettings):
        settings = CommonSettings.model_validate({k.lower(): v for k, v in (settings or {}).items()})
    if settings.bus_backend == "azure":
        if not secret_value(settings.service_bus_connection_string):
            raise BusError("BUS_BACKEND=azure needs SERVICE_BUS_CONNECTION_STRING")
        from valerix.kit.bus.azure import AzureBus

        return AzureBus(secret_value(settings.service_bus_connection_string), topology=topology or contract_topology())
    url = secret_value(settings.bus_database_url)
    if not url:
        raise BusError("BUS_BACKEND=postgres needs BUS_DATABASE_URL")
    from valerix.kit.bus.postgres import PostgresBus

    return PostgresBus(url, topology=topology or contract_topology(), pool_size=2 * settings.consumer_threads + 4)


def secret_value(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def bus_check(settings: CommonSettings) -> Check:
    """Readiness of the event bus: the embedded bus's database, or Azure Service Bus."""
    if settings.bus_backend == "postgres":
        url = settings.bus_database_url.get_secret_value() if settings.bus_database_url else None
        if not url:
            def unset() -> None:
                raise RuntimeError("BUS_DATABASE_URL is not set")

            return unset
        from valerix.kit import db

        # One connection kept for the checks (none opened until the first): a new connection
        # per /health call would cost the bus database a backend process each time.
        pool = db.make_pool(url, name="bus-health", min_size=0, max_size=1, timeout=1.0)
        return lambda: db.ping(pool)

    def check_azure() -> None:
        if not settings.service_bus_connection_string:
            raise RuntimeError("SERVICE_BUS_CONNECTION_STRING is not set")

    return check_azure
