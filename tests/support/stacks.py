"""The whole system as real processes under supervisor, on free ports, for one test module or
session: started (or destroyed if the start fails), yielded, destroyed."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from valerix.local.config import Ports, StackConfig
from valerix.local.stack import Stack


@contextmanager
def running_stack(prefix: str, **config: Any) -> Iterator[Stack]:
    settings: dict[str, Any] = {"with_prometheus": False, "with_backup": False,
                                "extra_env": {"SWEEPER_RESEND_AFTER_S": "3"}, **config}
    started = Stack(StackConfig(home=Path(tempfile.mkdtemp(prefix=prefix)), ports=Ports.free(), **settings))
    try:
        started.start(wait=90)
    except Exception:
        started.destroy()
        raise
    try:
        yield started
    finally:
        started.destroy()
