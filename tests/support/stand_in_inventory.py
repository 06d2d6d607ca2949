"""A stand-in inventory gRPC server for tests that need inventory to answer in ways the real
one does not (a chosen status, an older version's methods only)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc

from valerix.inventory.v1 import inventory_pb2_grpc as pb_grpc
from valerix.kit.ports import free_port


@contextmanager
def serving(servicer: pb_grpc.InventoryServiceServicer) -> Iterator[str]:
    """Serves ``servicer`` (no credential check) on a free port: yields its target."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_InventoryServiceServicer_to_server(servicer, server)
    target = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(target)
    server.start()
    try:
        yield target
    finally:
        server.stop(grace=None).wait()
