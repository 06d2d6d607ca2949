"""`valerix inventory api|worker`: the inventory service's processes."""

from __future__ import annotations

import click


@click.group()
def inventory() -> None:
    """The inventory service."""


@inventory.command()
def api() -> None:
    """Serve gRPC (INVENTORY_GRPC_BIND) and HTTP (INVENTORY_HTTP_BIND) in one process."""
    from valerix.inventory.api_main import main

    main()


@inventory.command()
def worker() -> None:
    """Relay the outbox, answer VerifyOrder, release stock of failed and cancelled orders."""
    from valerix.inventory.worker import main

    main()
