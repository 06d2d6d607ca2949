"""Reservations against the real inventory database: atomic, idempotent, never oversold."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from valerix.inventory import db as inventory_db
from valerix.inventory import service
from valerix.inventory.domain import Line, Rejection, ReservationStatus

from support.db import outbox_types, stock
from support.uow import committed


def test_reserve_takes_every_line_and_writes_events(inventory_pool):
    before = stock(inventory_pool, "SKU-001"), stock(inventory_pool, "SKU-002")
    outcome = committed(inventory_pool, service.reserve, "ORD-1", [Line("SKU-002", 3), Line("SKU-001", 2)])
    assert outcome.success and outcome.reservation_id.startswith("RES-")
    assert outcome.remaining == {"SKU-001": before[0] - 2, "SKU-002": before[1] - 3}
    assert (stock(inventory_pool, "SKU-001"), stock(inventory_pool, "SKU-002")) == (before[0] - 2, before[1] - 3)
    assert outbox_types(inventory_pool) == ["StockReserved", "StockReserved"]


def test_repeat_replays_the_first_outcome_and_never_reserves_twice(inventory_pool):
    first = committed(inventory_pool, service.reserve, "ORD-2", [Line("SKU-003", 5)])
    again = committed(inventory_pool, service.reserve, "ORD-2", [Line("SKU-003", 5)])
    assert again.replayed and again.success and again.reservation_id == first.reservation_id
    assert stock(inventory_pool, "SKU-003") == 200 - 5


def test_all_or_nothing_when_one_line_is_short(inventory_pool):
    outcome = committed(inventory_pool, service.reserve, "ORD-3", [Line("SKU-001", 1), Line("SKU-006", 51)])
    assert not outcome.success and outcome.rejection is Rejection.INSUFFICIENT_STOCK
    assert [(s.product_id, s.requested, s.available) for s in outcome.shortages] == [("SKU-006", 51, 50)]
    assert stock(inventory_pool, "SKU-001") == 500
    replay = committed(inventory_pool, service.reserve, "ORD-3", [Line("SKU-001", 1), Line("SKU-006", 51)])
    assert replay.replayed and replay.rejection is Rejection.INSUFFICIENT_STOCK and len(replay.shortages) == 1
    assert replay.reservation_id is outcome.reservation_id is None  # a refusal holds no reservation


def test_unknown_product_is_rejected(inventory_pool):
    outcome = committed(inventory_pool, service.reserve, "ORD-4", [Line("NOPE-1", 1)])
    assert outcome.rejection is Rejection.UNKNOWN_PRODUCT


def test_an_unknown_product_beside_known_ones_takes_nothing(inventory_pool):
    outcome = committed(inventory_pool, service.reserve, "ORD-4B", [Line("SKU-001", 2), Line("NOPE-1", 1)])
    assert outcome.rejection is Rejection.UNKNOWN_PRODUCT
    assert [(s.product_id, s.requested, s.available) for s in outcome.shortages] == [("NOPE-1", 1, 0)]
    assert stock(inventory_pool, "SKU-001") == 500
    with inventory_pool.connection() as conn:
        assert inventory_db.reservation_lines(conn, "ORD-4B") == []


def test_release_returns_stock_once(inventory_pool):
    committed(inventory_pool, service.reserve, "ORD-5", [Line("SKU-004", 10)])
    assert committed(inventory_pool, service.release, "ORD-5", "order_cancelled") is True
    assert committed(inventory_pool, service.release, "ORD-5", "order_cancelled") is False
    assert stock(inventory_pool, "SKU-004") == 750
    assert outbox_types(inventory_pool)[-1] == "StockReleased"


def test_release_before_a_late_reserve_leaves_nothing_held(inventory_pool):
    """The caller gave up and failed the order; its ReserveStock arrives afterwards."""
    assert committed(inventory_pool, service.release, "ORD-6", "order_failed") is False
    late = committed(inventory_pool, service.reserve, "ORD-6", [Line("SKU-001", 7)])
    assert not late.success and late.status is ReservationStatus.RELEASED
    assert stock(inventory_pool, "SKU-001") == 500


def test_low_stock_alert_fires_once_when_crossing_the_threshold(inventory_pool):
    committed(inventory_pool, service.reserve, "ORD-7", [Line("SKU-006", 44)])   # 50 -> 6, threshold 5
    committed(inventory_pool, service.reserve, "ORD-8", [Line("SKU-006", 2)])    # 6 -> 4: crosses
    committed(inventory_pool, service.reserve, "ORD-9", [Line("SKU-006", 1)])    # 4 -> 3: already below
    assert outbox_types(inventory_pool).count("LowStockAlert") == 1


def test_concurrent_orders_never_oversell(inventory_pool):
    """60 threads race for 50 units of one product and 1 unit of another, in both lock orders."""
    barrier = threading.Barrier(60)

    def buy(i: int) -> bool:
        lines = [Line("SKU-006", 1), Line("SKU-001", 1)] if i % 2 else [Line("SKU-001", 1), Line("SKU-006", 1)]
        barrier.wait()
        return committed(inventory_pool, service.reserve, f"ORD-RACE-{i}", lines).success

    with ThreadPoolExecutor(max_workers=60) as pool:
        results = list(pool.map(buy, range(60)))
    assert sum(results) == 50
    assert stock(inventory_pool, "SKU-006") == 0
    with inventory_pool.connection() as conn:
        report = inventory_db.invariant_report(conn)
    assert report == {"negative_stock": 0, "drift": []}


def test_concurrent_duplicates_reserve_once(inventory_pool):
    barrier = threading.Barrier(20)

    def buy(_: int) -> str | None:
        barrier.wait()
        return committed(inventory_pool, service.reserve, "ORD-DUP", [Line("SKU-005", 3)]).reservation_id

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = set(pool.map(buy, range(20)))
    assert len(ids) == 1
    assert stock(inventory_pool, "SKU-005") == 5000 - 3


def test_the_demo_catalogue_is_seeded_once(inventory_url, inventory_pool):
    from valerix.kit import db

    committed(inventory_pool, service.reserve, "ORD-10", [Line("SKU-007", 1)])
    db.migrate(inventory_url, db.migration_files("valerix.kit", "valerix.inventory"))
    assert stock(inventory_pool, "SKU-007") == 19999


def test_a_rejected_multi_line_order_leaves_no_phantom_events(inventory_pool):
    # SKU-001 fits (and would cross its low-stock threshold) but SKU-006 is short: nothing may
    # be taken, and no event raised, for an order that does not fit whole.
    lines = [Line("SKU-001", 495), Line("SKU-006", 51)]
    outcome = committed(inventory_pool, service.reserve, "ORD-PH", lines)
    assert outcome.rejection is Rejection.INSUFFICIENT_STOCK
    assert stock(inventory_pool, "SKU-001") == 500
    assert outbox_types(inventory_pool) == []   # a rejected ReserveStock publishes nothing

    verified = committed(inventory_pool, service.verify, "ORD-PH2", lines)
    assert not verified.success
    assert outbox_types(inventory_pool) == ["OrderVerified"]   # the recovery path's answer only


def test_an_order_that_fits_raises_every_event(inventory_pool):
    outcome = committed(inventory_pool, service.reserve, "ORD-FIT", [Line("SKU-001", 495), Line("SKU-006", 5)])
    assert outcome.success
    assert outbox_types(inventory_pool) == ["StockReserved", "LowStockAlert", "StockReserved"]


def test_stock_returned_while_a_reservation_waits_for_the_lock_is_taken_whole(inventory_pool):
    """A reservation waits for a product's lock while another transaction puts stock back; once
    it has the lock it must judge *and* take by the stock it sees then, never by the older
    version its statement began with (that would take one line and skip the other)."""
    with inventory_pool.connection() as conn:
        conn.execute("UPDATE products SET stock = 2, initial_stock = initial_stock - stock + 2 WHERE id = 'SKU-006'")
    restock = inventory_pool.getconn()
    try:
        restock.execute("UPDATE products SET stock = stock + 5, initial_stock = initial_stock + 5 "
                        "WHERE id = 'SKU-006'")  # holds the row lock until the commit below
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(committed, inventory_pool, service.reserve, "ORD-WAIT",
                                  [Line("SKU-001", 1), Line("SKU-006", 3)])
            time.sleep(0.5)
            assert not waiting.done(), "the reservation should be waiting for SKU-006's lock"
            restock.commit()
            outcome = waiting.result(timeout=10)
    finally:
        inventory_pool.putconn(restock)
    assert outcome.success, outcome
    assert (stock(inventory_pool, "SKU-001"), stock(inventory_pool, "SKU-006")) == (499, 4)
    with inventory_pool.connection() as conn:
        assert inventory_db.invariant_report(conn) == {"negative_stock": 0, "drift": []}
