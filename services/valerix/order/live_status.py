"""Which order status changes the storefront's live feed sends, and in what order. They are
read from the status history (order/db.py ``status_changes_after``), not announced by a NOTIFY.

Why no NOTIFY: PostgreSQL commits every notifying transaction under one global lock, so those
commits cannot be grouped, and every order paid for a feed that usually nobody watches. Reading
the history costs one indexed query per poll per process, and only while a socket is open.

Why the feed pages by transaction id: history ids come from a sequence, so a transaction can
commit a lower id after a higher one was read; a feed paging by id would skip it for good.
Paging by (xid, id) and taking only rows whose transaction is older than the oldest one still
running (``pg_snapshot_xmin``) is exact: no row can appear below that horizon any more, and new
transactions get ids above it. (Paging by id under the same horizon is not: a transaction that
took its xid early and its row id late commits a row past one a younger transaction still holds.)

Within a page, rows go out in id order. Across pages an older transaction's later change can
come before a younger transaction's earlier change of the same order, so the feed remembers the
last row it sent per order and drops an older one: the page already shows the newer status.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from valerix.order.db import FeedCursor

Row = dict[str, Any]
REMEMBERED_ORDERS = 10_000   # the per-order memory is bounded; the oldest entries are dropped first


class StatusFeed:
    """The feed's cursor and its per-order memory (no I/O: the hub runs the queries)."""

    def __init__(self) -> None:
        self.cursor: FeedCursor | None = None
        self._last_sent: OrderedDict[str, int] = OrderedDict()

    def restart(self, cursor: FeedCursor) -> None:
        """A new starting point (a new connection): what ended before it is not replayed."""
        self.cursor = cursor

    def take(self, page: list[Row]) -> list[Row]:
        """The rows of one page (in the query's (xid, id) order) to send, in id order;
        moves the cursor past the page."""
        if not page:
            return []
        self.cursor = (str(page[-1]["xid"]), int(page[-1]["id"]))
        fresh: list[Row] = []
        for row in sorted(page, key=lambda r: int(r["id"])):
            order_id, row_id = str(row["order_id"]), int(row["id"])
            if self._last_sent.get(order_id, 0) > row_id:
                continue
            self._last_sent[order_id] = row_id
            self._last_sent.move_to_end(order_id)
            fresh.append(row)
        while len(self._last_sent) > REMEMBERED_ORDERS:
            self._last_sent.popitem(last=False)
        return fresh
