"""The live feed's slot accounting and inbound rate cap, without sockets."""

from __future__ import annotations

from valerix.order.live import MessageRate, SocketSlots


def test_a_client_gets_at_most_its_share_and_the_total_still_bounds_everyone():
    slots = SocketSlots(3, per_client=2)
    assert [slots.take("a"), slots.take("a"), slots.take("a")] == [None, None, "client"]
    assert slots.take("b") is None
    assert slots.take("c") == "full"
    slots.give_back("a")
    assert slots.take("a") is None and slots.in_use == 3
    for client in ("a", "a", "b"):
        slots.give_back(client)
    assert slots.in_use == 0 and slots.take("a") is None


def test_without_a_client_cap_one_client_may_take_every_slot():
    slots = SocketSlots(2)
    assert [slots.take("a"), slots.take("a"), slots.take("a")] == [None, None, "full"]


def test_the_rate_allows_a_burst_then_refuses():
    rate = MessageRate(per_second=0.0, burst=3)
    assert [rate.allow() for _ in range(5)] == [True, True, True, False, False]
