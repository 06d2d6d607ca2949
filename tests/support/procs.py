"""Real processes for the crash tests: start with the test's environment, wait for a
marker file, kill -9, and always clean up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    tests_dir = str(Path(__file__).resolve().parents[1])
    full_env = {**os.environ, "PYTHONPATH": tests_dir, "LOG_LEVEL": "INFO", **env}
    return subprocess.Popen([sys.executable, *args], env=full_env, stdout=out, stderr=subprocess.STDOUT)


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {path.name} appeared")
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear within {timeout}s")


def kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM, as the kubelet sends it; returns the exit code (kills after the timeout)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode
