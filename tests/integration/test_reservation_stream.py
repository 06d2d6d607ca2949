"""Reservations over inventory's ReserveStockStream, against a real gRPC server and database:
the wire contract (answers per order, delayed orders on their own, hostile batches), and the
order service's client (batches gathered while one is answered, its own deadline per order,
a broken stream, an inventory without the stream, Schrödinger's lost answers)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from valerix.inventory import grpc_server
from valerix.inventory.bootstrap import deps_for
from valerix.inventory.v1 import inventory_pb2 as pb
from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.kit.grpc_auth import token_metadata
from valerix.kit.grpc_server import serve_grpc
from valerix.kit.ports import free_port
from valerix.order.domain import OrderLine
from valerix.order.inventory_client import InventoryClient, InventoryUnavailable

from support.db import stock
from support.stand_in_inventory import serving


def _order(order_id: str, product: str = "SKU-003", quantity: int = 1) -> pb.ReserveStockRequest:
    return pb.ReserveStockRequest(order_id=order_id, lines=[pb.StockLine(product_id=product, quantity=quantity)])


def _chaos(chaos_dir, **values: str) -> None:
    for key, value in values.items():
        (chaos_dir / key).write_text(value)


class _Stream:
    """A raw ReserveStockStream call: batches go in as the test sends them."""

    def __init__(self, target: str, metadata: Any) -> None:
        self._channel = grpc.insecure_channel(target)
        self._outgoing: list[pb.ReserveBatch | None] = []
        self._ready = threading.Condition()
        self.call = pb_grpc.InventoryServiceStub(self._channel).ReserveStockStream(self._requests(), metadata=metadata,
                                                                                  timeout=20)

    def _requests(self):
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._outgoing)
                batch = self._outgoing.pop(0)
            if batch is None:
                return
            yield batch

    def send(self, batch: pb.ReserveBatch | None) -> None:
        with self._ready:
            self._outgoing.append(batch)
            self._ready.notify()

    def close(self) -> None:
        self.send(None)
        self._channel.close()


@pytest.fixture
def stream(inventory_target, grpc_token):
    opened = _Stream(inventory_target, token_metadata(grpc_token))
    yield opened
    opened.close()


def test_a_batch_is_answered_per_order_in_one_message(stream, inventory_pool):
    stream.send(pb.ReserveBatch(batch_id=7, orders=[
        _order("ORD-S1", quantity=2), _order("ORD-S2", "SKU-008", 5), _order(""), _order("ORD-S3", quantity=0)]))
    answers = next(stream.call)
    assert answers.batch_id == 7
    assert [r.order_id for r in answers.results] == ["ORD-S1", "ORD-S2", "", "ORD-S3"]
    first, short, no_id, no_quantity = answers.results
    assert first.response.success and first.response.outcome == pb.RESERVE_OUTCOME_RESERVED
    assert first.response.remaining_stock["SKU-003"] == 198
    assert not short.response.success and short.response.outcome == pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK
    for invalid in (no_id, no_quantity):
        assert not invalid.HasField("response")
        assert invalid.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and invalid.error_message
    # Idempotent by order id, as ReserveStock: the repeat replays, nothing is reserved twice.
    stream.send(pb.ReserveBatch(batch_id=8, orders=[_order("ORD-S1", quantity=2)]))
    again = next(stream.call)
    assert again.batch_id == 8 and again.results[0].response.replayed
    assert again.results[0].response.reservation_id == first.response.reservation_id
    assert stock(inventory_pool, "SKU-003") == 198


def test_an_oversized_batch_answers_its_excess_orders_invalid_and_reserves_none_of_them(stream, inventory_pool):
    orders = [_order(f"ORD-BIG-{i}", "SKU-005") for i in range(grpc_server.MAX_BATCH + 10)]
    stream.send(pb.ReserveBatch(batch_id=1, orders=orders))
    results = next(stream.call).results
    assert len(results) == len(orders)
    assert all(r.response.success for r in results[:grpc_server.MAX_BATCH])
    assert all(r.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0] for r in results[grpc_server.MAX_BATCH:])
    assert stock(inventory_pool, "SKU-005") == 5000 - grpc_server.MAX_BATCH


def test_a_stream_without_the_credential_is_refused_and_reserves_nothing(inventory_target, inventory_pool):
    for metadata in (None, token_metadata("wrong-token")):
        refused = _Stream(inventory_target, metadata)
        refused.send(pb.ReserveBatch(batch_id=1, orders=[_order("ORD-NOAUTH")]))
        with pytest.raises(grpc.RpcError) as error:
            next(refused.call)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        refused.close()
    assert stock(inventory_pool, "SKU-003") == 200


def test_a_delayed_order_is_answered_on_its_own_and_holds_up_nothing(stream, chaos_dir):
    _chaos(chaos_dir, GREMLIN_MODE="1", GREMLIN_EVERY_N="2", GREMLIN_MIN_DELAY_MS="1000",
           GREMLIN_MAX_DELAY_MS="1000")
    started = time.monotonic()
    stream.send(pb.ReserveBatch(batch_id=3, orders=[_order(f"ORD-D{i}") for i in range(4)]))
    now = next(stream.call)
    answered_now = time.monotonic() - started
    assert now.batch_id == 3 and [r.order_id for r in now.results] == ["ORD-D0", "ORD-D2"]
    late = [next(stream.call), next(stream.call)]
    answered_late = time.monotonic() - started
    assert {a.batch_id for a in late} == {0}
    assert sorted(r.order_id for a in late for r in a.results) == ["ORD-D1", "ORD-D3"]
    assert all(r.response.success for a in late for r in a.results)
    assert answered_now < 0.9 <= answered_late


def _lines(quantity: int = 1, product: str = "SKU-003") -> list[OrderLine]:
    return [OrderLine(product, quantity)]


def test_orders_that_gather_while_a_batch_is_answered_go_together(inventory_client, inventory_pool):
    # Hold SKU-003's row, so the first batch waits in inventory while the other orders gather.
    with inventory_pool.connection() as conn:
        conn.execute("SELECT stock FROM products WHERE id = 'SKU-003' FOR UPDATE")
        with ThreadPoolExecutor(max_workers=21) as pool:
            first = pool.submit(inventory_client.reserve, "ORD-G0", _lines(), 5.0)
            time.sleep(0.3)
            rest = [pool.submit(inventory_client.reserve, f"ORD-G{i}", _lines(), 5.0) for i in range(1, 21)]
            while len(inventory_client._reservations._unsent) < 20:
                time.sleep(0.01)
            conn.rollback()
            results = [first.result(5), *(f.result(5) for f in rest)]
    assert all(r.success and r.outcome == "reserved" for r in results)
    assert len({r.reservation_id for r in results}) == 21
    assert next(inventory_client._reservations._batch_ids) == 3   # two batches: the first, and the rest
    assert stock(inventory_pool, "SKU-003") == 200 - 21


def test_each_caller_waits_for_its_own_order_up_to_its_own_deadline(inventory_client, chaos_dir, inventory_pool):
    _chaos(chaos_dir, GREMLIN_MODE="1", GREMLIN_EVERY_N="2", GREMLIN_MIN_DELAY_MS="1500",
           GREMLIN_MAX_DELAY_MS="1500")   # the server's 2nd reservation waits 1.5 s
    assert inventory_client.reserve("ORD-T1", _lines(), 0.4).success
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        delayed = pool.submit(inventory_client.reserve, "ORD-T2", _lines(), 0.4)
        time.sleep(0.05)
        assert inventory_client.reserve("ORD-T3", _lines(), 0.4).success   # not held up by ORD-T2
        with pytest.raises(InventoryUnavailable) as error:
            delayed.result(2)
        gave_up = time.monotonic() - started
    assert error.value.reason == "grpc_timeout" and 0.4 <= gave_up < 1.2
    time.sleep(1.5)   # the delayed order is reserved anyway; its late answer finds no one waiting
    _chaos(chaos_dir, GREMLIN_MODE="0")
    again = inventory_client.reserve("ORD-T2", _lines(), 1.0)
    assert again.success and stock(inventory_pool, "SKU-003") == 197


def test_an_answer_after_its_callers_deadline_goes_to_the_late_handler_within_its_window(
        inventory_client, chaos_dir, inventory_pool):
    late: list[tuple[str, Any]] = []
    inventory_client.on_late_answer(lambda order_id, reservation: late.append((order_id, reservation)), window=0.8)
    _chaos(chaos_dir, GREMLIN_MODE="1", GREMLIN_EVERY_N="1", GREMLIN_MIN_DELAY_MS="700",
           GREMLIN_MAX_DELAY_MS="700")
    with pytest.raises(InventoryUnavailable):
        inventory_client.reserve("ORD-L1", _lines(), 0.3)   # answered 0.4 s after the deadline
    _chaos(chaos_dir, GREMLIN_MIN_DELAY_MS="1500", GREMLIN_MAX_DELAY_MS="1500")
    with pytest.raises(InventoryUnavailable):
        inventory_client.reserve("ORD-L2", _lines(), 0.3)   # answered 1.2 s after: past the window
    time.sleep(1.6)
    assert [order_id for order_id, _ in late] == ["ORD-L1"]
    assert late[0][1].success and late[0][1].outcome == "reserved"
    assert stock(inventory_pool, "SKU-003") == 198   # both were reserved; only one answer was wanted
    assert inventory_client._reservations._waiting == {}


def test_schrodinger_lost_answers_are_server_errors_after_the_commit(inventory_client, chaos_dir, inventory_pool):
    _chaos(chaos_dir, SCHRODINGER_MODE="1", SCHRODINGER_FAILURE="error", SCHRODINGER_CRASH_PROBABILITY="1")
    with pytest.raises(InventoryUnavailable) as error:
        inventory_client.reserve("ORD-LOST", _lines(3), 1.0)
    assert error.value.reason == "server_error"
    assert stock(inventory_pool, "SKU-003") == 197
    _chaos(chaos_dir, SCHRODINGER_MODE="0")
    assert inventory_client.reserve("ORD-OK", _lines(), 1.0).success   # the stream still serves


def test_a_broken_stream_fails_its_waiting_orders_and_the_next_order_opens_a_new_one(
        inventory_pool, chaos, chaos_dir, grpc_token):
    bind = f"127.0.0.1:{free_port()}"

    def start() -> grpc.Server:
        server, _ = serve_grpc(bind, grpc_server.InventoryServicer(deps_for(inventory_pool, chaos)).add_to_server,
                               [grpc_server.SERVICE_NAME], token=grpc_token)
        return server

    server = start()
    client = InventoryClient(bind, grpc_token, reserve_deadline=5.0)
    try:
        assert client.reserve("ORD-B1", _lines(), 2.0).success
        _chaos(chaos_dir, GREMLIN_MODE="1", GREMLIN_MIN_DELAY_MS="3000", GREMLIN_MAX_DELAY_MS="3000")
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(client.reserve, "ORD-B2", _lines(), 5.0)
            time.sleep(0.3)
            started = time.monotonic()
            server.stop(grace=None).wait()
            with pytest.raises(InventoryUnavailable) as error:
                waiting.result(5)
        assert error.value.reason == "connection_error" and time.monotonic() - started < 2.0
        _chaos(chaos_dir, GREMLIN_MODE="0")
        server = start()
        deadline = time.monotonic() + 10
        while True:   # the channel reconnects with back-off; then a new stream serves
            try:
                assert client.reserve("ORD-B3", _lines(), 2.0).success
                break
            except InventoryUnavailable:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        client.close()
        server.stop(grace=None).wait()


class _UnaryOnly(pb_grpc.InventoryServiceServicer):
    """An inventory from before the stream: ReserveStock only."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def ReserveStock(self, request: Any, context: Any) -> Any:
        self.calls.append(request.order_id)
        return pb.ReserveStockResponse(success=True, outcome=pb.RESERVE_OUTCOME_RESERVED,
                                       reservation_id=f"RES-{request.order_id}")


