"""Runs a use case that takes a unit of work in one of its own and commits it, as the
inventory gRPC servicer and the consumers do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from psycopg_pool import ConnectionPool

from valerix.kit.uow import UnitOfWork

T = TypeVar("T")


def committed(pool: ConnectionPool[Any], use_case: Callable[..., T], *args: Any) -> T:
    with UnitOfWork(pool) as uow:
        result = use_case(uow, *args)
        uow.commit()
    return result
