"""The Azure bus with a Send/Listen connection string (what the app pods get): the management API
answers 401, so readiness and the depth gauges must come from the data plane (peeking)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.servicebus import ServiceBusMessageState

from valerix.contracts.routing import TOPOLOGY
from valerix.kit.bus.azure import PEEK_PAGE, AzureBus, count_peeked

LISTEN_ONLY = "Endpoint=sb://example.invalid/;SharedAccessKeyName=send-listen;SharedAccessKey=ZmFrZQ=="


@dataclass
class Peeked:
    sequence_number: int
    state: ServiceBusMessageState = ServiceBusMessageState.ACTIVE


@dataclass
class BrowsingReceiver:
    """Answers peek_messages like Service Bus: from a sequence number, at most N, in order."""

    messages: list[Peeked]
    calls: list[tuple[int, int]] = field(default_factory=list)

    def peek_messages(self, max_message_count: int, sequence_number: int) -> list[Peeked]:
        self.calls.append((sequence_number, max_message_count))
        return [m for m in self.messages if m.sequence_number >= sequence_number][:max_message_count]


class RefusingAdmin:
    def __init__(self, status: int) -> None:
        self.status = status

    def __getattr__(self, name: str) -> Any:
        def refuse(*args: object, **kwargs: object) -> None:
            error = HttpResponseError(message=f"{name}: refused")
            error.status_code = self.status
            raise error
        return refuse

    def close(self) -> None:
        pass


def queue(active: int, scheduled: int = 0, start: int = 1) -> list[Peeked]:
    states = [ServiceBusMessageState.ACTIVE] * active + [ServiceBusMessageState.SCHEDULED] * scheduled
    return [Peeked(start + 3 * i, state) for i, state in enumerate(states)]  # sequence numbers have gaps


def test_peeking_counts_active_and_scheduled_across_pages() -> None:
    receiver = BrowsingReceiver(queue(PEEK_PAGE + 10, scheduled=5, start=40))
    assert count_peeked(receiver) == (PEEK_PAGE + 10, 5)
    assert receiver.calls[0] == (1, PEEK_PAGE)
    assert receiver.calls[1][0] == receiver.messages[PEEK_PAGE - 1].sequence_number + 1


def test_peeking_stops_at_the_cap() -> None:
    assert count_peeked(BrowsingReceiver(queue(30)), cap=12) == (12, 0)
    assert count_peeked(BrowsingReceiver([])) == (0, 0)


@pytest.fixture
def listen_only_bus(monkeypatch: pytest.MonkeyPatch) -> Any:
    bus = AzureBus(LISTEN_ONLY)
    bus._admin.close()
    monkeypatch.setattr(bus, "_admin", RefusingAdmin(401))
    receivers = {(entity, dead): BrowsingReceiver(queue(2 if not dead else 1, scheduled=0 if dead else 1))
                 for entity in TOPOLOGY.receivable() for dead in (False, True)}
    monkeypatch.setattr(bus, "_receiver", lambda entity, dead_letter=False: receivers[(entity, dead_letter)])
    yield bus
    monkeypatch.undo()
    bus.close()


def test_stats_without_manage_rights_come_from_peeking(listen_only_bus: AzureBus) -> None:
    stats = listen_only_bus.stats()
    assert [s.entity for s in stats] == sorted(TOPOLOGY.receivable())
    assert {(s.active, s.scheduled, s.dead_letter) for s in stats} == {(2, 1, 1)}
    assert listen_only_bus.stats() == stats  # and stays on the data plane


def test_ping_without_manage_rights_peeks(listen_only_bus: AzureBus) -> None:
    listen_only_bus.ping()


def test_other_management_errors_are_not_taken_for_missing_rights(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = AzureBus(LISTEN_ONLY)
    bus._admin.close()
    monkeypatch.setattr(bus, "_admin", RefusingAdmin(503))
    with pytest.raises(HttpResponseError):
        bus.stats()
    with pytest.raises(HttpResponseError):
        bus.ping()
    monkeypatch.undo()
    bus.close()
