"""The whole system on one machine: a private PostgreSQL, migrations, and every process
under supervisor (so a crashed process is restarted, as the kubelet would). Used by
`valerix up`, the end-to-end tests, the chaos pipeline and the benchmark."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from valerix.kit import auth, db, embedded_pg, grpc_auth
from valerix.kit.ports import wait_http_ok, wait_listening
from valerix.local import extras, supervisor
from valerix.local.config import StackConfig

log = logging.getLogger(__name__)

SERVICES = {  # database name -> (role, migration packages)
    "order_db": ("order_svc", ("valerix.kit", "valerix.order")),
    "inventory_db": ("inventory_svc", ("valerix.kit", "valerix.inventory")),
    "bus_db": ("bus_svc", ("valerix.kit.bus",)),
}
URL_ENV = {"order_db": "ORDER_DATABASE_URL", "inventory_db": "INVENTORY_DATABASE_URL",
           "bus_db": "BUS_DATABASE_URL"}
SIGNING_KEY_FILE = "auth-signing-key"


def migration_files(database: str) -> list[tuple[str, str]]:
    return db.migration_files(*SERVICES[database][1])


def migrate_all(urls: dict[str, str]) -> None:
    for database, url in urls.items():
        db.migrate(url, migration_files(database))


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.home = config.home.resolve()
        self.pg: embedded_pg.EmbeddedPostgres | None = None
        self.urls: dict[str, str] = {}
        self._supervisord: subprocess.Popen[bytes] | None = None

    # -- databases --
    def _credentials(self) -> dict[str, str]:
        path = self.home / "credentials.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        creds = {"postgres": embedded_pg.new_password()} | {name: embedded_pg.new_password() for name in SERVICES}
        path.write_text(json.dumps(creds))
        path.chmod(0o600)
        return creds

    def _generated(self, name: str, make: Callable[[], str]) -> Path:
        """A secret made once per home (owner-only), kept across restarts."""
        path = self.home / name
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(make())
        return path

    def grpc_token(self) -> str:
        """The order service's credential for inventory's gRPC."""
        return self._generated("grpc-token", grpc_auth.new_token).read_text().strip()

    @property
    def signing_key_file(self) -> Path:
        """The bearer tokens' signing key, kept so that tokens handed out survive restarts."""
        return self._generated(SIGNING_KEY_FILE, auth.new_signing_key)

    def tokens(self) -> auth.Tokens:
        return auth.Tokens(self.signing_key_file.read_bytes().strip())

    def databases(self) -> dict[str, str]:
        given = {name: os.environ[env] for name, env in URL_ENV.items() if os.environ.get(env)}
        if len(given) == len(SERVICES):
            self.urls = given
            return given
        creds = self._credentials()
        self.pg = embedded_pg.EmbeddedPostgres(self.home / "pgdata", self.config.ports.postgres,
                                               creds["postgres"]).start()
        self.urls = {name: given.get(name) or embedded_pg.provision_database(
            self.pg.admin_url, name, SERVICES[name][0], creds[name]) for name in SERVICES}
        return self.urls

    # -- processes --
    def environment(self) -> dict[str, str]:
        p = self.config.ports
        env = {
            "ORDER_DATABASE_URL": self.urls["order_db"],
            "INVENTORY_DATABASE_URL": self.urls["inventory_db"],
            "BUS_DATABASE_URL": self.urls["bus_db"],
            "BUS_BACKEND": "postgres",
            "INVENTORY_GRPC_TARGET": f"127.0.0.1:{p.inventory_grpc}",
            "INVENTORY_GRPC_TOKEN": self.grpc_token(),
            "CHAOS_DIR": str(self.home / "chaos"),
            "AUTH_SIGNING_KEY_FILE": str(self.signing_key_file),
            "PROMETHEUS_URL": f"http://127.0.0.1:{p.prometheus}",
            "BACKUP_DIR": str(self.home / "backups"),
            "BACKUP_SERVICE_URL": f"http://127.0.0.1:{p.backup_service}",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.config.extra_env)
        return env

    def programs(self) -> list[supervisor.Program]:
        p, run = self.config.ports, self.home / "run"
        valerix = [sys.executable, "-m", "valerix"]
        programs = [*self._database_programs(),
            supervisor.Program("order-api", [*valerix, "order", "api"], {
                "ORDER_API_BIND": f"127.0.0.1:{p.order_api}",
                "ORDER_API_WORKERS": str(self.config.order_api_workers),
                **({"ORDER_API_THREADS": str(self.config.order_api_threads)}
                   if self.config.order_api_threads is not None else {}),
                "PROMETHEUS_MULTIPROC_DIR": str(run / "prom-order-api")}),
            supervisor.Program("order-worker", [*valerix, "order", "worker"],
                               {"METRICS_PORT": str(p.order_worker_metrics)}),
            supervisor.Program("inventory-api", [*valerix, "inventory", "api"], {
                "INVENTORY_GRPC_BIND": f"127.0.0.1:{p.inventory_grpc}",
                "INVENTORY_HTTP_BIND": f"127.0.0.1:{p.inventory_http}"}),
            supervisor.Program("inventory-worker", [*valerix, "inventory", "worker"],
                               {"METRICS_PORT": str(p.inventory_worker_metrics)}),
        ]
        programs += extras.programs(self.config, self.home, valerix)
        return programs

    def _database_programs(self) -> list[supervisor.Program]:
        """Our own PostgreSQL runs in the foreground under supervisor, first up and last down, so
        a crash of its postmaster is restarted (with crash recovery) as a StatefulSet would."""
        if self.pg is None:
            return []
        return [supervisor.Program("postgres", self.pg.foreground_command(), {"LC_ALL": "C"},
                                   user=embedded_pg.run_as_user(), priority=1, stopsignal="INT", shared_env=False)]

    def start(self, wait: float = 60.0) -> Stack:
        for folder in ("log", "run", "chaos", "backups"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        self.databases()
        migrate_all(self.urls)
        if self.pg is not None:
            self.pg.stop()  # pg_ctl started it to provision and migrate; supervisor keeps it from here
        conf = supervisor.write_config(self.home, self.programs(), self.environment())
        self._supervisord = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.wait_ready(wait)
        return self

    def wait_ready(self, timeout: float) -> None:
        p = self.config.ports
        deadline = time.monotonic() + timeout
        try:
            for port in (p.order_api, p.inventory_http, p.inventory_grpc):
                wait_listening(port, timeout=max(1.0, deadline - time.monotonic()))
            wait_http_ok(f"{self.order_url}/health", timeout=max(1.0, deadline - time.monotonic()), interval=0.2)
        except TimeoutError as error:
            raise TimeoutError(f"the stack was not healthy after {timeout}s ({error}); "
                               f"logs in {self.home / 'log'}") from None

    @property
    def order_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.order_api}"

    @property
    def inventory_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.inventory_http}"

    def ctl(self, *args: str) -> str:
        conf = self.home / "supervisord.conf"
        done = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args],
                              capture_output=True, text=True, timeout=60)
        return done.stdout

    def pid_of(self, program: str) -> int:
        return int(self.ctl("pid", program).strip() or 0)

    def stop(self) -> None:
        proc, self._supervisord = self._supervisord, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.pg is not None:
            self.pg.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
