"""The arrival of a request, from the kernel's receive stamp (valerix.kit.gunicorn_app): a
request that waited in its socket while the process was busy arrived when its bytes came."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from valerix.kit.gunicorn_app import kernel_arrival, stamp_arrivals


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            yield client, accepted


def _until_the_kernel_stamps(client: socket.socket, accepted: socket.socket) -> None:
    """Linux turns receive stamps on for the whole machine lazily, from a work queue, when the
    first socket asks; until then a packet is stamped when it is read. Wait for that (once per
    boot in practice: gunicorn asks at its first connection), consuming the probes."""
    deadline = time.monotonic() + 5
    while True:
        client.sendall(b"?")
        time.sleep(0.05)
        stamped = kernel_arrival(accepted) < time.monotonic() - 0.04
        accepted.recv(1)
        if stamped:
            return
        assert time.monotonic() < deadline, "the kernel never stamped a packet"


def test_bytes_that_waited_in_the_socket_arrived_when_they_came(connection):
    client, accepted = connection
    stamp_arrivals(accepted)
    _until_the_kernel_stamps(client, accepted)
    before = time.monotonic()
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    sent = time.monotonic()   # a busy machine may pause this thread between the two clocks
    time.sleep(0.3)   # the process was busy: nobody read the socket
    arrived = kernel_arrival(accepted)
    assert before - 0.05 < arrived < sent + 0.05 and arrived < time.monotonic() - 0.25
    assert accepted.recv(100) == b"GET / HTTP/1.1\r\n\r\n"   # only peeked: nothing consumed


def test_nothing_waiting_or_no_stamp_means_now(connection):
    client, accepted = connection
    before = time.monotonic()
    assert before <= kernel_arrival(accepted) <= time.monotonic()   # nothing sent yet
    client.sendall(b"x")
    time.sleep(0.2)
    assert kernel_arrival(accepted) >= before + 0.2                  # never asked the kernel to stamp
