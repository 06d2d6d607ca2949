"""The local Prometheus's config and command line (valerix.local.prometheus)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from valerix.local import prometheus

TARGETS = {"order-api": ["127.0.0.1:3000"], "order-worker": ["127.0.0.1:9101"],
           "inventory-api": ["127.0.0.1:3001"], "inventory-worker": ["127.0.0.1:9102"]}


def test_config_scrapes_every_process_every_5s_with_the_repository_rules(tmp_path: Path) -> None:
    path = prometheus.write_config(tmp_path / "p" / "prometheus.yml", TARGETS)
    document = yaml.safe_load(path.read_text())
    assert document["global"]["scrape_interval"] == "5s" and document["global"]["evaluation_interval"] == "5s"
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in document["scrape_configs"]}
    assert jobs == TARGETS
    assert document["rule_files"] == [str(prometheus.RULES_FILE)]
    assert prometheus.rules_file() == prometheus.RULES_FILE


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian package `prometheus`; scripts/ci-deps has it)")
def test_promtool_accepts_the_config(tmp_path: Path) -> None:
    path = prometheus.write_config(tmp_path / "prometheus.yml", TARGETS)
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_command_keeps_data_under_home_and_listens_on_loopback(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/bin/{name}")
    argv = prometheus.prepare(tmp_path / ".valerix", TARGETS)
    assert argv is not None and argv[0] == "/opt/bin/prometheus"
    base = (tmp_path / ".valerix" / "prometheus").resolve()
    assert f"--config.file={base / 'prometheus.yml'}" in argv
    assert f"--storage.tsdb.path={base / 'data'}" in argv and (base / "data").is_dir()
    assert "--web.listen-address=127.0.0.1:9090" in argv
    assert any(arg.startswith("--storage.tsdb.retention.time=") for arg in argv)


def test_absent_binary_means_no_prometheus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert prometheus.find_prometheus() is None
    assert prometheus.prepare(tmp_path, TARGETS) is None
