import pytest

from valerix.order.domain import (
    MAX_LINES,
    TRANSITIONS,
    IllegalTransition,
    InvalidOrder,
    Order,
    OrderLine,
    OrderStatus,
)


def order() -> Order:
    return Order.place([OrderLine("SKU-001", 2)])


def test_a_new_order_is_pending_with_its_first_history_entry():
    o = order()
    assert o.status is OrderStatus.PENDING and o.id.startswith("ORD-")
    assert [(c.from_status, c.to_status) for c in o.changes] == [(None, OrderStatus.PENDING)]


def test_happy_path_and_verification_path_record_every_change():
    o = order()
    o.await_verification("grpc_timeout")
    o.confirm("RES-1")
    assert o.status is OrderStatus.CONFIRMED and o.reservation_id == "RES-1"
    assert [c.to_status for c in o.changes] == ["pending", "pending_verification", "confirmed"]
    o.cancel()
    assert o.status is OrderStatus.CANCELLED and o.status.is_final


@pytest.mark.parametrize("current", list(OrderStatus))
@pytest.mark.parametrize("wanted", list(OrderStatus))
def test_only_listed_transitions_are_allowed(current, wanted):
    o = order()
    o.status = current
    move = {OrderStatus.CONFIRMED: lambda: o.confirm("RES-1"), OrderStatus.FAILED: lambda: o.fail("x"),
            OrderStatus.CANCELLED: o.cancel, OrderStatus.PENDING_VERIFICATION: lambda: o.await_verification("x"),
            OrderStatus.SHIPPED: o.ship, OrderStatus.PENDING: None}[wanted]
    if move is None:
        return  # nothing moves back to pending: there is no method for it
    if wanted in TRANSITIONS[current]:
        move()
        assert o.status is wanted
    else:
        with pytest.raises(IllegalTransition):
            move()
        assert o.status is current


def test_final_states_have_no_way_out():
    assert all(not TRANSITIONS[s] for s in (OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.SHIPPED))
    assert TRANSITIONS[OrderStatus.CONFIRMED] == {OrderStatus.CANCELLED, OrderStatus.SHIPPED}
    assert OrderStatus.SHIPPED.is_final


def test_a_customer_sees_only_its_own_orders_and_an_operator_every_one():
    mine = Order.place([OrderLine("SKU-001", 1)], customer_id="CUS-A")
    assert mine.visible_to("CUS-A") and mine.visible_to(None) and not mine.visible_to("CUS-B")
    assert not order().visible_to("CUS-A")   # an order from before customers: operators only


@pytest.mark.parametrize("lines, field", [
    ([], "items"),
    ([OrderLine("SKU-001", 1)] * 2, "items[1].productId"),
    ([OrderLine("SKU-001", 0)], "items[0].quantity"),
    ([OrderLine("SKU-001", 1001)], "items[0].quantity"),
    ([OrderLine("-bad", 1)], "items[0].productId"),
    ([OrderLine(f"P{i}", 1) for i in range(MAX_LINES + 1)], "items"),
])
def test_invalid_orders_are_refused_with_the_field(lines, field):
    with pytest.raises(InvalidOrder) as error:
        Order.place(lines)
    assert field in [e["field"] for e in error.value.errors]
