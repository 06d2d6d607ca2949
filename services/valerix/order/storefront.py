"""The storefront: the static page at `/`, its assets under `/ui/`, and the live feed at
`/ws/orders` (valerix.order.live), registered on the order API's Flask app."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from flask import Flask, Response, send_from_directory
from pydantic_settings import BaseSettings, SettingsConfigDict

from valerix.kit.auth import Tokens
from valerix.kit.problems import Problem
from valerix.order import service
from valerix.order.inventory_client import Product
from valerix.order.live import LiveEndpoint, SocketConfig, SocketSlots, close_sockets_on_sigterm
from valerix.order.live_hub import HubConfig, LiveHub
from valerix.order.settings import DEFAULT_API_THREADS

UI_DIR = Path(str(resources.files("valerix.order") / "ui"))
ASSETS = ("app.css", "app.js")
# The page needs nothing from elsewhere, so it may load nothing from elsewhere.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class LiveSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    order_api_threads: int = DEFAULT_API_THREADS
    order_ws_slots: int | None = None   # per gunicorn worker; default: half of its threads
    # One remote address's share of those; default: half of them, so one client never holds all.
    order_ws_slots_per_client: int | None = None
    order_ws_max_message_bytes: int = 4096
    order_ws_messages_per_s: float = 5.0
    order_ws_message_burst: int = 20
    order_ws_send_timeout_s: float = 10.0

    def socket_slots(self) -> int:
        return self.order_ws_slots if self.order_ws_slots is not None else self.order_api_threads // 2

    def slots_per_client(self) -> int:
        if self.order_ws_slots_per_client is not None:
            return self.order_ws_slots_per_client
        return max(1, self.socket_slots() // 2)

    def socket_config(self) -> SocketConfig:
        return SocketConfig(max_message_bytes=self.order_ws_max_message_bytes,
                            messages_per_second=self.order_ws_messages_per_s,
                            message_burst=self.order_ws_message_burst, send_timeout=self.order_ws_send_timeout_s)


def product_view(product: Product) -> dict[str, Any]:
    return {"productId": product.product_id, "name": product.name, "stock": product.stock,
            "priceCents": product.price_cents}


def register(app: Flask, deps: service.Deps, tokens: Tokens, *, slots: int | None = None,
             hub_config: HubConfig | None = None, socket_config: SocketConfig | None = None) -> LiveHub:
    @app.get("/")
    def storefront() -> Response:
        return _secured(send_from_directory(UI_DIR, "index.html", max_age=0))

    @app.get("/ui/<name>")
    def storefront_asset(name: str) -> Response:
        if name not in ASSETS:
            raise Problem(404, "No such storefront file.")
        return _secured(send_from_directory(UI_DIR, name, max_age=0))

    hub = LiveHub(deps.database_url,
                  lambda: [product_view(p) for p in deps.inventory.products()], hub_config)
    live = LiveSettings()
    size = live.socket_slots() if slots is None else slots
    per_client = live.slots_per_client() if slots is None else live.order_ws_slots_per_client
    app.wsgi_app = LiveEndpoint(app.wsgi_app, hub, SocketSlots(size, per_client),  # type: ignore[method-assign]
                                tokens, socket_config or live.socket_config())
    app.extensions["valerix.live"] = hub
    close_sockets_on_sigterm(hub)
    return hub


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response
