"""scripts/up, as a person runs it: starts everything, Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from valerix.kit.ports import free_port, is_free

from support import auth

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_up_starts_the_system_and_ctrl_c_leaves_no_process_behind(tmp_path):
    ports = {name: free_port() for name in ("order", "inventory", "grpc", "postgres", "prometheus", "backup", "m1", "m2")}
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [str(ROOT / "scripts/up"), "--home", str(home), "--order-port", str(ports["order"]),
         "--inventory-port", str(ports["inventory"]), "--grpc-port", str(ports["grpc"]),
         "--postgres-port", str(ports["postgres"]), "--prometheus-port", str(ports["prometheus"]),
         "--backup-port", str(ports["backup"]), "--worker-metrics-ports", str(ports["m1"]), str(ports["m2"]),
         "--workers", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or proc.poll() is not None:
                break
        output = "".join(lines)
        assert "Valerix is up." in output, output
        assert f"http://127.0.0.1:{ports['order']}/" in output and str(home / "log") in output
        base = f"http://127.0.0.1:{ports['order']}"
        assert httpx.get(f"{base}/api/orders", timeout=10).status_code == 401
        order = httpx.post(f"{base}/api/orders", json={"productId": "SKU-001", "quantity": 1},
                           headers=auth.session(base), timeout=10)
        assert order.status_code == 201, order.text
        assert (home / "auth-signing-key").stat().st_mode & 0o077 == 0   # the key is the owner's alone
        os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C in the terminal does
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for name, port in ports.items():
        deadline = time.monotonic() + 15
        while not is_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert is_free(port), f"{name} port {port} still in use 15 s after Ctrl-C"
    leftovers = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left behind: {leftovers}"


def path_without(tmp_path: Path, program: str) -> str:
    """A PATH with every program of the current one except `program` (a machine without it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            if entry.name != program and not (bin_dir / entry.name).exists():
                (bin_dir / entry.name).symlink_to(entry)
    return str(bin_dir)


def up_help(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts/up"), "--help"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_up_with_prometheus_installed_says_nothing_about_installing_it():
    result = up_help({**os.environ})
    assert result.returncode == 0, result.stderr
    assert "Prometheus is not installed" not in result.stdout and "--prometheus-port" in result.stdout


def test_up_without_prometheus_prints_the_one_command_and_goes_on(tmp_path):
    # VALERIX_NO_INSTALL: as root on Debian scripts/up would otherwise install the package itself.
    result = up_help({**os.environ, "PATH": path_without(tmp_path, "prometheus"), "VALERIX_NO_INSTALL": "1"})
    assert result.returncode == 0, result.stderr
    assert "Prometheus is not installed, so the alert lights stay grey. Install it with: " \
           "sudo apt-get install -y prometheus && sudo systemctl disable --now prometheus" in result.stdout
    assert "--prometheus-port" in result.stdout   # and valerix up ran
