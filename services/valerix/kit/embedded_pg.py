"""A private PostgreSQL from the ``pgserver`` wheel's binaries, for local runs and tests.

initdb, pg_ctl and postgres refuse to run as root, so when we are root they run as an
unprivileged system user. The server listens on TCP only (Unix socket paths break past
107 bytes) with password authentication.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from valerix.kit.db import connect_admin

RUN_AS = "valerixpg"


def pg_bin() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise RuntimeError("the pgserver wheel is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Its own session: Ctrl-C in the terminal reaches our processes, not the database, which
    # is stopped last, after everything that uses it.
    kwargs: dict[str, object] = {"start_new_session": True}
    if _as_root():
        kwargs |= {"user": RUN_AS, "group": RUN_AS, "extra_groups": []}
    return subprocess.run(  # type: ignore[call-overload]
        [str(a) for a in args], check=check, capture_output=True, text=True, **kwargs
    )


def _ensure_user() -> None:
    if subprocess.run(["id", "-u", RUN_AS], capture_output=True).returncode:
        subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", RUN_AS], check=True)


def _open_parents(path: Path) -> None:
    """The server user must traverse every parent of its data directory."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o001)


@dataclass(frozen=True)
class EmbeddedPostgres:
    pgdata: Path
    port: int
    password: str

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def settings(self) -> list[str]:
        return ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port), "-c", "unix_socket_directories=",
                "-c", "max_connections=300", "-c", "shared_buffers=128MB", "-c", "fsync=on"]

    def foreground_command(self) -> list[str]:
        """The server in the foreground, for a supervisor that restarts it when it dies (as a
        StatefulSet's kubelet would). Run it as ``run_as_user()``."""
        return [str(pg_bin() / "postgres"), "-D", str(self.pgdata), *self.settings]

    def is_running(self) -> bool:
        return _run(pg_bin() / "pg_ctl", "-D", self.pgdata, "status", check=False).returncode == 0

    def start(self) -> EmbeddedPostgres:
        pgdata = self.pgdata
        if _as_root():
            _ensure_user()
        pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _as_root():
            user = pwd.getpwnam(RUN_AS)
            os.chown(pgdata, user.pw_uid, user.pw_gid)
            _open_parents(pgdata)
            _open_parents(pg_bin())
        if not (pgdata / "PG_VERSION").exists():
            self._initdb()
        if not self.is_running():
            options = " ".join(a if a and " " not in a else f"'{a}'" for a in self.settings)
            _run(pg_bin() / "pg_ctl", "-D", pgdata, "-l", pgdata / "server.log", "-w", "-t", "60",
                 "-o", options, "start")
        return self

    def _initdb(self) -> None:
        with tempfile.NamedTemporaryFile("w", delete=False, suffix=".pw") as f:
            f.write(self.password + "\n")
        try:
            if _as_root():
                os.chown(f.name, pwd.getpwnam(RUN_AS).pw_uid, -1)
            _run(pg_bin() / "initdb", "-D", self.pgdata, "-U", "postgres", "--auth=scram-sha-256",
                 f"--pwfile={f.name}", "-E", "UTF8", "--no-locale")
        finally:
            os.unlink(f.name)

    def stop(self) -> None:
        if self.is_running():
            _run(pg_bin() / "pg_ctl", "-D", self.pgdata, "-w", "-m", "fast", "stop")


def run_as_user() -> str | None:
    """The user the server runs as: our own, or an unprivileged one when we are root."""
    return RUN_AS if _as_root() else None


def provision_database(admin_url: str, name: str, role: str, password: str) -> str:
    """Creates (or re-passwords) ``role`` owning database ``name``; returns the role's URL."""
    host_port = admin_url.split("@", 1)[1].split("/", 1)[0]
    with connect_admin(admin_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
    return f"postgresql://{role}:{password}@{host_port}/{name}"


def new_password() -> str:
    return secrets.token_urlsafe(18)
