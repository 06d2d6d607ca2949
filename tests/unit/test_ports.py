"""free_port() never hands out the band kept for the test that runs beside the others (the
self-healing test's stack starts with the other worker's and its database is down for 6 minutes
while other tests pick ports)."""

from __future__ import annotations

from valerix.kit.ports import SEPARATE_PORTS, free_port
from valerix.local.config import Ports


def test_free_port_stays_out_of_the_separate_band() -> None:
    assert all(free_port() < SEPARATE_PORTS[0] for _ in range(500))


def test_the_separate_band_is_below_the_ephemeral_range() -> None:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    assert SEPARATE_PORTS[1] <= ephemeral_low
    assert SEPARATE_PORTS[0] <= free_port(*SEPARATE_PORTS) < SEPARATE_PORTS[1]


def test_a_stack_can_take_all_its_ports_from_the_separate_band() -> None:
    ports = vars(Ports.free(*SEPARATE_PORTS)).values()
    assert len(set(ports)) == len(ports)
    assert all(SEPARATE_PORTS[0] <= port < SEPARATE_PORTS[1] for port in ports)
