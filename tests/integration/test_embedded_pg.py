import psycopg
import pytest

from valerix.kit import db, embedded_pg


def test_provisioned_role_owns_its_database_and_others_cannot_connect(pg, new_database):
    url = new_database("probe")
    other = new_database("other")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0].endswith("_svc")
    foreign = url.rsplit("/", 1)[0] + "/" + other.rsplit("/", 1)[1]
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(foreign)


def test_wrong_password_is_refused(pg):
    bad = pg.admin_url.replace(pg.password, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad)


def test_migrations_apply_once_and_record_their_names(new_database):
    url = new_database("mig")
    files = db.migration_files("valerix.kit")
    assert db.migrate(url, files) == [name for name, _ in files]
    assert db.migrate(url, files) == []
    assert db.schema_version(url) == files[-1][0]


def test_start_is_idempotent(pg):
    again = embedded_pg.EmbeddedPostgres(pg.pgdata, pg.port, pg.password).start()
    assert again.is_running()
