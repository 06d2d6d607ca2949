"""Which events reach the outbox: those a service acts on, or every one with PUBLISH_EVENTS=all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from valerix.contracts.events import EVENT_TYPES, LowStockAlert, OrderCreated, OrderFailed, VerifyOrder
from valerix.contracts.routing import SUBSCRIBED_EVENTS, SUBSCRIBERS, published_events
from valerix.kit import uow as uow_module
from valerix.kit.settings import CommonSettings
from valerix.kit.uow import UnitOfWork

from support.fake_pool import FakePool


@pytest.fixture
def subscribed_only() -> Iterator[None]:
    uow_module.publish_only(published_events("subscribed"))
    yield
    uow_module.publish_only(None)


def test_subscribed_events_are_exactly_what_some_service_receives():
    received = {event.event_type for subscriber in SUBSCRIBERS for event in subscriber.receives}
    assert received == SUBSCRIBED_EVENTS
    assert {"VerifyOrder", "OrderVerified", "OrderFailed", "OrderCancelled", "OrderShipped",
            "FinalStatesAsserted"} == SUBSCRIBED_EVENTS
    assert set(EVENT_TYPES) - SUBSCRIBED_EVENTS == {"OrderCreated", "OrderConfirmed", "StockReserved",
                                                     "StockReleased", "LowStockAlert"}


def test_the_setting_names_a_policy():
    assert published_events("subscribed") == SUBSCRIBED_EVENTS
    assert published_events("all") is None
    with pytest.raises(ValueError, match="PUBLISH_EVENTS"):
        published_events("some")


def test_the_environment_chooses_it(monkeypatch: pytest.MonkeyPatch):
    assert CommonSettings().publish_events == "subscribed"
    monkeypatch.setenv("PUBLISH_EVENTS", "all")
    assert CommonSettings().publish_events == "all"
    monkeypatch.setenv("PUBLISH_EVENTS", "everything")
    with pytest.raises(ValidationError):
        CommonSettings()


def test_an_event_nobody_receives_stays_out_of_the_outbox(subscribed_only: None):
    pool = FakePool()
    with UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        assert uow.add_event(OrderCreated(orderId="o-1", items=[])) is None
        assert uow.add_event(LowStockAlert(productId="p", currentStock=1, threshold=5)) is None
        assert uow.add_event(OrderFailed(orderId="o-1", reason="insufficient_stock")) is not None
        uow.add_event(VerifyOrder(orderId="o-2", items=[], originalRequestTime="2026-12-01T00:00:00Z",
                                  reason="grpc_timeout"))
        uow.commit()
    assert pool.conn.outbox == ["OrderFailed", "VerifyOrder"]


def test_with_all_every_event_is_published():
    uow_module.publish_only(published_events("all"))
    pool = FakePool()
    with UnitOfWork(pool) as uow:  # type: ignore[arg-type]
        uow.add_event(OrderCreated(orderId="o-1", items=[]))
        uow.commit()
    assert pool.conn.outbox == ["OrderCreated"]
