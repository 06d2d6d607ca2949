"""docs/events.md, generated from the event models, the routing contract and each service's
handler table: every event, where it goes, who sends it, who handles it, its fields and an
example envelope. `python -m valerix.contracts.catalog > docs/events.md` rewrites it;
tests/unit/test_bus_pure.py fails while it is stale."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from valerix.contracts.events import EVENT_TYPES, Envelope, EventData
from valerix.contracts.routing import INVENTORY_SERVICE, ORDER_SERVICE, QUEUES, SUBSCRIBED_EVENTS, TOPOLOGY, Subscriber
from valerix.inventory.handlers import HANDLERS as INVENTORY_HANDLERS
from valerix.kit.bus.topology import subscription_path
from valerix.kit.service_worker import Handlers
from valerix.order.handlers import HANDLERS as ORDER_HANDLERS

TABLES: list[tuple[Subscriber, Handlers]] = [(ORDER_SERVICE, ORDER_HANDLERS), (INVENTORY_SERVICE, INVENTORY_HANDLERS)]

PRODUCERS: dict[str, str] = {
    "OrderCreated": "order api: an order is placed (status pending)",
    "OrderConfirmed": "order api (stock reserved in time) or order worker (after OrderVerified)",
    "OrderFailed": "order api (insufficient stock), order worker (rejected verification, sweeper timeout)",
    "OrderCancelled": "order api: POST /api/orders/{id}/cancel",
    "OrderShipped": "order api: POST /api/orders/{id}/ship (operators)",
    "StockReserved": "inventory: one per order line when ReserveStock or a verification reserves",
    "StockReleased": "inventory worker: one per line when a failed or cancelled order's stock returns",
    "LowStockAlert": "inventory: a reservation takes a product's stock below its threshold",
    "OrderVerified": "inventory worker: the answer to VerifyOrder (reserved or rejected)",
    "VerifyOrder": ("order api (ReserveStock timed out or failed; after a timeout on the stream it is held back "
                    "`VERIFY_HOLD_MS`, 4 s, and withdrawn when inventory's late answer settles the order first) "
                    "and the order sweeper (re-send)"),
    "FinalStatesAsserted": "order worker's reconciler: final orders, once each, so inventory repairs drift",
}

_EXAMPLE_TIME = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
_LINES = [{"productId": "p-keyboard", "quantity": 2}]
EXAMPLES: dict[str, dict[str, Any]] = {
    "OrderCreated": {"orderId": "ord-7f3a", "items": _LINES},
    "OrderConfirmed": {"orderId": "ord-7f3a", "reservationId": "res-91c2"},
    "OrderFailed": {"orderId": "ord-7f3a", "reason": "insufficient_stock", "requestedQuantity": 2,
                    "availableStock": 1},
    "OrderCancelled": {"orderId": "ord-7f3a"},
    "OrderShipped": {"orderId": "ord-7f3a", "reservationId": "res-91c2", "items": _LINES},
    "StockReserved": {"orderId": "ord-7f3a", "productId": "p-keyboard", "quantity": 2, "remainingStock": 48,
                      "reservationId": "res-91c2"},
    "StockReleased": {"orderId": "ord-7f3a", "productId": "p-keyboard", "quantity": 2, "newStock": 50,
                      "reason": "order_cancelled"},
    "LowStockAlert": {"productId": "p-keyboard", "currentStock": 4, "threshold": 5},
    "OrderVerified": {"orderId": "ord-7f3a", "outcome": "reserved", "reservationId": "res-91c2"},
    "VerifyOrder": {"orderId": "ord-7f3a", "items": _LINES, "originalRequestTime": "2026-11-27T11:59:58Z",
                    "reason": "grpc_timeout"},
    "FinalStatesAsserted": {"released": ["ord-7f3a"], "held": ["ord-8b41"], "shipped": []},
}


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return re.sub(r"\b(typing|valerix\.contracts\.events|datetime)\.", "", text)


def _fields(model: type[EventData]) -> list[str]:
    rows = ["| field | type | required |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        required = "yes" if field.is_required() else f"no (default `{field.default!r}`)"
        kind = _type_name(field.annotation).replace("|", "\\|")  # a bare | would split the table cell
        rows.append(f"| `{name}` | `{kind}` | {required} |")
    return rows


def _example(event_type: str) -> str:
    data = EVENT_TYPES[event_type].model_validate(EXAMPLES[event_type])
    envelope = Envelope(eventType=event_type, eventId="3f1c2b9e-5d7a-4c1e-9a0b-6e2f8d4c1a7b",
                        timestamp=_EXAMPLE_TIME, data=data.model_dump(mode="json", exclude_none=True))
    return json.dumps(envelope.model_dump(mode="json"), indent=2)


def _handled_by(model: type[EventData]) -> list[str]:
    found = []
    for subscriber, handlers in TABLES:
        if model in handlers:
            entity = subscriber.entity_of(model)
            where = f"queue `{entity}`" if entity in QUEUES else f"`{entity}`"
            doc = (handlers[model].__doc__ or "").strip().splitlines()[0].rstrip(".")
            doc = doc[:1].lower() + doc[1:]
            found.append(f"{subscriber.service} worker via {where}: {doc}")
    return found


def _consumers(name: str, model: type[EventData]) -> str:
    if handled := _handled_by(model):
        return "; ".join(handled)
    subs = [s for s in TOPOLOGY.topics.get(model.destination) or ()
            if name in TOPOLOGY.filters.get(subscription_path(model.destination, s), (name,))]
    listeners = ", ".join(f"`{s}`" for s in subs)
    return f"none: {listeners} receives it and ignores it" if listeners else "none (no subscription takes it)"


def _published(name: str) -> str:
    return "always" if name in SUBSCRIBED_EVENTS else "only with `PUBLISH_EVENTS=all`"


def _destination(model: type[EventData]) -> str:
    subs = TOPOLOGY.topics.get(model.destination)
    if subs is None:
        return f"queue `{model.destination}`"
    names = ", ".join(f"`{s}`" for s in subs) or "none"
    return f"topic `{model.destination}` (subscriptions: {names})"


def render() -> str:
    out = [
        "# Events",
        "",
        "Generated by `python -m valerix.contracts.catalog > docs/events.md` from",
        "`services/valerix/contracts/` and each service's `handlers.py`; a test fails while this file is stale.",
        "",
        "Every message is the seed's envelope `{eventType, eventId, timestamp, data}` as JSON. The bus",
        "message id is the `eventId`, so the bus drops a re-published event within its duplicate-detection",
        "window (10 minutes), and each consumer records handled `eventId`s in its `inbox` table in the same",
        "transaction as the effect, so a redelivery changes nothing. Events leave a service only through",
        "its transactional outbox (`kit/outbox.py`). Every queue and subscription: lock 30 s, dead letter",
        "after 10 deliveries; `valerix bus status|peek|resubmit` inspects them. An order line (`Line`) is",
        "`{productId: str, quantity: int}`.",
        "",
        "**Published**: an event some Valerix service acts on is always published. The others are raised",
        "by the use cases but reach the outbox only when the deployment sets `PUBLISH_EVENTS=all` (chart:",
        "`events.publish: all`), for readers of its own (analytics, mail) subscribed to the topics: by",
        "default they would cost an outbox row, relay work and a bus message on the busiest path for",
        "nobody (BENCHMARKS.md, issue #13). Before that change every event was published.",
        "",
        "| event | destination | producer | consumers | published |",
        "|---|---|---|---|---|",
    ]
    for name, model in EVENT_TYPES.items():
        out.append(f"| [{name}](#{name.lower()}) | `{model.destination}` | {PRODUCERS[name]} | "
                   f"{_consumers(name, model)} | {_published(name)} |")
    for name, model in EVENT_TYPES.items():
        out += ["", f"## {name}", "", f"- destination: {_destination(model)}", f"- producer: {PRODUCERS[name]}",
                f"- consumers: {_consumers(name, model)}", f"- published: {_published(name)}", "",
                *_fields(model), "",
                "```json", _example(name), "```"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
