import pytest

from valerix.inventory.domain import (
    InvalidReservation,
    Line,
    ReservationStatus,
    crossed_low_stock,
    lock_order,
    releasable,
)


def test_lines_are_locked_in_product_id_order():
    assert [line.product_id for line in lock_order([Line("B", 1), Line("A", 2), Line("C", 1)])] == ["A", "B", "C"]


@pytest.mark.parametrize("lines", [[], [Line("A", 0)], [Line("A", 1001)], [Line("A", 1), Line("A", 1)], [Line("", 1)]])
def test_invalid_reservations_are_refused(lines):
    with pytest.raises(InvalidReservation):
        lock_order(lines)


@pytest.mark.parametrize("before, after, threshold, expected", [
    (11, 10, 10, True), (12, 11, 10, False), (10, 9, 10, False), (50, 0, 10, True), (1, 0, 0, True)])
def test_low_stock_fires_only_on_the_crossing(before, after, threshold, expected):
    assert crossed_low_stock(before, after, threshold) is expected


def test_only_reserved_stock_is_releasable():
    assert releasable(ReservationStatus.RESERVED)
    assert not releasable(ReservationStatus.REJECTED) and not releasable(ReservationStatus.RELEASED)
