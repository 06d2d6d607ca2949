"""The local Prometheus of `valerix up`: writes its prometheus.yml (5 s scrape and evaluation,
the repository's alert rules) and builds the command line for Debian's `prometheus` binary."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

INTERVAL = "5s"  # the 30 s rate() windows of the alerts need >= 2 samples; keep it <= 15 s
DEFAULT_LISTEN = "127.0.0.1:9090"
DEFAULT_RETENTION = "6h"
RULES_FILE = Path(__file__).resolve().parents[3] / "charts/valerix/files/prometheus/alerts.yml"


def find_prometheus() -> str | None:
    """The `prometheus` binary on PATH (Debian package `prometheus`), or None."""
    return shutil.which("prometheus")


def rules_file() -> Path | None:
    """The single alert rules file, present in a source checkout (not in a wheel)."""
    return RULES_FILE if RULES_FILE.is_file() else None


def config(targets: Mapping[str, Sequence[str]], rules: Path | None) -> dict[str, object]:
    """prometheus.yml as a dict: one scrape job per process kind, e.g. {"order-api": ["127.0.0.1:3000"]}."""
    document: dict[str, object] = {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": "4s"},
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": list(hosts)}]}
            for job, hosts in targets.items()
        ],
    }
    if rules is not None:
        document["rule_files"] = [str(rules.resolve())]
    return document


def write_config(path: Path, targets: Mapping[str, Sequence[str]], rules: Path | None = None) -> Path:
    """Writes prometheus.yml to `path`; `rules` defaults to the repository's alerts.yml."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config(targets, rules or rules_file()), sort_keys=False))
    return path


def command(binary: str, config_file: Path, data_dir: Path, listen: str = DEFAULT_LISTEN,
            retention: str = DEFAULT_RETENTION) -> list[str]:
    """The argv that runs Prometheus in the foreground (for supervisor or a test)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address={listen}",
        "--log.level=warn",
    ]


def prepare(home: Path, targets: Mapping[str, Sequence[str]], listen: str = DEFAULT_LISTEN,
            rules: Path | None = None) -> list[str] | None:
    """Writes `<home>/prometheus/prometheus.yml` and returns the command, or None when the
    binary is absent (the caller says so and runs without Prometheus)."""
    binary = find_prometheus()
    if binary is None:
        return None
    base = home.resolve() / "prometheus"
    config_file = write_config(base / "prometheus.yml", targets, rules)
    return command(binary, config_file, base / "data", listen)
