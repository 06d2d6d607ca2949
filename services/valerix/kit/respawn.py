"""A small parent that keeps a server running in its container across Schrödinger crashes.

In Kubernetes a container whose process exits is restarted by the kubelet with a back-off that
grows to minutes (CrashLoopBackOff), so frequent chaos crashes would take the pod out of service.
This parent runs the server as a child and starts it again at once when it exits with the crash
exit code, as the local supervisor does. Any other exit is passed on, so the kubelet still sees
real failures. SIGTERM and SIGINT go to the child; the parent then exits with the child's code."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from types import FrameType

from valerix.kit.chaos import CRASH_EXIT_CODE

log = logging.getLogger(__name__)


def _mark_dead(pid: int) -> None:
    """Drops the dead child's live gauges (prometheus-client multiprocess files)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def run(argv: Sequence[str], restart_codes: frozenset[int] = frozenset({CRASH_EXIT_CODE}),
        pause: float = 0.1) -> int:
    """Runs argv until it exits with a code outside restart_codes or we are asked to stop."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    restarts = 0
    while True:
        child = subprocess.Popen(list(argv))
        code = child.wait()
        _mark_dead(child.pid)
        if stopping or code not in restart_codes:
            return code if code >= 0 else 128 - code
        restarts += 1
        log.warning("child crashed; starting it again", extra={"exitCode": code, "restarts": restarts})
        time.sleep(pause)
