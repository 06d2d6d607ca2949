from __future__ import annotations

from pydantic import SecretStr

from valerix.kit.settings import CommonSettings


class InventorySettings(CommonSettings):
    inventory_database_url: SecretStr
    inventory_grpc_bind: str = "0.0.0.0:50051"
    inventory_http_bind: str = "0.0.0.0:3001"
    inventory_http_threads: int = 8
    grpc_max_workers: int = 128  # Gremlin parks a thread per delayed call for 2-5 s
    # The order service's credential; the api refuses to start without it (the worker needs none).
    inventory_grpc_token: SecretStr | None = None
