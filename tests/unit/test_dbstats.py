"""Per-order database activity from two snapshots of PostgreSQL's statistics."""

from __future__ import annotations

from valerix.checks.dbstats import per_order


def snap(commits: int, orders: int, outbox: tuple[int, int, int]) -> dict:
    return {"order_db": {"commits": commits, "rollbacks": 0, "tables": {
        "orders": {"inserted": orders, "updated": orders, "deleted": 0},
        "outbox": dict(zip(("inserted", "updated", "deleted"), outbox, strict=True)),
        "products": {"inserted": 0, "updated": 0, "deleted": 0}}}}


def test_per_order_divides_the_differences_and_leaves_untouched_tables_out() -> None:
    found = per_order(snap(100, 10, (20, 20, 0)), snap(400, 110, (220, 420, 50)), 100)
    assert found["commits"] == {"order_db": 3.0, "all": 3.0}
    assert found["rows"] == {"order_db.orders": {"inserted": 1.0, "updated": 1.0, "deleted": 0.0},
                             "order_db.outbox": {"inserted": 2.0, "updated": 4.0, "deleted": 0.5}}


def test_a_database_new_in_the_second_snapshot_counts_from_zero() -> None:
    found = per_order({}, snap(30, 10, (0, 0, 0)), 10)
    assert found["commits"]["order_db"] == 3.0