def test_an_inventory_without_the_stream_is_asked_with_unary_calls():
    servicer = _UnaryOnly()
    with serving(servicer) as target:
        client = InventoryClient(target, "any-token")
        try:
            answers = [client.reserve(f"ORD-U{i}", _lines(), 2.0) for i in range(3)]
        finally:
            client.close()
    assert [a.reservation_id for a in answers] == ["RES-ORD-U0", "RES-ORD-U1", "RES-ORD-U2"]
    assert servicer.calls == ["ORD-U0", "ORD-U1", "ORD-U2"]


def test_the_unary_transport_makes_a_call_per_order(inventory_target, grpc_token, inventory_pool):
    client = InventoryClient(inventory_target, grpc_token, reserve_transport="unary")
    try:
        assert client.reserve("ORD-UNARY", _lines(2), 2.0).success
        assert client._reservations._stream is None
    finally:
        client.close()
    assert stock(inventory_pool, "SKU-003") == 198


def test_an_inventory_shutting_down_ends_its_streams_and_the_waiting_orders_go_to_the_next_one(
        inventory_pool, chaos, chaos_dir, grpc_token):
    bind = f"127.0.0.1:{free_port()}"

    def start() -> tuple[grpc.Server, grpc_server.InventoryServicer]:
        servicer = grpc_server.InventoryServicer(deps_for(inventory_pool, chaos))
        server, _ = serve_grpc(bind, servicer.add_to_server, [grpc_server.SERVICE_NAME], token=grpc_token)
        return server, servicer

    old, old_servicer = start()
    client = InventoryClient(bind, grpc_token, reserve_deadline=5.0)
    new = None
    try:
        assert client.reserve("ORD-E0", _lines(), 2.0).success
        _chaos(chaos_dir, GREMLIN_MODE="1", GREMLIN_MIN_DELAY_MS="1000", GREMLIN_MAX_DELAY_MS="1000")
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(client.reserve, "ORD-E1", _lines(2), 4.0)
            time.sleep(0.3)   # ORD-E1 waits out its delay in the old inventory
            _chaos(chaos_dir, GREMLIN_MODE="0")
            stopped = old.stop(grace=5)   # as api_main shuts down: no new calls, then the streams end
            new, _ = start()              # the next inventory (a rolling deploy's new pod)
            old_servicer.end_streams()
            started = time.monotonic()
            answer = waiting.result(4)
        assert answer.success and time.monotonic() - started < 1.0   # answered by the new one, not after the delay
        stopped.wait()
        time.sleep(0.8)   # the old inventory's delayed reservation of ORD-E1 ran too: one reservation
        assert client.reserve("ORD-E1", _lines(2), 2.0).reservation_id == answer.reservation_id
        assert stock(inventory_pool, "SKU-003") == 200 - 1 - 2
    finally:
        client.close()
        old.stop(grace=None).wait()
        if new is not None:
            new.stop(grace=None).wait()
