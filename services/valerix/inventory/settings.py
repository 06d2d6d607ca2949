from __future__ import annotations

from pydantic import SecretStr

from valerix.kit.settings import CommonSettings


class InventorySettings(CommonSettings):
    inventory_database_url: SecretStr
    inventory_grpc_bind: str = "0.0.0.0:50051"
    inventory_http_bind: str = "0.0.0.0:3001"
    inventory_http_threads: int = 8
    # Gremlin parks a server thread for 2-5 s on 1 reservation in 5: 0.7 threads per order/s
    # offered (Little's law), so 512 hold it at ~730 orders/s; with too few, undelayed
    # reservations queue behind the sleeping ones. Threads start only as they are needed.
    grpc_max_workers: int = 512
    # The order service's credential; the api refuses to start without it (the worker needs none).
    inventory_grpc_token: SecretStr | None = None
