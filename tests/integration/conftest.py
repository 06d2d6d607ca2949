"""Integration fixtures: each service's database on the real PostgreSQL, a real gRPC
inventory server on a free port, and the order API wired to both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from valerix.inventory import grpc_server
from valerix.inventory.bootstrap import deps_for
from valerix.inventory.chaos import ReserveChaos
from valerix.kit import db, grpc_auth
from valerix.kit.chaos import ChaosSource
from valerix.kit.grpc_server import serve_grpc
from valerix.kit.ports import free_port
from valerix.kit.uow import UnitOfWork
from valerix.order import api, service
from valerix.order.inventory_client import Catalogue, InventoryClient

from support import auth


def _conninfo(pool: ConnectionPool[Any]) -> str:
    conninfo = pool.conninfo
    return conninfo() if callable(conninfo) else conninfo


def migrated_pool(url: str, *packages: str, name: str) -> ConnectionPool[Any]:
    db.migrate(url, db.migration_files(*packages))
    pool = db.make_pool(url, name=name, max_size=20)
    pool.wait(timeout=10)
    return pool


@pytest.fixture
def inventory_url(new_database) -> str:
    return new_database("inventory")


@pytest.fixture
def inventory_pool(inventory_url) -> Iterator[ConnectionPool[Any]]:
    pool = migrated_pool(inventory_url, "valerix.kit", "valerix.inventory", name="test-inventory")
    yield pool
    pool.close()


@pytest.fixture
def order_pool(new_database) -> Iterator[ConnectionPool[Any]]:
    pool = migrated_pool(new_database("orders"), "valerix.kit", "valerix.order", name="test-order")
    yield pool
    pool.close()


@pytest.fixture
def chaos_dir(tmp_path) -> Path:
    folder = tmp_path / "chaos"
    folder.mkdir()
    return folder


@pytest.fixture
def chaos(chaos_dir) -> ReserveChaos:
    return ReserveChaos(ChaosSource(chaos_dir, ttl=0.0), die=lambda: None)


@pytest.fixture
def grpc_token() -> str:
    return grpc_auth.new_token()


@pytest.fixture
def inventory_target(inventory_pool, chaos, grpc_token) -> Iterator[str]:
    bind = f"127.0.0.1:{free_port()}"
    server, _ = serve_grpc(bind, grpc_server.InventoryServicer(deps_for(inventory_pool, chaos)).add_to_server, [grpc_server.SERVICE_NAME],
                           token=grpc_token)
    yield bind
    server.stop(grace=None).wait()


@pytest.fixture
def inventory_client(inventory_target, grpc_token) -> Iterator[InventoryClient]:
    client = InventoryClient(inventory_target, grpc_token, reserve_deadline=2.0)
    yield client
    client.close()


@pytest.fixture
def order_deps(order_pool, inventory_client) -> service.Deps:
    return service.Deps(uow=lambda: UnitOfWork(order_pool), inventory=inventory_client,
                        catalogue=Catalogue(inventory_client), database_url=_conninfo(order_pool))


@pytest.fixture(autouse=True)
def signing_key(monkeypatch) -> None:
    """Apps built without explicit tokens read the key from the environment, as in production."""
    monkeypatch.setenv("AUTH_SIGNING_KEY", auth.KEY)


@pytest.fixture
def order_app(order_deps, order_pool):
    checks = {"database": lambda: db.ping(order_pool), "inventoryGrpc": order_deps.inventory.check_health}
    app = api.build_app(order_deps, checks, tokens=auth.TOKENS)
    app.testing = False
    return app


@pytest.fixture
def anonymous(order_app):
    return order_app.test_client()


@pytest.fixture
def client(order_app):
    """A client that is one customer: every request carries its bearer token."""
    test_client = order_app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = auth.customer()["Authorization"]
    return test_client


@pytest.fixture
def operator_client(order_app):
    test_client = order_app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = auth.operator()["Authorization"]
    return test_client

