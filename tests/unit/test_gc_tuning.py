"""The API processes' garbage-collector thresholds (kit.gc_tuning)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from valerix.kit import gc_tuning
from valerix.kit.settings import CommonSettings


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_a_serving_process_collects_its_young_objects_less_often() -> None:
    assert gc_tuning.tune_for_serving() == gc.get_threshold() == gc_tuning.SERVING_THRESHOLDS
    assert gc.get_threshold()[0] > 700   # CPython's default


def test_the_young_threshold_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CommonSettings().gc_young_threshold == gc_tuning.SERVING_THRESHOLDS[0]
    monkeypatch.setenv("GC_YOUNG_THRESHOLD", "700")
    young = CommonSettings().gc_young_threshold
    assert gc_tuning.tune_for_serving(young) == (700, *gc_tuning.SERVING_THRESHOLDS[1:]) == gc.get_threshold()


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_threshold_that_would_stop_collection_or_is_not_a_number_is_refused(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GC_YOUNG_THRESHOLD", value)
    with pytest.raises(ValidationError):
        CommonSettings()
