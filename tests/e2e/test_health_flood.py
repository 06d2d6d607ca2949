"""A /health flood against the real order API (gunicorn, every dependency real): readiness
keeps answering 200, and the bus database sees no new connection per /health call."""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest

pytestmark = pytest.mark.e2e

RATE = 1000          # /health requests per second, at most
SECONDS = 10
SENDERS = 8
PROBE_TIMEOUT = 3.0  # the chart's readinessProbe timeoutSeconds


def bus_sessions(stack) -> int:
    """Sessions ever opened on the bus database (pg_stat_database counts each connection)."""
    with psycopg.connect(stack.pg.admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = 'bus_db'").fetchone()
    assert row is not None
    return int(row[0])


class Client:
    """One kept HTTP connection; a failed request answers its error and opens a new one."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def get(self, path: str) -> int | str:
        try:
            self.conn.request("GET", path)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException) as error:
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            return repr(error)


def flood(host: str, port: int, until: float, per_sender: float, answered: list[int], failed: list[str]) -> None:
    client = Client(host, port, timeout=10)
    interval, next_at = 1.0 / per_sender, time.monotonic()
    while time.monotonic() < until:
        outcome = client.get("/health")
        if isinstance(outcome, int):
            answered.append(outcome)
        else:
            failed.append(outcome)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    client.conn.close()


def test_readiness_stays_200_under_a_health_flood(stack, measured):
    split = urlsplit(stack.order_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    assert host == "127.0.0.1"
    time.sleep(1.5)
    sessions_before = bus_sessions(stack)
    until = time.monotonic() + SECONDS
    answered: list[int] = []
    failed: list[str] = []
    senders = [threading.Thread(target=flood, args=(host, port, until, RATE / SENDERS, answered, failed))
               for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    readiness: list[int | str] = []
    ready = Client(host, port, timeout=PROBE_TIMEOUT)
    while time.monotonic() < until:
        readiness.append(ready.get("/health/ready"))
        time.sleep(0.1)
    ready.conn.close()
    for sender in senders:
        sender.join(timeout=30)
    time.sleep(1.5)   # session statistics are flushed about once a second
    opened = bus_sessions(stack) - sessions_before
    measured(f"/health flood: {len(answered)} answered in {SECONDS}s ({len(answered) / SECONDS:.0f}/s), "
          f"{answered.count(200)} x 200, {len(failed)} failed; /health/ready: {len(readiness)} probes; "
          f"bus_db sessions opened: {opened}")
    assert len(readiness) >= 20
    assert all(status == 200 for status in readiness), [s for s in readiness if s != 200][:5]
    assert len(answered) >= 1000 and not failed, failed[:5]
    assert opened < 20   # one kept connection per process, not one per /health call
