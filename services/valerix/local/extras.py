"""Optional local programs (Prometheus, the backup service and scheduler): each is added
only when its tool is present in this build."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from valerix.local import supervisor

if TYPE_CHECKING:
    from valerix.local.stack import Stack


def programs(stack: Stack, valerix: list[str]) -> list[supervisor.Program]:
    found: list[supervisor.Program] = []
    config, p = stack.config, stack.config.ports
    if config.with_backup and importlib.util.find_spec("valerix.backup.cli") is not None:
        found.append(supervisor.Program("backup-service", [
            *valerix, "backup", "mock-server", "--host", "127.0.0.1", "--port", str(p.backup_service),
            "--data-dir", str(stack.home / "backup-service")], {}))
        found.append(supervisor.Program("backup-scheduler", [*valerix, "backup", "scheduler"], {}))
    return found
