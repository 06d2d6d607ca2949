from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from valerix.kit.settings import CommonSettings

# How the order API asks inventory to reserve: "stream", batches over one ReserveStockStream per
# process; "unary", a ReserveStock call per order (for a proxy that does not carry long-lived
# streams well).
ReserveTransport = Literal["stream", "unary"]

# Threads per gunicorn worker. By Little's law a request holds one for its whole answer, and an
# order whose reservation Gremlin delays holds it for the 2 s budget: at R orders/s, 1 in 5
# delayed, that is 0.4 R threads over the workers (2 workers x 160 hold Gremlin at ~750/s). An
# idle thread costs a little memory, not CPU; gthread starts them only as they are needed.
DEFAULT_API_THREADS = 160


class OrderSettings(CommonSettings):
    order_database_url: SecretStr
    inventory_grpc_target: str = "127.0.0.1:25051"
    reserve_deadline_ms: int = 2000
    reserve_transport: ReserveTransport = "stream"
    settle_allowance_ms: int = 200   # of the deadline, kept to record the outcome and answer
    # How long a timed-out reservation's late answer is awaited (order/late_answers.py) before
    # its held VerifyOrder goes out. Gremlin's longest default delay (5 s) less the deadline fits.
    verify_hold_ms: int = 4000
    # The credential inventory's gRPC asks for; the api needs it, the worker makes no gRPC call.
    inventory_grpc_token: SecretStr | None = None
    prometheus_url: str | None = None
    order_api_bind: str = "0.0.0.0:3000"
    order_api_workers: int = 2
    order_api_threads: int = DEFAULT_API_THREADS
    sweeper_resend_after_s: float = 10.0
    sweeper_fail_after_s: float = 120.0
    idempotency_retention_s: float = 86400.0  # as Stripe keeps keys: a retry after a day is a new order
    reconcile_after_s: float = 300.0      # final this long before the reconciler asserts the state
    reconcile_interval_s: float = 15.0
