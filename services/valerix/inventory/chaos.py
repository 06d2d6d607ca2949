"""The chaos the inventory gRPC servicer injects around ReserveStock: Gremlin delays before the
work, Schrödinger's crash or lost answer after the commit (DESIGN §5)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from valerix.kit import metrics
from valerix.kit.chaos import ChaosSource, Gremlin, Schrodinger, crash

log = logging.getLogger(__name__)


class ChaosHooks(Protocol):
    def delay_seconds(self) -> float: ...
    def answer_lost(self) -> bool: ...


class NoChaos:
    def delay_seconds(self) -> float:
        return 0.0

    def answer_lost(self) -> bool:
        return False


class ReserveChaos:
    """The decisions the inventory gRPC servicer asks for around each reservation: how long
    Gremlin delays it before the work, and whether Schrödinger loses its committed answer."""

    def __init__(self, source: ChaosSource, die: Callable[[], None] = crash) -> None:
        self.source = source
        self.gremlin = Gremlin()
        self.schrodinger = Schrodinger()
        self._die = die

    def delay_seconds(self) -> float:
        delay = self.gremlin.delay_ms(self.source.current())
        if delay:
            metrics.CHAOS_DELAYS.labels(method="ReserveStock").inc()
            metrics.CHAOS_DELAY_SECONDS.labels(method="ReserveStock").inc(delay / 1000)
        return delay / 1000

    def answer_lost(self) -> bool:
        """After the commit: dies here (crash), or True when the answer must be replaced by an
        internal error (error); False when Schrödinger spares it."""
        config = self.source.current()
        if not self.schrodinger.strikes(config):
            return False
        metrics.CHAOS_FAULTS.labels(mode=config.failure).inc()
        if config.failure == "crash":
            log.error("schrodinger: dying after commit, before the answer")
            self._die()
            return False
        log.error("schrodinger: committed, answering with an internal error")
        return True
