"""The chaos the inventory gRPC servicer injects around ReserveStock: Gremlin delays before the
work, Schrödinger's crash or lost answer after the commit (DESIGN §5)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import grpc

from valerix.kit import metrics
from valerix.kit.chaos import ChaosSource, Gremlin, Schrodinger, crash

log = logging.getLogger(__name__)


class ChaosHooks(Protocol):
    def before_reserve(self) -> None: ...
    def after_commit(self, context: grpc.ServicerContext) -> None: ...


class NoChaos:
    def before_reserve(self) -> None:
        return None

    def after_commit(self, context: grpc.ServicerContext) -> None:
        return None


class ReserveChaos:
    """The hooks the inventory gRPC servicer calls around ReserveStock."""

    def __init__(self, source: ChaosSource, sleep: Callable[[float], None] = time.sleep,
                 die: Callable[[], None] = crash) -> None:
        self.source = source
        self.gremlin = Gremlin()
        self.schrodinger = Schrodinger()
        self._sleep = sleep
        self._die = die

    def before_reserve(self) -> None:
        delay = self.gremlin.delay_ms(self.source.current())
        if delay:
            metrics.CHAOS_DELAYS.labels(method="ReserveStock").inc()
            metrics.CHAOS_DELAY_SECONDS.labels(method="ReserveStock").inc(delay / 1000)
            self._sleep(delay / 1000)

    def after_commit(self, context: grpc.ServicerContext) -> None:
        config = self.source.current()
        if not self.schrodinger.strikes(config):
            return
        metrics.CHAOS_FAULTS.labels(mode=config.failure).inc()
        if config.failure == "crash":
            log.error("schrodinger: dying after commit, before the answer")
            self._die()
            return
        log.error("schrodinger: committed, answering with an internal error")
        context.abort(grpc.StatusCode.INTERNAL, "schrodinger: processed, but the answer was lost")
