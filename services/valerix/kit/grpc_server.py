"""serve_grpc(): a gRPC server with the standard health and reflection services,
per-method metrics and the service credential check, shared by every gRPC service."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from valerix.kit import metrics
from valerix.kit.grpc_auth import TokenAuthInterceptor


class MetricsInterceptor(grpc.ServerInterceptor):
    """Times every unary call and records its status code."""

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                return inner(request, context)
            except Exception:
                code = "UNKNOWN"
                raise
            finally:
                # context.code() is set when the handler aborted with a status.
                set_code = context.code() if hasattr(context, "code") else None
                if set_code is not None and set_code != grpc.StatusCode.OK:
                    code = set_code.name
                metrics.GRPC_SERVER.labels(method=method, code=code).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            timed, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


def serve_grpc(bind: str, register: Callable[[grpc.Server], None], service_names: Sequence[str], *,
               token: str, max_workers: int = 32) -> tuple[grpc.Server, health.HealthServicer]:
    """`token`: the credential every call outside health and reflection must carry."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        # Metrics outermost, so refused calls are counted as UNAUTHENTICATED.
        interceptors=[MetricsInterceptor(), TokenAuthInterceptor(token)],
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 1 << 20)],
    )
    register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (*service_names, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    names = (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    if server.add_insecure_port(bind) == 0:
        raise RuntimeError(f"could not bind gRPC to {bind}")
    server.start()
    return server, health_servicer


def watch_health(servicer: health.HealthServicer, service_names: Sequence[str], check: Callable[[], None],
                 interval: float = 5.0) -> threading.Thread:
    """Keeps the named services' gRPC health status in step with the process's dependencies.
    The overall status ("") stays SERVING while the process lives: it is what the liveness
    probe asks, and a database outage must not restart every inventory pod."""

    def loop() -> None:
        while True:
            try:
                check()
                status = health_pb2.HealthCheckResponse.SERVING
            except Exception:
                status = health_pb2.HealthCheckResponse.NOT_SERVING
            for name in service_names:
                servicer.set(name, status)
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="grpc-health", daemon=True)
    thread.start()
    return thread
