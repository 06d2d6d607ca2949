"""The default thread pools hold the bench's Gremlin scenario at the rate it offers on the
reference machine (80 % of normal's ~780 orders/s). Little's law: the threads a pool needs are
the calls per second it takes times how long each holds one. Too few, and undelayed calls queue
behind the sleeping ones (measured: unaffected p99 1.7 s at 200 orders/s with 64 API threads
and 128 gRPC threads, 47 ms with these defaults)."""

from __future__ import annotations

from valerix.checks.bench import SCENARIOS
from valerix.inventory.settings import InventorySettings
from valerix.kit.chaos import ChaosConfig
from valerix.order.settings import OrderSettings

GREMLIN_RATE = 600          # orders/s the defaults must hold under Gremlin
UNDELAYED_SECONDS = 0.05    # what an undelayed order holds an API thread for under that load


def _gremlin() -> tuple[float, float, float]:
    """(share of reservations delayed, shortest and longest delay in s) of the bench's scenario."""
    values, defaults = SCENARIOS["gremlin"].chaos, ChaosConfig()
    return (1 / int(values["GREMLIN_EVERY_N"]),
            int(values.get("GREMLIN_MIN_DELAY_MS", defaults.min_delay_ms)) / 1000,
            int(values.get("GREMLIN_MAX_DELAY_MS", defaults.max_delay_ms)) / 1000)


def test_order_api_threads_hold_the_delayed_orders_for_their_budget() -> None:
    settings = OrderSettings(order_database_url="postgresql://unused")  # type: ignore[arg-type]
    delayed, _, _ = _gremlin()
    budget = settings.reserve_deadline_ms / 1000
    needed = GREMLIN_RATE * (delayed * budget + (1 - delayed) * UNDELAYED_SECONDS)
    assert settings.order_api_workers * settings.order_api_threads >= needed


def test_inventory_grpc_threads_hold_the_delayed_calls_for_their_whole_delay() -> None:
    settings = InventorySettings(inventory_database_url="postgresql://unused")  # type: ignore[arg-type]
    delayed, shortest, longest = _gremlin()
    # A delayed call sleeps its whole delay, whether or not its caller still waits: a uniform
    # 2-5 s delay holds a thread 3.5 s on average.
    assert settings.grpc_max_workers >= GREMLIN_RATE * delayed * (shortest + longest) / 2
