"""The growth check's flatness criterion and its verdicts (the run itself: tests/e2e/test_growth_run.py)."""

from __future__ import annotations

from valerix.checks.growth import (
    KEPT_VERDICT,
    GrowthConfig,
    GrowthResult,
    Sample,
    judge,
    markdown,
    verdicts,
)
from valerix.order.settings import OrderSettings

RETENTION, HOUSEKEEPING = 300.0, 30.0
STEADY = RETENTION + HOUSEKEEPING


def sawtooth(minutes: int, per_second: float = 100.0, retention: float = 300.0,
             housekeeping: float = 30.0) -> list[tuple[float, int]]:
    """Rows of a table trimmed every ``housekeeping`` s of everything older than ``retention``."""
    series = []
    for at in range(0, minutes * 60 + 1, 60):
        last_trim = at - at % housekeeping
        oldest = max(0.0, last_trim - retention)
        series.append((float(at), int(per_second * (at - oldest))))
    return series


def test_a_table_trimmed_after_its_retention_is_flat():
    verdict = judge(sawtooth(60), RETENTION, HOUSEKEEPING)
    assert verdict.flat is True
    assert verdict.window_max is not None and verdict.after_max is not None
    assert verdict.after_max <= 1.25 * verdict.window_max


def test_a_first_cycle_sampled_just_after_each_trim_is_not_mistaken_for_growth():
    # Retention 10 s, trims every 5 s: 100 rows/s saw between 1,000 and 1,500. The first cycle
    # [15, 30) s was sampled just after trims, a later sample just before one.
    series = [(15.0, 1000), (20.0, 1000), (25.0, 1000), (30.0, 1000), (40.0, 1000), (45.0, 1490)]
    assert judge(series, 10, 5, slack=0).flat is True
    assert judge([*series, (50.0, 2000)], 10, 5, slack=0).flat is False


def test_a_steadily_growing_table_is_not_flat():
    growing = [(float(at), 50 * at) for at in range(0, 3601, 60)]
    verdict = judge(growing, RETENTION, HOUSEKEEPING)
    assert verdict.flat is False
    assert verdict.after_max == 50 * 3600


def test_slow_growth_is_caught_too():
    # Trimmed, but 5 rows/s are never trimmed (a leak beside the retention): over an hour that
    # is far past the first cycle's peak.
    leaking = [(at, rows + 5 * int(at)) for at, rows in sawtooth(60, per_second=10)]
    assert judge(leaking, RETENTION, HOUSEKEEPING).flat is False


def test_a_few_in_flight_rows_are_noise_not_growth():
    in_flight = [(float(at), 3 if at < 2 * STEADY else 150) for at in range(0, 3601, 60)]
    assert judge(in_flight, RETENTION, HOUSEKEEPING).flat is True
    assert judge(in_flight, RETENTION, HOUSEKEEPING, slack=0).flat is False


def test_a_run_too_short_for_the_retention_is_not_judged():
    assert judge(sawtooth(15), RETENTION, HOUSEKEEPING).flat is None  # 3 x 330 s is 16.5 min
    assert judge([], RETENTION, HOUSEKEEPING).flat is None


def test_business_tables_are_reported_and_the_bus_duplicates_use_their_own_window():
    samples = [Sample(at, {"order.orders": 10 * int(at), "order.outbox": rows, "bus.bus_duplicates": rows,
                           "inventory.products": 8, "order.mystery": 10 * int(at)})
               for at, rows in sawtooth(30)]
    found = {v.table: v for v in verdicts(samples, retention=300, housekeeping=30, duplicate_window_s=600)}
    assert found["order.orders"].verdict == KEPT_VERDICT and found["order.orders"].ok
    assert found["inventory.products"].kind == "fixed" and found["inventory.products"].ok
    assert found["order.outbox"].verdict == "flat" and found["order.outbox"].ok
    assert found["bus.bus_duplicates"].steady == 630 and found["bus.bus_duplicates"].verdict.startswith("run too short")
    assert not found["bus.bus_duplicates"].ok
    # A table nobody classified is judged like a retention table: this one grows.
    assert found["order.mystery"].kind == "unclassified" and found["order.mystery"].verdict == "GROWING"
    # Retention tables first, then unclassified, then the business and fixed tables.
    assert list(found)[:2] == ["bus.bus_duplicates", "order.outbox"] and list(found)[-1] == "inventory.products"


def test_the_result_fails_on_a_growing_table_and_the_report_shows_it():
    samples = [Sample(float(at), {"order.outbox": 50 * at, "order.orders": 10 * at}) for at in range(0, 3601, 60)]
    result = GrowthResult(config={"rate": 50.0, "minutes": 60.0, "retention": 300.0, "housekeeping": 30.0,
                                  "sample": 60.0}, duplicate_window=600, k6={}, answered={"201": 180_000},
                          samples=samples, verdicts=verdicts(samples, 300, 30, 600), settle_seconds=0.5,
                          invariants={"ok": True})
    assert not result.ok
    text = markdown(result)
    assert "| order.outbox | retention |" in text and "GROWING ❌" in text
    assert "| m:ss | order.outbox | order.orders |" in text and "| 60:00 | 180000 | 36000 |" in text


def test_the_retention_settings_reach_the_services(monkeypatch):
    for name, value in GrowthConfig(retention=10, housekeeping=5).env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ORDER_DATABASE_URL", "postgresql://x")
    settings = OrderSettings()  # type: ignore[call-arg]
    assert (settings.outbox_retention_s, settings.inbox_retention_s, settings.dead_letter_retention_s,
            settings.idempotency_retention_s, settings.housekeeping_interval_s) == (10, 10, 10, 10, 5)
