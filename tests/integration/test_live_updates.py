"""The live feed at /ws/orders on a real gunicorn order API (its own process), real
PostgreSQL (the status poller) and a real gRPC inventory: open sockets never starve the API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from support import auth
from support.storefront import Storefront, running_storefront

RESULTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture
def home() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="valerix-live-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def ws_url(server: Storefront, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/ws/orders" + query


# The one customer most tests act as: its socket's "all" is every order it places.
CUSTOMER = auth.customer()


def protocols(headers: dict[str, str]) -> list[Subprotocol]:
    """What the storefront offers: the bearer subprotocol and the token."""
    return [Subprotocol("valerix.bearer"), Subprotocol(headers["Authorization"].removeprefix("Bearer "))]


@contextmanager
def open_socket(server: Storefront, query: str = "", headers: dict[str, str] = CUSTOMER) -> Iterator[ClientConnection]:
    with connect(ws_url(server, query), open_timeout=5, subprotocols=protocols(headers)) as socket:
        assert socket.subprotocol == "valerix.bearer"
        hello = json.loads(socket.recv(timeout=5))
        assert hello["type"] == "hello"
        yield socket


def refusal(server: Storefront, **options) -> Response:
    with pytest.raises(InvalidStatus) as refused, connect(ws_url(server), open_timeout=5, **options):
        pass
    return refused.value.response


def messages_until(socket: ClientConnection, predicate, timeout: float = 5.0) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(json.loads(socket.recv(timeout=max(0.01, deadline - time.monotonic()))))
        except TimeoutError:
            break
        if predicate(seen):
            return seen
    raise AssertionError(f"condition not met within {timeout}s; got {seen}")


def place(url: str, product_id: str, quantity: int, headers: dict[str, str] = CUSTOMER) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = httpx.post(f"{url}/api/orders", json={"productId": product_id, "quantity": quantity}, timeout=10,
                          headers=headers)
    return response, time.perf_counter() - started


def statuses(seen: list[dict]) -> set[tuple[str, str]]:
    return {(m["orderId"], m["status"]) for m in seen if m["type"] == "status"}


def test_fifty_open_sockets_leave_the_api_answering(pg, home):
    slots, threads = 50, 58
    with running_storefront(pg.admin_url, home, workers=1, threads=threads, slots=slots,
                            extra_env={"ORDER_WS_SLOTS_PER_CLIENT": str(slots)}) as server, \
            ExitStack() as sockets:
        idle_threads = server.threads()
        opened = [sockets.enter_context(open_socket(server)) for _ in range(slots)]
        refused = refusal(server, subprotocols=protocols(CUSTOMER))
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        assert json.loads(refused.body)["detail"].startswith("Every live-update slot")
        busy_threads = server.threads()

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: place(server.url, "SKU-007", 1 + i % 3), range(20)))
        reads = [httpx.get(f"{server.url}/api/products", timeout=10) for _ in range(5)]
        latencies = [elapsed for _, elapsed in answers]
        assert [r.status_code for r, _ in answers] == [201] * 20, [r.text for r, _ in answers]
        assert max(latencies) < 2.0, latencies
        assert all(r.status_code == 200 for r in reads)
        placed = {(r.json()["orderId"], "confirmed") for r, _ in answers}

        for socket in opened:   # every socket hears about every order
            messages_until(socket, lambda seen: placed <= statuses(seen), timeout=10)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live-sockets.json").write_text(json.dumps({
        "sockets_open": slots, "gunicorn_threads_per_worker": threads, "refused_status": 503,
        "worker_threads_idle": idle_threads, "worker_threads_with_sockets": busy_threads,
        "orders": len(answers), "order_latency_max_s": round(max(latencies), 3),
        "order_latency_median_s": round(statistics.median(latencies), 3)}, indent=2))


@pytest.fixture(scope="module")
def server(pg) -> Iterator[Storefront]:
    folder = Path(tempfile.mkdtemp(prefix="valerix-live-"))
    try:
        # Every socket here comes from 127.0.0.1: that one client may use all of a worker's slots
        # (the per-client cap has its own tests in test_live_limits.py).
        with running_storefront(pg.admin_url, folder, workers=2, threads=8, slots=4,
                                extra_env={"ORDER_WS_SLOTS_PER_CLIENT": "4"}) as running:
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_socket_sees_status_changes_and_stock_pushed(server):
    with open_socket(server) as socket:
        response, _ = place(server.url, "SKU-005", 7)
        order_id = response.json()["orderId"]
        seen = messages_until(socket, lambda s: any(
            m["type"] == "stock" and any(p["productId"] == "SKU-005" and p["stock"] <= 4993 for p in m["products"])
            for m in s) and (order_id, "confirmed") in statuses(s))
        assert all(m["type"] in ("status", "stock", "heartbeat") for m in seen)


def test_a_socket_can_watch_only_some_orders(server):
    first, _ = place(server.url, "SKU-004", 1)
    second, _ = place(server.url, "SKU-004", 1)
    mine, other = first.json()["orderId"], second.json()["orderId"]
    with open_socket(server, f"?orderId={mine}") as socket:
        assert httpx.post(f"{server.url}/api/orders/{other}/cancel", headers=CUSTOMER).status_code == 200
        assert httpx.post(f"{server.url}/api/orders/{mine}/cancel", headers=CUSTOMER).status_code == 200
        seen = messages_until(socket, lambda s: (mine, "cancelled") in statuses(s))
        assert other not in {order for order, _ in statuses(seen)}
        socket.send(json.dumps({"type": "watch", "orderIds": "not a list"}))
        assert messages_until(socket, lambda s: any(m["type"] == "error" for m in s))[-1]["type"] == "error"


def test_the_status_poller_reconnects_and_tells_sockets_to_resync(server, pg):
    with open_socket(server) as socket:
        with psycopg.connect(pg.admin_url, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE application_name = 'order-live-status'").fetchone()
        assert killed is not None and killed[0] >= 1
        messages_until(socket, lambda s: any(m["type"] == "resync" for m in s), timeout=8)
        response, _ = place(server.url, "SKU-003", 1)
        messages_until(socket, lambda s: (response.json()["orderId"], "confirmed") in statuses(s))


def test_slots_are_bounded_and_given_back(server):
    refused = 0
    with ExitStack() as sockets:
        for _ in range(12):   # 2 workers x 4 slots; the kernel may hand one worker more connections
            try:
                sockets.enter_context(open_socket(server))
            except InvalidStatus as error:
                assert error.response.status_code == 503
                refused += 1
        assert refused >= 4
        assert httpx.get(f"{server.url}/health/live", timeout=2).status_code == 200
    deadline = time.monotonic() + 5
    while True:   # a closed socket frees its slot
        try:
            with open_socket(server):
                break
        except InvalidStatus:
            assert time.monotonic() < deadline, "slots were not given back"
            time.sleep(0.1)


def test_plain_http_and_foreign_pages_are_refused(server):
    plain = httpx.get(f"{server.url}/ws/orders", timeout=5)
    assert plain.status_code == 426 and plain.headers["content-type"] == "application/problem+json"
    assert refusal(server, origin="http://evil.example").status_code == 403
    keyless = httpx.get(f"{server.url}/ws/orders", headers={"Upgrade": "websocket", "Connection": "Upgrade"}, timeout=5)
    assert keyless.status_code == 400 and keyless.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200


def test_a_socket_needs_a_valid_token(server):
    for options in ({}, {"subprotocols": ["valerix.bearer"]}, {"subprotocols": ["valerix.bearer", "x.y.z"]},
                    {"subprotocols": ["valerix.bearer", "a", "b"]},
                    {"additional_headers": {"Authorization": "Bearer nope"}}):
        refused = refusal(server, **options)
        assert refused.status_code == 401, options
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert json.loads(refused.body)["status"] == 401
    # Non-browser clients may send the header instead of the subprotocol.
    with connect(ws_url(server), open_timeout=5, additional_headers=auth.customer()) as socket:
        assert json.loads(socket.recv(timeout=5))["type"] == "hello"


def test_a_socket_cannot_watch_another_customers_orders(server):
    alice, bob = auth.customer(), auth.customer()
    theirs = place(server.url, "SKU-002", 1, alice)[0].json()["orderId"]
    with open_socket(server, f"?orderId={theirs}", headers=bob) as spy, \
            open_socket(server, headers=bob) as everything, \
            open_socket(server, f"?orderId={theirs}", headers=auth.operator()) as desk:
        spy.send(json.dumps({"type": "watch", "orderIds": [theirs]}))
        assert httpx.post(f"{server.url}/api/orders/{theirs}/cancel", headers=alice).status_code == 200
        messages_until(desk, lambda s: (theirs, "cancelled") in statuses(s))   # operators see every order
        mine = place(server.url, "SKU-002", 1, bob)[0].json()["orderId"]
        seen = messages_until(everything, lambda s: (mine, "confirmed") in statuses(s))
        assert theirs not in {order for order, _ in statuses(seen)}
        spy.send(json.dumps({"type": "watch", "orderIds": [mine]}))
        assert httpx.post(f"{server.url}/api/orders/{mine}/cancel", headers=bob).status_code == 200
        seen = messages_until(spy, lambda s: (mine, "cancelled") in statuses(s))
        assert theirs not in {order for order, _ in statuses(seen)}


def test_a_worker_shutting_down_closes_its_sockets_promptly(pg, home):
    with running_storefront(pg.admin_url, home, workers=1, threads=4, slots=2) as server, \
            open_socket(server) as socket:
        started = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert time.monotonic() - started < 3, "the socket must not wait for gunicorn's graceful timeout"
        exited = server.wait_exit(timeout=8)
        assert exited is not None and time.monotonic() - started < 8


def test_the_page_and_its_assets_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'<script src="/ui/app.js" defer>' in page.data
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name, mimetype in [("app.js", "text/javascript"), ("app.css", "text/css")]:
        asset = client.get(f"/ui/{name}")
        assert asset.status_code == 200 and asset.mimetype == mimetype
    missing = client.get("/ui/../api.py")
    assert missing.status_code == 404
    assert client.get("/ui/index.js").content_type == "application/problem+json"
