"""`valerix inventory api|worker`: the inventory service's processes."""

from __future__ import annotations

import os
import sys

import click


@click.group()
def inventory() -> None:
    """The inventory service."""


@inventory.command()
@click.option("--respawn-on-crash", is_flag=True,
              help="Run the server in a forked child and fork a new one at once when a Schrodinger crash kills it "
                   "(in a container: the pod stays up instead of entering CrashLoopBackOff).")
def api(respawn_on_crash: bool) -> None:
    """Serve gRPC (INVENTORY_GRPC_BIND) and HTTP (INVENTORY_HTTP_BIND) in one process."""
    from valerix.inventory.api_main import main

    if respawn_on_crash:
        from valerix.kit import logs, respawn

        logs.configure("inventory", os.environ.get("LOG_LEVEL", "INFO"))
        sys.exit(respawn.run(main))
    main()


@inventory.command()
def worker() -> None:
    """Relay the outbox, answer VerifyOrder, release stock of failed and cancelled orders."""
    from valerix.inventory.worker import main

    main()
