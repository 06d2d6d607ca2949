"""free_port() never hands out the band kept for servers that stop and start again (the
self-healing test's database is down for 6 minutes while other tests pick ports)."""

from __future__ import annotations

from valerix.kit.ports import RESTART_SAFE, free_port


def test_free_port_stays_out_of_the_restart_safe_band() -> None:
    assert all(free_port() < RESTART_SAFE[0] for _ in range(500))


def test_the_restart_safe_band_is_below_the_ephemeral_range() -> None:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    assert RESTART_SAFE[1] <= ephemeral_low
    assert RESTART_SAFE[0] <= free_port(*RESTART_SAFE) < RESTART_SAFE[1]
