"""kit.respawn: the in-container parent that absorbs Schrödinger crashes (real processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from valerix.kit.chaos import CRASH_EXIT_CODE


def _parent(body: str) -> list[str]:
    """A parent process running respawn.run(main) with main defined by body."""
    return [sys.executable, "-c", "import os, pathlib, signal, sys, time\n"
            "from valerix.kit import respawn\n"
            f"def main():\n{body}\n"
            "sys.exit(respawn.run(main, pause=0))"]


def test_the_crash_exit_code_is_absorbed_and_any_other_exit_passed_on(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    body = (f"    p = pathlib.Path({str(runs)!r}); n = len(p.read_text()) if p.exists() else 0\n"
            f"    p.write_text('x' * (n + 1))\n"
            f"    os._exit({CRASH_EXIT_CODE}) if n < 2 else sys.exit(3)")
    result = subprocess.run(_parent(body), timeout=60)
    assert result.returncode == 3
    assert runs.read_text() == "xxx"  # two crashes absorbed, the third exit passed on


def test_sigterm_reaches_the_child_and_stops_the_parent(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    body = ("    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            f"    pathlib.Path({str(ready)!r}).touch(); time.sleep(60)")
    parent = subprocess.Popen(_parent(body))
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.05)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0  # the child's own exit code: it stopped cleanly
    finally:
        parent.kill()


def test_an_unhandled_error_in_the_server_is_a_real_failure() -> None:
    result = subprocess.run(_parent("    raise RuntimeError('boom')"), timeout=60, capture_output=True, text=True)
    assert result.returncode == 1
