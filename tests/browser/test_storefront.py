"""The storefront in headless Chromium against the whole system running as real processes."""

from __future__ import annotations

import re
import time
from contextlib import ExitStack

import httpx
import pytest
from playwright.sync_api import expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from support.browser import PHONE, open_page


def place(page, product_id: str, quantity: str) -> None:
    page.get_by_label("Product", exact=True).select_option(product_id)
    page.get_by_label("Quantity").fill(quantity)
    page.get_by_role("button", name="Place order").click()


def test_place_an_order_and_see_it_confirmed(desktop, shop, shots):
    page = desktop
    expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
    place(page, "SKU-001", "2")
    result = page.locator("#result")
    expect(result).to_have_attribute("data-kind", "confirmed")
    expect(result).to_contain_text("Your order is confirmed")
    expect(result).to_contain_text("2 \u00d7 Frost-proof shipping crate")
    order_id = page.evaluate("window.valerixStorefront.state.answered")
    assert shop.status(order_id) == "confirmed"
    row = page.locator(f'.order[data-order-id="{order_id}"]')
    expect(row.locator(".status")).to_have_text("Confirmed")
    expect(page.locator("#timeline-steps .step-name")).to_have_text(["Received", "Confirmed"])
    expect(page.locator('.stock[data-product-id="SKU-001"]')).to_have_text("498")
    page.screenshot(path=str(shots / "storefront-desktop-confirmed.png"), full_page=True)


def test_out_of_stock_is_said_kindly(phone, shop, shots):
    page = phone
    place(page, "SKU-008", "2")
    result = page.locator("#result")
    expect(result).to_have_attribute("data-kind", "out-of-stock")
    expect(result).to_contain_text("Sorry, we don't have enough Last unit: limited edition crate in stock.")
    expect(result).to_contain_text("Only 1 left")
    order_id = page.evaluate("window.valerixStorefront.state.answered")
    assert shop.status(order_id) == "failed"
    expect(page.locator(f'.order[data-order-id="{order_id}"] .status')).to_have_text("Not placed: not enough stock")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page must not scroll sideways on a phone"
    page.screenshot(path=str(shots / "storefront-phone-out-of-stock.png"), full_page=True)


def test_bad_quantity_is_rejected_in_the_form_and_by_the_server(desktop, shop, shots):
    page = desktop
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/api/orders" in r.url else None)
    for bad in ["0", "1001", "2.5", "-3", ""]:
        place(page, "SKU-001", bad)
        expect(page.locator("#quantity-error")).to_have_text("Please enter a whole number from 1 to 1000.")
        expect(page.get_by_label("Quantity")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#result")).to_have_attribute("data-kind", "refused")
    assert posts == [], "the form must not send an invalid quantity"
    expect(page.get_by_label("Quantity")).to_be_focused()
    page.screenshot(path=str(shots / "storefront-desktop-bad-quantity.png"))

    answer = page.request.post(shop.url + "/api/orders", data={"productId": "SKU-001", "quantity": 1001},
                               headers=shop.customer_of(page))
    assert answer.status == 422 and answer.headers["content-type"] == "application/problem+json"
    assert any(e["field"] == "quantity" for e in answer.json()["errors"])

    # A refusal the form cannot foresee (a product the catalogue no longer has) is shown kindly.
    page.evaluate("""() => { const o = document.createElement('option'); o.value = 'SKU-999';
                       o.textContent = 'Discontinued crate'; document.getElementById('product').appendChild(o); }""")
    place(page, "SKU-999", "1")
    result = page.locator("#result")
    expect(result).to_have_attribute("data-kind", "refused")
    expect(result).to_contain_text("The shop could not accept this order.")
    expect(result).to_contain_text("Unknown product(s): SKU-999.")
    assert posts == [shop.url + "/api/orders"]


def test_with_gremlin_the_order_is_verified_then_confirmed_without_a_reload(phone, shop, shots):
    page = phone
    page.evaluate("window.__sameDocument = true")
    shop.pause("inventory-worker")   # the warehouse is slow: verification waits until it is back
    shop.gremlin(True)
    try:
        place(page, "SKU-002", "3")
        result = page.locator("#result")
        expect(result).to_have_attribute("data-kind", "verifying", timeout=8_000)
        expect(result).to_contain_text("We are verifying your order with the warehouse.")
        order_id = page.evaluate("window.valerixStorefront.state.answered")
        assert shop.status(order_id) == "pending_verification"
        expect(page.locator(f'.order[data-order-id="{order_id}"] .status')).to_have_text("Verifying with the warehouse")
        expect(page.locator("#chaos .badge")).to_have_text("Gremlin on: 2600\u20132600 ms delays")
        page.screenshot(path=str(shots / "storefront-phone-verifying.png"), full_page=True)
    finally:
        shop.gremlin(False)
        shop.resume("inventory-worker")
    # the inventory worker reserves (idempotently), the order worker finalises, the socket tells the page
    expect(result).to_have_attribute("data-kind", "confirmed", timeout=15_000)
    expect(page.locator(f'.order[data-order-id="{order_id}"] .status')).to_have_text("Confirmed")
    expect(page.locator("#timeline-steps .step-name")).to_have_text(
        ["Received", "Verifying with the warehouse", "Confirmed"])
    expect(page.locator("#timeline-steps .step-reason").first).to_have_text("the warehouse took too long to answer")
    expect(page.locator("#announcer")).to_contain_text("is now confirmed")
    expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
    assert page.evaluate("window.__sameDocument") is True, "the page must update without a reload"
    expect(page.locator("#chaos .badge")).to_have_text("Chaos off")
    page.screenshot(path=str(shots / "storefront-phone-verified-confirmed.png"), full_page=True)


def test_cancel_a_confirmed_order_returns_its_stock(desktop, shop):
    page = desktop
    place(page, "SKU-006", "5")
    expect(page.locator("#result")).to_have_attribute("data-kind", "confirmed")
    order_id = page.evaluate("window.valerixStorefront.state.answered")
    stock = page.locator('.stock[data-product-id="SKU-006"]')
    expect(stock).not_to_have_text("50")
    before = int(stock.inner_text())
    page.get_by_role("button", name=f"Cancel order {order_id[4:12]}").click()
    expect(page.locator(f'.order[data-order-id="{order_id}"] .status')).to_have_text("Cancelled")
    expect(page.locator("#result")).to_contain_text("is cancelled")
    expect(stock).to_have_text(str(before + 5))
    expect(page.get_by_role("button", name=f"Cancel order {order_id[4:12]}")).to_have_count(0)


def test_orders_placed_elsewhere_appear_and_change_live(desktop, shop):
    page = desktop
    expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
    mine = shop.customer_of(page)   # the same customer in another tab, or with curl
    placed = httpx.post(f"{shop.url}/api/orders", json={"productId": "SKU-003", "quantity": 4}, headers=mine,
                        timeout=5).json()
    row = page.locator(f'.order[data-order-id="{placed["orderId"]}"]')
    expect(row.locator(".status")).to_have_text("Confirmed", timeout=3_000)
    expect(row).to_contain_text("4 \u00d7 Cold-chain temperature logger")
    assert httpx.post(f"{shop.url}/api/orders/{placed['orderId']}/cancel", headers=mine, timeout=5).status_code == 200
    expect(row.locator(".status")).to_have_text("Cancelled", timeout=3_000)
    expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
    # Another customer's orders never show up here.
    stranger = httpx.post(f"{shop.url}/api/session", timeout=5).json()["token"]
    theirs = httpx.post(f"{shop.url}/api/orders", json={"productId": "SKU-003", "quantity": 1},
                        headers={"Authorization": f"Bearer {stranger}"}, timeout=5).json()["orderId"]
    third = httpx.post(f"{shop.url}/api/orders", json={"productId": "SKU-003", "quantity": 2}, headers=mine,
                       timeout=5).json()["orderId"]
    expect(page.locator(f'.order[data-order-id="{third}"]')).to_have_count(1, timeout=3_000)
    expect(page.locator(f'.order[data-order-id="{theirs}"]')).to_have_count(0)


def test_an_operator_ships_an_order_and_the_page_shows_it_after_a_reload(desktop, shop):
    page = desktop
    expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
    place(page, "SKU-002", "1")
    expect(page.locator("#result")).to_have_attribute("data-kind", "confirmed")
    order_id = page.evaluate("window.valerixStorefront.state.answered")
    customer = shop.customer_of(page)
    assert httpx.post(f"{shop.url}/api/orders/{order_id}/ship", headers=customer, timeout=5).status_code == 403
    shipped = httpx.post(f"{shop.url}/api/orders/{order_id}/ship", headers=shop.operator, timeout=5)
    assert shipped.status_code == 200, shipped.text
    row = page.locator(f'.order[data-order-id="{order_id}"]')
    expect(row.locator(".status")).to_have_text("Shipped", timeout=3_000)
    expect(page.get_by_role("button", name=f"Cancel order {order_id[4:12]}")).to_have_count(0)
    page.reload()   # the page keeps its session: the same customer, the same orders
    assert shop.customer_of(page) == customer
    expect(page.locator(f'.order[data-order-id="{order_id}"] .status')).to_have_text("Shipped")


def test_keyboard_only_with_visible_focus_and_labelled_controls(desktop, shop):
    page = desktop
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the order form")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    select = page.get_by_label("Product", exact=True)
    expect(select).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "focus must be visible"
    expect(select).to_have_value("SKU-001")
    page.keyboard.press("ArrowDown")
    expect(select).to_have_value("SKU-002")
    page.keyboard.press("Tab")
    quantity = page.get_by_label("Quantity")
    expect(quantity).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    expect(page.locator("#result")).to_have_attribute("data-kind", "confirmed")
    for control in page.locator("input, select").all():
        assert control.evaluate("c => c.labels.length") == 1
    assert page.locator("#result").get_attribute("aria-live") == "polite"
    assert page.locator("#announcer").get_attribute("aria-live") == "polite"


def test_health_strip_shows_the_alert_lights_from_prometheus_and_grey_without_it(desktop, shop, shots):
    if not shop.has_prometheus:
        pytest.skip("the prometheus binary is absent: apt-get install -y prometheus (.ci/run does this)")
    page = desktop
    lights = page.locator(".light")
    expect(page.locator(".light-name")).to_have_text(["Response time", "Error rate", "Dependencies"])
    for light in lights.all():   # Prometheus has loaded the rules: each light is a colour, not "unknown"
        expect(light).to_have_attribute("data-state", re.compile("^(green|amber|red)$"), timeout=20_000)
        expect(light.locator(".light-state")).to_have_text(re.compile("^(OK|Warning|Alert)$"))
    page.locator(".top").screenshot(path=str(shots / "storefront-desktop-health-strip.png"))
    shop.pause("prometheus")
    try:
        for light in lights.all():
            expect(light).to_have_attribute("data-state", "unknown", timeout=8_000)
            expect(light).to_have_attribute("title", "Monitoring is not available")
    finally:
        shop.resume("prometheus")


def test_without_a_socket_slot_the_page_polls_every_2_s(browser, shop, shots):
    held = ExitStack()
    url = shop.url.replace("http://", "ws://") + "/ws/orders"
    deadline = time.monotonic() + 10
    with held:
        refusals = 0
        while refusals < 2:   # take every slot left; sockets of earlier tests' pages may still be closing
            try:
                held.enter_context(connect(url, open_timeout=5, subprotocols=[
                    "valerix.bearer", shop.operator["Authorization"].removeprefix("Bearer ")]))
                refusals = 0
            except InvalidStatus as error:
                assert error.response.status_code == 503
                refusals += 1
                time.sleep(0.5)
            assert time.monotonic() < deadline
        page = open_page(browser, shop.url, PHONE)
        try:
            expect(page.locator("#connection")).to_have_attribute("data-mode", "polling")
            expect(page.locator("#connection")).to_have_text("Checking every 2 s")
            place(page, "SKU-005", "2")
            expect(page.locator("#result")).to_have_attribute("data-kind", "confirmed")
            order_id = page.evaluate("window.valerixStorefront.state.answered")
            stock = page.locator('.stock[data-product-id="SKU-005"]')
            expect(stock).not_to_have_text("5000")
            before = int(stock.inner_text())
            # Someone else cancels it (another tab, support staff): the page must notice by polling.
            assert httpx.post(f"{shop.url}/api/orders/{order_id}/cancel", headers=shop.operator,
                              timeout=5).status_code == 200
            cancelled = time.monotonic()
            expect(page.locator(f'.order[data-order-id="{order_id}"] .status')).to_have_text("Cancelled", timeout=4_000)
            assert time.monotonic() - cancelled < 3.0, "polling every 2 s must notice within one period"
            expect(stock).to_have_text(str(before + 2), timeout=3_000)
            expect(page.locator("#connection")).to_have_attribute("data-mode", "polling")
            page.screenshot(path=str(shots / "storefront-phone-polling.png"))
            held.close()   # slots free again: the page goes back to live updates by itself
            expect(page.locator("#connection")).to_have_attribute("data-mode", "live", timeout=15_000)
        finally:
            page.context.close()


@pytest.mark.parametrize("lost", ["connection_dropped", "answered_503"])
def test_a_retry_after_a_lost_answer_places_one_order(desktop, shop, lost):
    """The shop places the order but the page never learns it: the connection drops, or a
    proxy answers 503 in its place. The page keeps the Idempotency-Key until a definitive
    answer, so pressing the button again finds that order instead of placing a second one."""
    page = desktop
    keys: list[str | None] = []

    def lose_the_first_answer(route):
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) > 1:
            route.continue_()
            return
        route.fetch()  # the shop receives it and places the order...
        if lost == "connection_dropped":  # ...but its answer never arrives
            route.abort("connectionreset")
        else:
            route.fulfill(status=503, content_type="application/problem+json",
                          body='{"title": "Service Unavailable", "status": 503, "detail": "Try again."}')

    page.route("**/api/orders", lose_the_first_answer)
    place(page, "SKU-003", "1")
    result = page.locator("#result")
    expect(result).to_have_attribute("data-kind", "error")
    expect(result).to_contain_text("you will not be charged twice")
    page.get_by_role("button", name="Place order").click()
    expect(result).to_have_attribute("data-kind", "confirmed")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    mine = httpx.get(f"{shop.url}/api/orders", headers=shop.customer_of(page), timeout=5).json()["orders"]
    assert [o["orderId"] for o in mine] == [page.evaluate("window.valerixStorefront.state.answered")]
