"""kit.respawn: the in-container parent that absorbs Schrödinger crashes (real processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from valerix.kit.chaos import CRASH_EXIT_CODE

PARENT = "import sys; from valerix.kit import respawn; sys.exit(respawn.run(sys.argv[1:], pause=0))"


def test_the_crash_exit_code_is_absorbed_and_any_other_exit_passed_on(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    child = (f"import sys, pathlib; p = pathlib.Path({str(runs)!r}); n = len(p.read_text()) if p.exists() else 0; "
             f"p.write_text('x' * (n + 1)); sys.exit({CRASH_EXIT_CODE} if n < 2 else 3)")
    result = subprocess.run([sys.executable, "-c", PARENT, sys.executable, "-c", child], timeout=60)
    assert result.returncode == 3
    assert runs.read_text() == "xxx"  # two crashes absorbed, the third exit passed on


def test_sigterm_reaches_the_child_and_stops_the_parent(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = ("import pathlib, signal, sys, time; "
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); "
             f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, sys.executable, "-c", child])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.05)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0  # the child's own exit code: it stopped cleanly
    finally:
        parent.kill()
