"""The StatefulSets' init script, run for real against PostgreSQL (the pgserver wheel's server
and psql): the service role owns its database and can do nothing else."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import chartlib as chart
import psycopg
import pytest

from valerix.kit import embedded_pg

SCRIPT = chart.CHART / "files" / "postgres" / "init-app-db.sh"


def _init(pg: embedded_pg.EmbeddedPostgres, user: str, db: str, password: str) -> None:
    env = {**os.environ, "PATH": f"{embedded_pg.pg_bin()}:{os.environ['PATH']}", "PGHOST": "127.0.0.1",
           "PGPORT": str(pg.port), "PGPASSWORD": pg.password, "POSTGRES_USER": "postgres",
           "APP_USER": user, "APP_DB": db, "APP_PASSWORD": password}
    subprocess.run(["sh", str(SCRIPT)], env=env, check=True, capture_output=True, text=True, timeout=60)


def _url(pg: embedded_pg.EmbeddedPostgres, user: str, password: str, db: str) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{pg.port}/{db}"


@pytest.fixture
def shared_pg(pg: embedded_pg.EmbeddedPostgres) -> Iterator[embedded_pg.EmbeddedPostgres]:
    yield pg
    # The script revokes CONNECT on `postgres` from PUBLIC; give the shared server back as it was.
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute("GRANT CONNECT ON DATABASE postgres TO PUBLIC")


def test_init_creates_a_least_privileged_owner(shared_pg: embedded_pg.EmbeddedPostgres) -> None:
    pg = shared_pg
    password = embedded_pg.new_password()
    _init(pg, "chartinit_svc", "chartinit_db", password)
    _init(pg, "chartother_svc", "chartother_db", password)
    with psycopg.connect(_url(pg, "chartinit_svc", password, "chartinit_db"), autocommit=True) as conn:
        conn.execute("CREATE TABLE migrations_work (id int)")  # owns its schema: migrations work
        role = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication FROM pg_roles "
                            "WHERE rolname = current_user").fetchone()
        assert role == (False, False, False, False)
    for db in ("chartother_db", "postgres"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(_url(pg, "chartinit_svc", password, db)).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_url(pg, "chartinit_svc", "wrong", "chartinit_db")).close()
