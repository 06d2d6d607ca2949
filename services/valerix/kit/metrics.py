"""Prometheus metrics shared by every process. Correct under gunicorn: when
PROMETHEUS_MULTIPROC_DIR is set, each scrape aggregates every worker's files, plus the live
collectors (values read at scrape time, such as stock levels) given to register_live()."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)

HTTP_REQUEST = Histogram(
    "valerix_http_request_duration_seconds", "HTTP request duration",
    ["service", "method", "route", "status"], buckets=LATENCY_BUCKETS)
GRPC_SERVER = Histogram(
    "valerix_grpc_server_duration_seconds", "gRPC server handling time",
    ["method", "code"], buckets=LATENCY_BUCKETS)
GRPC_CLIENT = Histogram(
    "valerix_grpc_client_duration_seconds", "gRPC client call time, as the caller saw it",
    ["method", "code"], buckets=LATENCY_BUCKETS)
DEPENDENCY_UP = Gauge(
    "valerix_dependency_up", "1 when the dependency answered its last health check",
    ["service", "dependency"], multiprocess_mode="livemostrecent")
OUTBOX_BACKLOG = Gauge(
    "valerix_outbox_backlog", "Outbox rows not yet published", ["service"],
    multiprocess_mode="livemostrecent")
OUTBOX_PUBLISH_LAG = Histogram(
    "valerix_outbox_publish_lag_seconds", "Commit-to-publish delay of outbox events", ["service"],
    buckets=LATENCY_BUCKETS)
OUTBOX_PUBLISHED = Counter("valerix_outbox_published_total", "Outbox events published", ["service"])
BUS_DEPTH = Gauge("valerix_bus_depth", "Active messages per queue or subscription", ["entity"],
                  multiprocess_mode="livemostrecent")
BUS_DEAD_LETTERS = Gauge("valerix_bus_dead_letters", "Dead-lettered messages per queue or subscription",
                         ["entity"], multiprocess_mode="livemostrecent")
MESSAGES_HANDLED = Counter("valerix_messages_handled_total", "Bus messages handled by consumers",
                           ["consumer", "result"])
CHAOS_DELAYS = Counter("valerix_chaos_delays_total", "Gremlin delays injected", ["method"])
CHAOS_DELAY_SECONDS = Counter("valerix_chaos_delay_seconds_total", "Seconds of Gremlin delay injected",
                              ["method"])
CHAOS_FAULTS = Counter("valerix_chaos_faults_total", "Schrodinger faults injected", ["mode"])


_LIVE: list[Collector] = []


def register_live(collector: Collector) -> None:
    """A collector that reads current state at scrape time. The multiprocess files hold only
    values a process wrote, so such a collector must join every scrape's registry itself."""
    _LIVE.append(collector)
    REGISTRY.register(collector)


def registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        for collector in _LIVE:
            reg.register(collector)
        return reg
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    return generate_latest(registry()), CONTENT_TYPE_LATEST
