"""Every way the cut can split an operation between order_db and inventory_db, built with the
services' own code, is settled by `reconcile` so that all DESIGN §4 invariants hold."""

from __future__ import annotations

from valerix.backup import reconcile
from valerix.checks import invariants
from valerix.inventory import service as inventory_service
from valerix.inventory.domain import Line
from valerix.kit.uow import UnitOfWork
from valerix.order import db as order_db
from valerix.order import service
from valerix.order.domain import Order, OrderLine

from support.uow import committed


def _pending(order_pool, product: str, quantity: int) -> str:
    order = Order.place([OrderLine(product, quantity)])
    with UnitOfWork(order_pool) as uow:
        order_db.insert_order(uow.conn, order)
        uow.commit()
    return order.id


def _placed(deps: service.Deps, lines: list[OrderLine]) -> str:
    outcome = service.place_order(deps, lines)
    assert isinstance(outcome, service.Placed)
    return str(outcome.order["id"])


def test_reconcile_settles_each_kind_of_split_operation(order_pool, inventory_pool, inventory_url, order_deps):
    order_url = order_pool.conninfo
    # placed, then the cut: order pending, inventory already reserved (or not yet asked)
    reserved_late = _pending(order_pool, "SKU-001", 2)
    committed(inventory_pool, inventory_service.reserve, reserved_late, [Line("SKU-001", 2)])
    not_asked = _pending(order_pool, "SKU-003", 1)
    sold_out = _pending(order_pool, "SKU-008", 5)
    # placed after the order cut: inventory holds stock for an order that does not exist
    committed(inventory_pool, inventory_service.reserve, "ORD-PLACED-AFTER-THE-CUT", [Line("SKU-004", 3)])
    # cancelled across the cut, both ways round
    released_first = _placed(order_deps, [OrderLine("SKU-002", 4)])
    committed(inventory_pool, inventory_service.release, released_first, "order_cancelled")
    cancelled_holding = _placed(order_deps, [OrderLine("SKU-005", 6)])
    with UnitOfWork(order_pool) as uow:
        order = order_db.lock_order(uow.conn, cancelled_holding)
        order.cancel()
        order_db.save_status(uow.conn, order)
        uow.commit()
    untouched = _placed(order_deps, [OrderLine("SKU-007", 1)])
    # shipped before the cut, OrderShipped not yet heard by inventory: the stock must stay out
    shipped_in_flight = _placed(order_deps, [OrderLine("SKU-006", 2)])
    service.ship_order(order_deps, shipped_in_flight)

    before = invariants.check(order_url, inventory_url)
    assert not before.ok
    done = reconcile.reconcile(order_url, inventory_url)
    assert done == {"verified": 3, "released": 2, "cancelled": 1, "shipped": 1}
    after = invariants.check(order_url, inventory_url)
    assert after.ok, after.as_dict()
    status = {o: service.get_order(order_deps, o).order["status"] for o in
              (reserved_late, not_asked, sold_out, released_first, cancelled_holding, untouched, shipped_in_flight)}
    assert status == {reserved_late: "confirmed", not_asked: "confirmed", sold_out: "failed",
                      released_first: "cancelled", cancelled_holding: "cancelled", untouched: "confirmed",
                      shipped_in_flight: "shipped"}
    assert reconcile.reconcile(order_url, inventory_url) == {}    # a second run changes nothing
