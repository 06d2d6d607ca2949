"""Runs pg_dump / pg_restore with the password in the environment, never on the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from valerix.kit import embedded_pg


class PgToolError(RuntimeError):
    pass


def tool(name: str, choice: str = "auto") -> Path:
    """The pg_dump/pg_restore binary: from the pgserver wheel, from PATH, or from a directory."""
    if choice not in ("auto", "path"):
        path = Path(choice) / name
        if not path.exists():
            raise PgToolError(f"{path} does not exist (BACKUP_PG_BIN)")
        return path
    if choice == "auto":
        try:
            wheel = embedded_pg.pg_bin() / name
            if wheel.exists():
                return wheel
        except RuntimeError:
            pass
    found = shutil.which(name)
    if found is None:
        raise PgToolError(f"{name} not found on PATH; install the PostgreSQL client or set BACKUP_PG_BIN")
    return Path(found)


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """(conninfo without password, environment carrying it)."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return make_conninfo(**params), env


def run(binary: Path, args: list[str], url: str | None = None, timeout: float = 3600) -> str:
    env = dict(os.environ)
    argv = [str(binary), *args]
    if url is not None:
        conninfo, env = split_url(url)
        argv += ["--dbname", conninfo]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if done.returncode != 0:
        raise PgToolError(f"{binary.name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def version(binary: Path) -> str:
    return run(binary, ["--version"]).strip()
