"""Event routing: the contract's subscribers give the topology; each service's HANDLERS table
must cover exactly what the contract routes to it."""

from __future__ import annotations

import pytest

from valerix.contracts.events import Envelope, OrderCancelled, OrderFailed, OrderVerified
from valerix.contracts.routing import INVENTORY_SERVICE, ORDER_SERVICE, TOPOLOGY
from valerix.inventory.handlers import HANDLERS as INVENTORY_HANDLERS
from valerix.kit.service_worker import dispatcher
from valerix.order.handlers import HANDLERS as ORDER_HANDLERS


def test_the_topology_is_derived_from_the_subscribers():
    assert TOPOLOGY.queues == ("verify-orders",)
    assert TOPOLOGY.topics == {"order-events": ("inventory-service-sub",), "inventory-events": ("order-service-sub",)}
    assert TOPOLOGY.filters == {"order-events/subscriptions/inventory-service-sub": ("OrderFailed", "OrderCancelled",
                                                                                   "OrderShipped",
                                                                                   "FinalStatesAsserted"),
                                "inventory-events/subscriptions/order-service-sub": ("OrderVerified",)}
    assert INVENTORY_SERVICE.entities() == {
        "verify-orders": ("VerifyOrder",),
        "order-events/subscriptions/inventory-service-sub": ("OrderFailed", "OrderCancelled", "OrderShipped",
                                                             "FinalStatesAsserted")}


def test_each_services_table_matches_what_the_contract_routes_to_it():
    dispatcher(ORDER_SERVICE, ORDER_HANDLERS)
    dispatcher(INVENTORY_SERVICE, INVENTORY_HANDLERS)
    with pytest.raises(ValueError, match="OrderCancelled"):
        dispatcher(INVENTORY_SERVICE, {OrderFailed: lambda uow, event: None})


def test_the_dispatcher_calls_the_handler_of_the_events_type_and_ignores_others():
    seen: list[object] = []
    handle = dispatcher(ORDER_SERVICE, {OrderVerified: lambda uow, event: seen.append((uow, event))})
    verified = OrderVerified(orderId="ORD-1", outcome="reserved", reservationId="RES-1")
    handle("uow", Envelope.wrap(verified))  # type: ignore[arg-type]
    handle("uow", Envelope.wrap(OrderCancelled(orderId="ORD-1")))  # type: ignore[arg-type]
    assert seen == [("uow", verified)]
