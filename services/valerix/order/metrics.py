"""Order-specific metrics (the shared ones live in valerix.kit.metrics)."""

from prometheus_client import Counter, Gauge

ORDERS = Counter("valerix_orders_total", "Orders reaching each status", ["status"])
PENDING_VERIFICATION = Gauge("valerix_orders_pending_verification", "Orders waiting for verification",
                             multiprocess_mode="livemostrecent")
OLDEST_UNFINISHED = Gauge("valerix_orders_oldest_unfinished_age_seconds",
                          "Age of the oldest order not yet final (0: none)", multiprocess_mode="livemostrecent")
ASSERTED = Counter("valerix_reconciler_asserted_total", "Final order states asserted to inventory")
SWEEPER_ACTIONS = Counter("valerix_sweeper_actions_total", "Sweeper re-sends and failures", ["action"])
REFUSED_LATE = Counter("valerix_orders_refused_late_total",
                       "Orders refused with 503 before anything was written: they queued past the reservation deadline")
LATE_ANSWERS = Counter("valerix_orders_late_answers_total",
                       "Orders settled from a reservation answer that came after the caller's deadline")
