"""The live feed's limits on a real gunicorn order API with real sockets: one client cannot
hold every slot, what a client sends is capped in size and rate, and a client that stops
reading is dropped instead of holding its thread and slot."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from support import auth
from support.storefront import Storefront, running_storefront

LIMITS = {"ORDER_WS_SLOTS_PER_CLIENT": "2", "ORDER_WS_MAX_MESSAGE_BYTES": "1024",
          "ORDER_WS_MESSAGES_PER_S": "2", "ORDER_WS_MESSAGE_BURST": "5", "ORDER_WS_SEND_TIMEOUT_S": "1"}


@pytest.fixture(scope="module")
def server(pg) -> Iterator[Storefront]:
    folder = Path(tempfile.mkdtemp(prefix="valerix-live-limits-"))
    try:
        with running_storefront(pg.admin_url, folder, workers=1, threads=12, slots=4, extra_env=LIMITS) as running:
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


TOKEN = auth.customer()["Authorization"].removeprefix("Bearer ")
PROTOCOLS = ["valerix.bearer", TOKEN]   # what the storefront offers: the bearer subprotocol and its token


def ws_url(server: Storefront) -> str:
    return server.url.replace("http://", "ws://") + "/ws/orders"


@contextmanager
def open_from(server: Storefront, address: str) -> Iterator[ClientConnection]:
    with connect(ws_url(server), open_timeout=5, source_address=(address, 0), subprotocols=PROTOCOLS) as socket:
        assert json.loads(socket.recv(timeout=5))["type"] == "hello"
        yield socket


def next_of_type(socket: ClientConnection, kind: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = json.loads(socket.recv(timeout=max(0.01, deadline - time.monotonic())))
        if found["type"] == kind:
            return found


def eventually_opens(server: Storefront, address: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open_from(server, address):
                return
        except InvalidStatus:
            assert time.monotonic() < deadline, "the slot was never given back"
            time.sleep(0.2)


def closed_with(socket: ClientConnection, timeout: float = 10.0) -> int | None:
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() < deadline:
            socket.recv(timeout=max(0.01, deadline - time.monotonic()))
    return closed.value.rcvd.code if closed.value.rcvd else None


def test_one_client_holds_at_most_its_share_of_slots(server):
    with ExitStack() as sockets:
        for _ in range(2):
            sockets.enter_context(open_from(server, "127.0.0.1"))
        with pytest.raises(InvalidStatus) as refused, open_from(server, "127.0.0.1"):
            pass
        assert refused.value.response.status_code == 503
        assert "share" in json.loads(refused.value.response.body)["detail"]
        other = sockets.enter_context(open_from(server, "127.0.0.2"))   # another client still gets in
        other.send(json.dumps({"type": "watch", "orderIds": ["ORD-X"]}))
    eventually_opens(server)


def test_an_oversized_message_closes_the_socket(server):
    with open_from(server, "127.0.0.1") as socket:
        socket.send(json.dumps({"type": "watch", "orderIds": ["x" * 2000]}))
        assert closed_with(socket) == 1009
    eventually_opens(server)


def test_a_client_sending_too_fast_is_closed(server):
    with open_from(server, "127.0.0.1") as socket:
        for _ in range(40):
            try:
                socket.send(json.dumps({"type": "watch", "all": True}))
            except ConnectionClosed:
                break
        assert closed_with(socket) == 1008
    eventually_opens(server)


def raw_client_that_never_reads(server: Storefront, messages: int) -> socket.socket:
    """A real WebSocket client (wsproto over a plain socket) with a tiny receive buffer that
    sends ``messages`` requests, each answered by the server, and never reads an answer."""
    split = urlsplit(server.url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((split.hostname, split.port))
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=split.netloc, target="/ws/orders", subprotocols=PROTOCOLS)))
    while not any(isinstance(e, AcceptConnection) for e in ws.events()):
        ws.receive_data(sock.recv(4096))
    sock.settimeout(5)
    for _ in range(messages):   # each draws an ~130-byte error reply that is never read
        try:
            sock.sendall(ws.send(TextMessage(data="?")))
        except OSError:
            break
    return sock


def test_a_client_that_stops_reading_is_dropped_and_others_are_served(pg, tmp_path):
    limits = {**LIMITS, "ORDER_WS_MESSAGES_PER_S": "100000", "ORDER_WS_MESSAGE_BURST": "100000"}
    with running_storefront(pg.admin_url, tmp_path, workers=1, threads=12, slots=2, extra_env=limits) as server:
        stuck = raw_client_that_never_reads(server, 50_000)
        try:
            with open_from(server, "127.0.0.2") as other:   # the second slot; served while the first is stuck
                other.send("?")
                assert "watch" in next_of_type(other, "error")["detail"]
                # Both slots are taken until the server gives up on the stuck client's send.
                eventually_opens(server, "127.0.0.3")
        finally:
            stuck.close()
