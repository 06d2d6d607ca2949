import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from valerix.contracts import catalog
from valerix.contracts.events import EVENT_TYPES, VERIFY_ORDERS, Envelope
from valerix.contracts.routing import TOPOLOGY
from valerix.kit.bus.azure import AzureBus, to_message
from valerix.kit.bus.topology import split_subscription, subscription_path
from valerix.kit.consumer import backoff_seconds

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_events_doc_is_current():
    assert DOC.read_text() == catalog.render(), \
        "docs/events.md is stale: run `python -m valerix.contracts.catalog > docs/events.md`"


def test_every_event_is_documented_with_a_valid_example():
    assert set(catalog.PRODUCERS) == set(EVENT_TYPES) == set(catalog.EXAMPLES)
    for name in EVENT_TYPES:
        assert f"## {name}\n" in catalog.render()


def test_subscription_paths_round_trip():
    path = subscription_path("inventory-events", "order-service-sub")
    assert path == "inventory-events/subscriptions/order-service-sub"
    assert split_subscription(path) == ("inventory-events", "order-service-sub")
    assert split_subscription(VERIFY_ORDERS) is None
    assert split_subscription("/subscriptions/x") is None


def test_default_topology_is_the_seed_entities():
    assert TOPOLOGY.receivable() == ["verify-orders", "order-events/subscriptions/inventory-service-sub",
                                    "inventory-events/subscriptions/order-service-sub"]
    assert (TOPOLOGY.max_delivery_count, TOPOLOGY.lock_duration_seconds) == (2000, 30.0)


@pytest.mark.parametrize(("count", "expected"), [(0, 1), (1, 1), (2, 2), (3, 4), (7, 60), (50, 60)])
def test_backoff_doubles_up_to_the_cap(count, expected):
    assert backoff_seconds(count, base=1, cap=60) == expected


def test_azure_messages_carry_the_event_id_as_message_id():
    envelope = Envelope(eventType="VerifyOrder", data={"orderId": "o-1"})
    at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    message = to_message(envelope, at)
    assert (message.message_id, message.subject, message.content_type) == (
        envelope.eventId, "VerifyOrder", "application/json")
    assert message.scheduled_enqueue_time_utc == at
    assert Envelope.model_validate(json.loads(str(message))) == envelope
    # Constructing the client is offline; no traffic until the first send or receive.
    bus = AzureBus("Endpoint=sb://example.invalid/;SharedAccessKeyName=k;SharedAccessKey=ZmFrZQ==")
    bus.close()
