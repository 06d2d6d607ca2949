"""The event bus: a small port (port.py) and two backends chosen by BUS_BACKEND.

``postgres`` is the embedded bus on its own database (BUS_DATABASE_URL); ``azure`` is Azure
Service Bus (SERVICE_BUS_CONNECTION_STRING). Both pass tests/integration/bus.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from valerix.kit.bus.port import Bus, BusAdmin, BusError, EntityNotFound, EntityStats, LockLost, ReceivedMessage
from valerix.kit.bus.topology import DEFAULT, Topology
from valerix.kit.settings import CommonSettings

__all__ = ["Bus", "BusAdmin", "BusError", "EntityNotFound", "EntityStats", "LockLost", "ReceivedMessage",
           "Topology", "migrations_package", "open_bus"]

migrations_package = "valerix.kit.bus"  # `valerix migrate bus` applies valerix/kit/bus/migrations/*.sql


def open_bus(settings: CommonSettings | Mapping[str, str] | None = None, *,
             topology: Topology = DEFAULT) -> Bus:
    """The configured backend. For postgres the topology's entities are created or updated
    (idempotent), so a freshly migrated bus_db is usable at once."""
    if not isinstance(settings, CommonSettings):
        settings = CommonSettings.model_validate({k.lower(): v for k, v in (settings or {}).items()})
    if settings.bus_backend == "azure":
        if not secret_value(settings.service_bus_connection_string):
            raise BusError("BUS_BACKEND=azure needs SERVICE_BUS_CONNECTION_STRING")
        from valerix.kit.bus.azure import AzureBus

        return AzureBus(secret_value(settings.service_bus_connection_string), topology=topology)
    url = secret_value(settings.bus_database_url)
    if not url:
        raise BusError("BUS_BACKEND=postgres needs BUS_DATABASE_URL")
    from valerix.kit.bus.postgres import PostgresBus

    return PostgresBus(url, topology=topology, pool_size=2 * settings.consumer_threads + 4)


def secret_value(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""
