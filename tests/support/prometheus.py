"""Runs Debian's Prometheus for a test with the repository's rules (valerix.local.prometheus)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from valerix.local import prometheus

from support.traffic import wait_for

NOT_INSTALLED = "prometheus is not installed (Debian package `prometheus`; scripts/ci-deps has it)"


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(home: Path, targets: Mapping[str, Sequence[str]], port: int, log: Path) -> Iterator[str]:
    """Yields the URL of a ready Prometheus scraping `targets` every 5 s; stops it afterwards."""
    argv = prometheus.prepare(home, targets, listen=f"127.0.0.1:{port}")
    assert argv is not None, NOT_INSTALLED
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 30, every=0.2)
        yield url
    finally:
        stop(process)
