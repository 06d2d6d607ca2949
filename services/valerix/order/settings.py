from __future__ import annotations

from pydantic import SecretStr

from valerix.kit.settings import CommonSettings


class OrderSettings(CommonSettings):
    order_database_url: SecretStr
    inventory_grpc_target: str = "127.0.0.1:25051"
    reserve_deadline_ms: int = 2000
    settle_allowance_ms: int = 200   # of the deadline, kept to record the outcome and answer
    # The credential inventory's gRPC asks for; the api needs it, the worker makes no gRPC call.
    inventory_grpc_token: SecretStr | None = None
    prometheus_url: str | None = None
    order_api_bind: str = "0.0.0.0:3000"
    order_api_workers: int = 2
    order_api_threads: int = 32
    sweeper_resend_after_s: float = 10.0
    sweeper_fail_after_s: float = 120.0
    idempotency_retention_s: float = 86400.0  # as Stripe keeps keys: a retry after a day is a new order
    reconcile_after_s: float = 300.0      # final this long before the reconciler asserts the state
    reconcile_interval_s: float = 15.0
