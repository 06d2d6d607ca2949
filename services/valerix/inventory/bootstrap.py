"""Wires the inventory service's dependencies from settings: one place, tests pass their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from valerix.inventory.chaos import ChaosHooks, NoChaos, ReserveChaos
from valerix.inventory.settings import InventorySettings
from valerix.kit.chaos import ChaosSource
from valerix.kit.uow import UnitOfWork


@dataclass
class Deps:
    uow: Callable[[], UnitOfWork]
    chaos: ChaosHooks


def build_deps(settings: InventorySettings, pool: ConnectionPool[Any]) -> Deps:
    return deps_for(pool, ReserveChaos(ChaosSource(settings.chaos_dir)))


def deps_for(pool: ConnectionPool[Any], chaos: ChaosHooks | None = None) -> Deps:
    """Units of work on ``pool``; no chaos unless given (tests bring their own)."""
    return Deps(uow=lambda: UnitOfWork(pool), chaos=chaos or NoChaos())
