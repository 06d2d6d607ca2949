"""Self-healing (issue #17): the inventory database stops for 6 minutes while orders are
cancelled and the sweeper fails pending ones. Every release waits out the outage (retried with
back-off far past the 10 deliveries that used to dead-letter it), the reconciler asserts the
final states too, and once the database is back everything is consistent with no human in
the loop: no held reservation for a failed or cancelled order, stock = initial - confirmed."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from valerix.checks import invariants
from valerix.kit import embedded_pg
from valerix.kit.ports import SEPARATE_PORTS, free_port
from valerix.local.config import Ports, StackConfig
from valerix.local.stack import Stack

from support import auth

# A 6-minute outage, then the healing; mostly waiting, so scripts/test runs it beside the rest
# (RUN_BESIDE in tests/support/scheduling.py).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

OUTAGE_SECONDS = 360
OLD_MAX_DELIVERIES = 10  # what dead-lettered a release before (about 4-5 minutes of retries)
RELEASES = "order-events/subscriptions/inventory-service-sub"
PRODUCT = "SKU-002"


@pytest.fixture
def split_stack() -> Iterator[tuple[Stack, embedded_pg.EmbeddedPostgres]]:
    """The whole system, with inventory's database in a PostgreSQL of its own (as in
    Kubernetes, one StatefulSet per database), so it can stop alone."""
    home = Path(tempfile.mkdtemp(prefix="valerix-heal-"))
    # Other tests run beside this one (scripts/test): its ports come from a band they never use,
    # so none can take one at start-up or while the database is down.
    inventory_pg = embedded_pg.EmbeddedPostgres(home / "inventory-pgdata", free_port(*SEPARATE_PORTS),
                                                embedded_pg.new_password()).start()
    url = embedded_pg.provision_database(inventory_pg.admin_url, "inventory", "inventory_svc",
                                         embedded_pg.new_password())
    before = os.environ.get("INVENTORY_DATABASE_URL")
    os.environ["INVENTORY_DATABASE_URL"] = url
    stack = Stack(StackConfig(home=home, ports=Ports.free(*SEPARATE_PORTS), with_prometheus=False, with_backup=False, extra_env={
        "SWEEPER_RESEND_AFTER_S": "3", "SWEEPER_FAIL_AFTER_S": "60",
        "CONSUMER_BACKOFF_BASE_S": "1", "CONSUMER_BACKOFF_CAP_S": "10",
        "RECONCILE_AFTER_S": "20", "RECONCILE_INTERVAL_S": "5"}))
    try:
        stack.start(wait=90)
        yield stack, inventory_pg
    finally:
        stack.destroy()
        inventory_pg.stop()
        if before is None:
            os.environ.pop("INVENTORY_DATABASE_URL", None)
        else:
            os.environ["INVENTORY_DATABASE_URL"] = before


def place(url: str, session: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/api/orders", json={"productId": PRODUCT, "quantity": 1}, headers=session, timeout=15)


def bus_deliveries(bus_url: str) -> tuple[int, int]:
    """The most deliveries of a release still waiting, and how many messages are dead-lettered."""
    with psycopg.connect(bus_url) as conn:
        row = conn.execute("SELECT coalesce(max(delivery_count) FILTER (WHERE entity = %s), 0), "
                           "count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) FROM bus_messages",
                           (RELEASES,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_six_minute_inventory_database_outage_heals_by_itself(split_stack):
    stack, inventory_pg = split_stack
    url = stack.order_url
    initial = httpx.get(f"{stack.inventory_url}/api/products/{PRODUCT}", timeout=5).json()["stock"]
    session = auth.session(url)
    confirmed = [place(url, session) for _ in range(6)]
    assert [r.status_code for r in confirmed] == [201] * 6

    inventory_pg.stop()
    outage_started = time.monotonic()
    cancelled = [httpx.post(f"{url}/api/orders/{r.json()['orderId']}/cancel", headers=session, timeout=15)
                 for r in confirmed[:3]]
    assert [r.status_code for r in cancelled] == [200] * 3
    pending = [place(url, session) for _ in range(3)]
    assert [r.status_code for r in pending] == [202] * 3, [r.text for r in pending]

    max_deliveries = 0
    while time.monotonic() - outage_started < OUTAGE_SECONDS:
        time.sleep(10)
        deliveries, dead = bus_deliveries(stack.urls["bus_db"])
        max_deliveries = max(max_deliveries, deliveries)
        assert dead == 0, "a message was dead-lettered during the outage"
    # The sweeper failed the pending orders long ago, and the releases outlived the old limit.
    for r in pending:
        assert httpx.get(f"{url}/api/orders/{r.json()['orderId']}", headers=session,
                         timeout=5).json()["status"] == "failed"
    assert max_deliveries > OLD_MAX_DELIVERIES, max_deliveries

    inventory_pg.start()
    deadline = time.monotonic() + 120
    report = invariants.check(stack.urls["order_db"], stack.urls["inventory_db"])
    while not report.ok and time.monotonic() < deadline:
        time.sleep(2)
        report = invariants.check(stack.urls["order_db"], stack.urls["inventory_db"])
    assert report.ok, report.as_dict()
    # The API's pool reconnects on its own back-off (attempts under ~16 s apart, kit/db.py).
    product = httpx.get(f"{stack.inventory_url}/api/products/{PRODUCT}", timeout=5)
    deadline = time.monotonic() + 60
    while product.status_code != 200 and time.monotonic() < deadline:
        assert product.status_code == 503 and product.headers["Retry-After"], product.text
        time.sleep(1)
        product = httpx.get(f"{stack.inventory_url}/api/products/{PRODUCT}", timeout=5)
    assert product.status_code == 200, product.text
    stock = product.json()["stock"]
    assert stock == initial - 3  # the three confirmed orders that were not cancelled
    assert bus_deliveries(stack.urls["bus_db"])[1] == 0
