"""/health checks every dependency with short timeouts; tested by really stopping them."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from valerix.inventory import grpc_server, http_api
from valerix.inventory.bootstrap import deps_for
from valerix.kit import db, embedded_pg
from valerix.kit.bus import bus_check
from valerix.kit.grpc_server import serve_grpc
from valerix.kit.ports import free_port
from valerix.kit.settings import CommonSettings
from valerix.order import api
from valerix.order.inventory_client import InventoryClient


def settled(client, path: str, status: int, timeout: float = 10.0):
    """The first answer with ``status``: answers are cached for about a second, so a change
    shows on the next check after that, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own, so stopping it harms no other test."""
    root = Path(tempfile.mkdtemp(prefix="valerix-health-"))
    root.chmod(0o755)
    server = embedded_pg.EmbeddedPostgres(root / "data", free_port(), embedded_pg.new_password()).start()
    yield server
    server.stop()


def test_order_health_reports_each_dependency_and_readiness_only_its_database(own_postgres, order_deps, inventory_pool):
    url = embedded_pg.provision_database(own_postgres.admin_url, "orders_h", "orders_h_svc", "pw-h")
    pool = db.make_pool(url, name="health-test", max_size=2, timeout=1)
    bind = f"127.0.0.1:{free_port()}"
    server, _ = serve_grpc(bind, grpc_server.InventoryServicer(deps_for(inventory_pool)).add_to_server, [grpc_server.SERVICE_NAME],
                           token="t0k")
    inventory = InventoryClient(bind, "t0k")
    settings = CommonSettings(bus_backend="postgres", bus_database_url=url)
    checks = {"database": lambda: db.ping(pool), "serviceBus": bus_check(settings),
              "inventoryGrpc": inventory.check_health}
    client = api.build_app(order_deps, checks).test_client()
    try:
        body = client.get("/health").json
        assert body["status"] == "healthy" and set(body["dependencies"].values()) == {"ok"}

        server.stop(grace=None).wait()
        response = settled(client, "/health", 503)
        assert response.status_code == 503 and response.json["dependencies"]["inventoryGrpc"] == "error"
        assert response.json["status"] == "unhealthy"
        assert client.get("/health/ready").status_code == 200   # still serves 202s: stays in rotation

        own_postgres.stop()
        started = time.monotonic()
        client.get("/health")
        assert time.monotonic() - started < 3.0   # a dead dependency answers within its check timeout
        response = settled(client, "/health", 503)
        deadline = time.monotonic() + 10
        while response.json["dependencies"]["database"] == "ok" and time.monotonic() < deadline:
            response = client.get("/health")
            time.sleep(0.2)
        assert response.json["dependencies"] == {"database": "error", "serviceBus": "error", "inventoryGrpc": "error"}
        assert settled(client, "/health/ready", 503).status_code == 503
        assert client.get("/health/live").status_code == 200
    finally:
        inventory.close()
        pool.close()


def test_inventory_health_fails_when_its_database_stops(own_postgres):
    url = embedded_pg.provision_database(own_postgres.admin_url, "inv_h", "inv_h_svc", "pw-i")
    db.migrate(url, db.migration_files("valerix.kit", "valerix.inventory"))
    pool = db.make_pool(url, name="health-inv", max_size=2, timeout=1)
    client = http_api.build_app(deps_for(pool), {"database": lambda: db.ping(pool)}).test_client()
    try:
        assert client.get("/health").status_code == 200
        assert client.get("/api/products").status_code == 200
        own_postgres.stop()
        response = settled(client, "/health", 503)
        assert response.status_code == 503 and response.json["dependencies"]["database"] == "error"
        products = client.get("/api/products")
        assert products.status_code == 503 and products.headers["Retry-After"] == "2"
    finally:
        pool.close()
