"""The storefront in headless Chromium against the real order API."""

from __future__ import annotations

from playwright.sync_api import expect


def place(page, product_id: str, quantity: str) -> None:
    page.get_by_label("Product", exact=True).select_option(product_id)
    page.get_by_label("Quantity").fill(quantity)
    page.get_by_role("button", name="Place order").click()


def test_place_an_order_and_see_it_confirmed(desktop, storefront, shots):
    page = desktop
    expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
    place(page, "SKU-001", "2")
    result = page.locator("#result")
    expect(result).to_have_attribute("data-kind", "confirmed")
    expect(result).to_contain_text("Your order is confirmed")
    expect(result).to_contain_text("2 × Frost-proof shipping crate")
    order_id = page.evaluate("window.valerixStorefront.state.answered")
    assert storefront.status(order_id) == "confirmed"
    row = page.locator(f'.order[data-order-id="{order_id}"]')
    expect(row.locator(".status")).to_have_text("Confirmed")
    expect(page.locator("#timeline-steps .step-name")).to_have_text(["Received", "Confirmed"])
    expect(page.locator('.stock[data-product-id="SKU-001"]')).to_have_text("498")
    page.screenshot(path=str(shots / "storefront-desktop-confirmed.png"), full_page=True)
