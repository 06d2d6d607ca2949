"""How a local stack is laid out: its home folder, its ports, which optional programs run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from valerix.kit.ports import free_port


@dataclass
class Ports:
    postgres: int = 25432
    order_api: int = 3000
    order_worker_metrics: int = 9101
    inventory_http: int = 3001
    inventory_grpc: int = 25051
    inventory_worker_metrics: int = 9102
    prometheus: int = 9090
    backup_service: int = 25080

    @classmethod
    def free(cls, *band: int) -> Ports:
        """Free ports for every server, from ``free_port``'s default band or from ``band``
        (low, high)."""
        chosen: set[int] = set()
        values = {}
        for name in cls.__dataclass_fields__:
            port = free_port(*band)
            while port in chosen:
                port = free_port(*band)
            chosen.add(port)
            values[name] = port
        return cls(**values)


@dataclass
class StackConfig:
    home: Path = Path(".valerix")
    ports: Ports = field(default_factory=Ports)
    order_api_workers: int = 2
    order_api_threads: int | None = None   # None: the order API's own default
    extra_env: dict[str, str] = field(default_factory=dict)
    with_prometheus: bool = True
    with_backup: bool = True
