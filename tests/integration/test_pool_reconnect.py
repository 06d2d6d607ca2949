"""kit.db.make_pool after a database restart: connections the server dropped are replaced on
checkout, so the first requests after the restart succeed (found by tests/containers: kill -9
of order-db left order-api answering 503 once per stale pooled connection)."""

from __future__ import annotations

import psycopg

from valerix.kit import db, embedded_pg


def test_connections_dropped_by_the_server_are_replaced_on_checkout(new_database, pg: embedded_pg.EmbeddedPostgres
                                                                     ) -> None:
    url = new_database("reconnect")
    pool = db.make_pool(url, name="test-reconnect", min_size=3, max_size=3)
    try:
        pool.wait(timeout=10)
        with psycopg.connect(pg.admin_url, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE application_name = 'test-reconnect'").fetchone()
        assert killed is not None and killed[0] == 3
        for _ in range(6):  # more than the pool holds: every stale connection is met
            with pool.connection(timeout=10) as conn:
                assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    finally:
        pool.close()
