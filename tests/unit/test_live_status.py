"""The live feed's paging and per-order ordering, without a database."""

from __future__ import annotations

from valerix.order.live_status import REMEMBERED_ORDERS, StatusFeed


def row(xid: int, row_id: int, order_id: str = "A", status: str = "confirmed") -> dict:
    return {"xid": str(xid), "id": row_id, "order_id": order_id, "to_status": status, "reason": None,
            "customer_id": "CUS-A"}


def ids(rows: list[dict]) -> list[int]:
    return [r["id"] for r in rows]


def test_a_page_goes_out_in_id_order_and_the_cursor_moves_past_it():
    feed = StatusFeed()
    feed.restart(("100", 0))
    page = [row(100, 7, "A"), row(101, 5, "B"), row(102, 6, "C")]   # the query's (xid, id) order
    assert ids(feed.take(page)) == [5, 6, 7]
    assert feed.cursor == ("102", 6)
    assert feed.take([]) == [] and feed.cursor == ("102", 6)


def test_an_older_change_of_an_order_after_a_newer_one_was_sent_is_dropped():
    feed = StatusFeed()
    feed.restart(("99", 0))
    assert ids(feed.take([row(99, 8, "A", "cancelled")])) == [8]
    # A younger transaction's earlier change of A, released by the horizon only now.
    assert ids(feed.take([row(105, 6, "A", "confirmed"), row(106, 9, "B")])) == [9]


def test_a_restart_keeps_the_per_order_memory():
    feed = StatusFeed()
    feed.restart(("1", 0))
    feed.take([row(1, 10, "A")])
    feed.restart(("50", 0))
    assert feed.take([row(50, 3, "A")]) == []


def test_the_per_order_memory_is_bounded():
    feed = StatusFeed()
    feed.restart(("1", 0))
    feed.take([row(2, i + 1, f"O{i}") for i in range(REMEMBERED_ORDERS + 5)])
    assert len(feed._last_sent) == REMEMBERED_ORDERS
    assert ids(feed.take([row(3, 1, "O0")])) == [1]   # forgotten first: sent again, never wrongly held
