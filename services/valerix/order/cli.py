"""`valerix order api|worker`: the order service's processes."""

from __future__ import annotations

import click


@click.group()
def order() -> None:
    """The order service."""


@order.command()
def api() -> None:
    """Serve the REST API and storefront under gunicorn (ORDER_API_BIND, _WORKERS, _THREADS)."""
    from valerix.kit import gunicorn_app

    gunicorn_app.reset_multiproc_dir()  # before any metric exists in this process
    from valerix.order.bootstrap import create_app
    from valerix.order.settings import OrderSettings

    settings = OrderSettings()  # type: ignore[call-arg]
    gunicorn_app.run(create_app, bind=settings.order_api_bind, workers=settings.order_api_workers,
                     threads=settings.order_api_threads)


@order.command()
def worker() -> None:
    """Relay the outbox, finalise verified orders, sweep stuck ones."""
    from valerix.order.worker import main

    main()
