"""The reconciler between orders and reservations (issue #17), on both real databases and the
real gRPC server: the order worker's half asserts each final state once (FinalStatesAsserted,
through the outbox), inventory's half repairs the drift it finds and counts it."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

from valerix.contracts.events import Envelope
from valerix.inventory import handlers as inventory_handlers
from valerix.inventory import service as inventory_service
from valerix.kit.uow import UnitOfWork
from valerix.order import service
from valerix.order.inventory_client import Catalogue, InventoryClient

from support.db import stock

NOW = service.ReconcilePolicy(after=0.0)


def place(client, product_id: str) -> str:
    response = client.post("/api/orders", data=json.dumps({"productId": product_id, "quantity": 2}),
                           content_type="application/json")
    assert response.status_code == 201, response.json
    return response.json["orderId"]


def repairs(kind: str) -> float:
    return REGISTRY.get_sample_value("valerix_reconciler_repairs_total", {"kind": kind}) or 0.0


def asserted(order_pool) -> list[Envelope]:
    with order_pool.connection() as conn:
        rows = conn.execute("SELECT payload FROM outbox WHERE event_type = 'FinalStatesAsserted' ORDER BY id")
        return [Envelope.model_validate(r["payload"]) for r in rows]


def reservation_status(inventory_pool, order_id: str) -> str:
    with inventory_pool.connection() as conn:
        return conn.execute("SELECT status FROM reservations WHERE order_id = %s", (order_id,)).fetchone()["status"]


def deliver(inventory_pool, envelope: Envelope) -> None:
    """What inventory's worker does with the event (the routing table's handler)."""
    with UnitOfWork(inventory_pool) as uow:
        inventory_handlers.HANDLERS[type(envelope.parse_data())](uow, envelope.parse_data())
        uow.commit()


def test_drift_from_lost_events_is_repaired_once_and_counted(client, order_deps, order_pool, inventory_pool):
    cancelled, released_under, shipped = place(client, "SKU-004"), place(client, "SKU-005"), place(client, "SKU-007")
    dead = InventoryClient("127.0.0.1:1", "any-token", other_deadline=0.5)
    offline = service.Deps(uow=order_deps.uow, inventory=dead, catalogue=Catalogue(dead))
    # Lost effects: the cancel's own release fails and its OrderCancelled is never delivered;
    # the shipment's OrderShipped is never delivered; a confirmed order's stock goes back.
    service.cancel_order(offline, cancelled)
    service.ship_order(order_deps, shipped)
    with UnitOfWork(inventory_pool) as uow:
        inventory_service.release(uow, released_under, "operator_mistake")
        uow.commit()
    dead.close()
    assert stock(inventory_pool, "SKU-004") == 748 and reservation_status(inventory_pool, shipped) == "reserved"
    before = {k: repairs(k) for k in ("released_held_reservation", "marked_shipped", "confirmed_without_reservation")}

    with UnitOfWork(order_pool) as uow:
        assert service.assert_final_states(uow, NOW) == 3
        uow.commit()
    (event,) = asserted(order_pool)
    data = event.parse_data()
    assert (data.released, data.held, data.shipped) == ([cancelled], [released_under], [shipped])
    deliver(inventory_pool, event)

    assert stock(inventory_pool, "SKU-004") == 750  # the leaked reservation came back
    assert reservation_status(inventory_pool, cancelled) == "released"
    assert reservation_status(inventory_pool, shipped) == "shipped"
    assert {k: repairs(k) - v for k, v in before.items()} == {
        "released_held_reservation": 1, "marked_shipped": 1, "confirmed_without_reservation": 1}

    # Each final state is asserted once; a redelivered assertion repairs nothing twice.
    with UnitOfWork(order_pool) as uow:
        assert service.assert_final_states(uow, NOW) == 0
        uow.commit()
    deliver(inventory_pool, event)
    assert stock(inventory_pool, "SKU-004") == 750
    assert repairs("released_held_reservation") - before["released_held_reservation"] == 1


def test_states_are_asserted_only_after_the_bound_and_again_after_a_change(client, order_deps, order_pool):
    order_id = place(client, "SKU-001")
    with UnitOfWork(order_pool) as uow:
        assert service.assert_final_states(uow, service.ReconcilePolicy(after=3600)) == 0
        assert service.assert_final_states(uow, NOW) == 1
        uow.commit()
    service.cancel_order(order_deps, order_id)
    with UnitOfWork(order_pool) as uow:
        assert service.assert_final_states(uow, NOW) == 1
        uow.commit()
    assert [e.parse_data().released for e in asserted(order_pool)] == [[], [order_id]]
