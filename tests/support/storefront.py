"""A real order API under gunicorn (its own process) on fresh databases, with a real gRPC
inventory server in the test process whose chaos is switched by files, as in production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from valerix.inventory import grpc_server
from valerix.inventory.bootstrap import deps_for
from valerix.inventory.chaos import ReserveChaos
from valerix.kit import db, embedded_pg, grpc_auth
from valerix.kit.chaos import ChaosSource
from valerix.kit.grpc_server import serve_grpc
from valerix.kit.ports import free_port, wait_http_ok

from support import auth


@dataclass
class Storefront:
    url: str
    proc: subprocess.Popen[bytes]
    order_pool: ConnectionPool[Any]
    inventory_pool: ConnectionPool[Any]
    inventory_target: str
    chaos_dir: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def threads(self) -> int:
        """Threads of the gunicorn worker processes (children of the arbiter)."""
        total = 0
        for child in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split():
            status = Path(f"/proc/{child}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
        return total


def _database(admin_url: str, prefix: str, *packages: str) -> ConnectionPool[Any]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = embedded_pg.provision_database(admin_url, name, f"{name}_svc", embedded_pg.new_password())
    db.migrate(url, db.migration_files(*packages))
    pool = db.make_pool(url, name=f"test-{prefix}", max_size=10)
    pool.wait(timeout=10)
    return pool


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    try:
        wait_http_ok(f"{url}/health/live", timeout, still_alive=lambda: proc.poll() is None)
    except (RuntimeError, TimeoutError) as error:
        raise type(error)(f"the order api did not come up ({error}):\n{log.read_text()[-3000:]}") from None


@contextmanager
def running_storefront(admin_url: str, home: Path, *, workers: int = 1, threads: int = 16,
                       slots: int | None = None, extra_env: dict[str, str] | None = None) -> Iterator[Storefront]:
    chaos_dir = home / "chaos"
    chaos_dir.mkdir(parents=True, exist_ok=True)
    order_pool = _database(admin_url, "orders", "valerix.kit", "valerix.order")
    inventory_pool = _database(admin_url, "inventory", "valerix.kit", "valerix.inventory")
    target = f"127.0.0.1:{free_port()}"
    token = grpc_auth.new_token()
    grpc, _ = serve_grpc(target, grpc_server.InventoryServicer(deps_for(inventory_pool, ReserveChaos(
        ChaosSource(chaos_dir, ttl=0.0), die=lambda: None))).add_to_server, [grpc_server.SERVICE_NAME], token=token)
    port = free_port()
    conninfo = order_pool.conninfo
    env = {**os.environ, "ORDER_DATABASE_URL": conninfo if isinstance(conninfo, str) else conninfo(),
           "INVENTORY_GRPC_TARGET": target, "INVENTORY_GRPC_TOKEN": token, "ORDER_API_BIND": f"127.0.0.1:{port}",
           "ORDER_API_WORKERS": str(workers), "ORDER_API_THREADS": str(threads), "CHAOS_DIR": str(chaos_dir),
           "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", "AUTH_SIGNING_KEY": auth.KEY}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("PROMETHEUS_URL", None)
    if slots is not None:
        env["ORDER_WS_SLOTS"] = str(slots)
    env.update(extra_env or {})
    log = home / "order-api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "valerix", "order", "api"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield Storefront(url, proc, order_pool, inventory_pool, target, chaos_dir, log)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        grpc.stop(grace=None).wait()
        order_pool.close()
        inventory_pool.close()
