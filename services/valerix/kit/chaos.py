"""Chaos configuration and injection (DESIGN §5).

Defaults come from the seed's environment variables; files in CHAOS_DIR (one key per file,
as a mounted ConfigMap looks) override them and are re-read live, without a restart.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

log = logging.getLogger(__name__)

KEYS = ("GREMLIN_MODE", "GREMLIN_MIN_DELAY_MS", "GREMLIN_MAX_DELAY_MS", "GREMLIN_EVERY_N", "GREMLIN_SEED",
        "SCHRODINGER_MODE", "SCHRODINGER_CRASH_PROBABILITY", "SCHRODINGER_FAILURE", "SCHRODINGER_SEED")
MAX_DELAY_MS = 60_000
CRASH_EXIT_CODE = 70


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value.strip()), low), high)
    except ValueError:
        return default


def _float(value: str, default: float) -> float:
    try:
        return min(max(float(value.strip()), 0.0), 1.0)
    except ValueError:
        return default


@dataclass(frozen=True)
class ChaosConfig:
    gremlin: bool = False
    min_delay_ms: int = 2000
    max_delay_ms: int = 5000
    every_n: int = 0            # 0: every call is a candidate (random delay); N: only every Nth call
    gremlin_seed: int | None = None
    schrodinger: bool = False
    crash_probability: float = 0.1
    failure: Literal["crash", "error"] = "crash"
    schrodinger_seed: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> ChaosConfig:
        get = raw.get
        low = _int(get("GREMLIN_MIN_DELAY_MS", "2000"), 2000, 0, MAX_DELAY_MS)
        high = _int(get("GREMLIN_MAX_DELAY_MS", "5000"), 5000, 0, MAX_DELAY_MS)
        failure = get("SCHRODINGER_FAILURE", "crash").strip().lower()
        return cls(
            gremlin=_flag(get("GREMLIN_MODE", "false")),
            min_delay_ms=min(low, high), max_delay_ms=max(low, high),
            every_n=_int(get("GREMLIN_EVERY_N", "0"), 0, 0, 1_000_000),
            gremlin_seed=_int(get("GREMLIN_SEED", ""), 0, 0, 2**31) if get("GREMLIN_SEED") else None,
            schrodinger=_flag(get("SCHRODINGER_MODE", "false")),
            crash_probability=_float(get("SCHRODINGER_CRASH_PROBABILITY", "0.1"), 0.1),
            failure="error" if failure == "error" else "crash",
            schrodinger_seed=(_int(get("SCHRODINGER_SEED", ""), 0, 0, 2**31)
                              if get("SCHRODINGER_SEED") else None),
        )

    def as_dict(self) -> dict[str, object]:
        return {"gremlin": {"on": self.gremlin, "minDelayMs": self.min_delay_ms, "maxDelayMs": self.max_delay_ms,
                            "everyN": self.every_n},
                "schrodinger": {"on": self.schrodinger, "probability": self.crash_probability,
                                "failure": self.failure}}


def read_raw(chaos_dir: Path | None, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    raw = {k: environ[k] for k in KEYS if k in environ}
    if chaos_dir is not None and chaos_dir.is_dir():
        for key in KEYS:
            try:
                raw[key] = (chaos_dir / key).read_text(encoding="utf-8").strip()
            except (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError):
                continue
    return raw


class ChaosSource:
    """The live configuration: re-reads CHAOS_DIR at most every ``ttl`` seconds."""

    def __init__(self, chaos_dir: Path | None, ttl: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.chaos_dir = chaos_dir
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._config = ChaosConfig()

    def current(self) -> ChaosConfig:
        now = self._clock()
        with self._lock:
            if now - self._at >= self.ttl:
                config = ChaosConfig.parse(read_raw(self.chaos_dir))
                if config != self._config:
                    log.warning("chaos configuration changed", extra={"chaos": config.as_dict()})
                self._config, self._at = config, now
            return self._config


class Gremlin:
    """Decides each call's delay: seeded random in [min, max], on every call or every Nth."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self._rng = random.Random()
        self._seed: int | None = None

    def delay_ms(self, config: ChaosConfig) -> int:
        if not config.gremlin:
            return 0
        with self._lock:
            if config.gremlin_seed != self._seed:
                self._seed = config.gremlin_seed
                self._rng = random.Random(config.gremlin_seed)
            self._calls += 1
            if config.every_n and self._calls % config.every_n:
                return 0
            return self._rng.randint(config.min_delay_ms, config.max_delay_ms)


class Schrodinger:
    """Decides whether a committed call dies before answering."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._seed: int | None = None

    def strikes(self, config: ChaosConfig) -> bool:
        if not config.schrodinger:
            return False
        with self._lock:
            if config.schrodinger_seed != self._seed:
                self._seed = config.schrodinger_seed
                self._rng = random.Random(config.schrodinger_seed)
            return self._rng.random() < config.crash_probability


def crash() -> NoReturn:
    """Dies the way a killed process does: no cleanup, no answer (supervisor/kubelet restarts us)."""
    logging.shutdown()
    os._exit(CRASH_EXIT_CODE)
