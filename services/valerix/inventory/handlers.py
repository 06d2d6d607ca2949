"""Which event goes to which inventory use case: the table the worker's consumers dispatch on."""

from __future__ import annotations

from valerix.contracts.events import FinalStatesAsserted, OrderCancelled, OrderFailed, OrderShipped, VerifyOrder
from valerix.inventory import metrics, service
from valerix.inventory.domain import Line
from valerix.kit.service_worker import Handlers
from valerix.kit.uow import UnitOfWork


def verify(uow: UnitOfWork, event: VerifyOrder) -> None:
    """Reserves or reads the outcome, answers OrderVerified."""
    service.verify(uow, event.orderId, [Line(i.productId, i.quantity) for i in event.items])


def release_failed(uow: UnitOfWork, event: OrderFailed) -> None:
    """Releases the order's reservation."""
    service.release(uow, event.orderId, f"order_failed:{event.reason}")


def release_cancelled(uow: UnitOfWork, event: OrderCancelled) -> None:
    """Releases the order's reservation."""
    service.release(uow, event.orderId, "order_cancelled")


def ship(uow: UnitOfWork, event: OrderShipped) -> None:
    """Marks the reservation shipped (never released)."""
    service.ship(uow, event.orderId)


def reconcile(uow: UnitOfWork, event: FinalStatesAsserted) -> None:
    """Repairs drift from the order service's final states and counts it."""
    for kind, count in service.reconcile(uow, event.released, event.held, event.shipped).items():
        if count:
            metrics.RECONCILER_REPAIRS.labels(kind=kind).inc(count)


HANDLERS: Handlers = {
    VerifyOrder: verify,
    OrderFailed: release_failed,
    OrderCancelled: release_cancelled,
    OrderShipped: ship,
    FinalStatesAsserted: reconcile,
}
