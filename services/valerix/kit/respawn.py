"""A small parent that keeps a server running in its container across Schrödinger crashes.

In Kubernetes a container whose process exits is restarted by the kubelet with a back-off that
grows to minutes (CrashLoopBackOff), so frequent chaos crashes would take the pod out of service.
This parent runs the server in a forked child and forks a new one at once when the child exits
with the crash exit code, as the local supervisor restarts it. The parent has imported the
server's modules before forking (and started no thread), so a restart skips Python's start-up
and takes a fraction of a second. Any other exit is passed on, so the kubelet still sees real
failures. SIGTERM and SIGINT go to the child; the parent then exits with the child's code."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from valerix.kit.chaos import CRASH_EXIT_CODE

log = logging.getLogger(__name__)


def _mark_dead(pid: int) -> None:
    """Drops the dead child's live gauges (prometheus-client multiprocess files)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _child(main: Callable[[], object]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    except BaseException:
        log.exception("server failed")
        code = 1
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def run(main: Callable[[], object], restart_codes: frozenset[int] = frozenset({CRASH_EXIT_CODE}),
        pause: float = 0.05) -> int:
    """Runs main() in a child until it exits with a code outside restart_codes or we are asked
    to stop; returns that exit code (128 + n for a signal, as a shell reports it)."""
    stopping = False
    child = 0

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    restarts = 0
    while True:
        child = os.fork()
        if child == 0:
            _child(main)
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        _mark_dead(child)
        if stopping or code not in restart_codes:
            return code if code >= 0 else 128 - code
        restarts += 1
        log.warning("child crashed; starting it again", extra={"exitCode": code, "restarts": restarts})
        time.sleep(pause)
