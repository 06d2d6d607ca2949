"""Optional local programs (Prometheus, the backup service and scheduler): each is added
only when its tool is present in this build."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from valerix.local import prometheus, supervisor
from valerix.local.config import StackConfig

log = logging.getLogger(__name__)


def programs(config: StackConfig, home: Path, valerix: list[str]) -> list[supervisor.Program]:
    found: list[supervisor.Program] = []
    p = config.ports
    if config.with_prometheus:
        argv = prometheus.prepare(home, {
            "order-api": [f"127.0.0.1:{p.order_api}"], "order-worker": [f"127.0.0.1:{p.order_worker_metrics}"],
            "inventory-api": [f"127.0.0.1:{p.inventory_http}"],
            "inventory-worker": [f"127.0.0.1:{p.inventory_worker_metrics}"]}, listen=f"127.0.0.1:{p.prometheus}")
        if argv:
            found.append(supervisor.Program("prometheus", argv, {}))
        else:
            log.warning("Prometheus is not installed (apt-get install prometheus); running without it")
    if config.with_backup and importlib.util.find_spec("valerix.backup.cli") is not None:
        found.append(supervisor.Program("backup-service", [
            *valerix, "backup", "mock-server", "--host", "127.0.0.1", "--port", str(p.backup_service),
            "--data-dir", str(home / "backup-service")], {}))
        found.append(supervisor.Program("backup-scheduler", [*valerix, "backup", "scheduler"], {}))
    return found
