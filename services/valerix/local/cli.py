"""`valerix up` (the whole system locally) and `valerix migrate` (schema, safe to repeat)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

TARGETS = {"order": ("order_db", "ORDER_DATABASE_URL"), "inventory": ("inventory_db", "INVENTORY_DATABASE_URL"),
           "bus": ("bus_db", "BUS_DATABASE_URL")}


@click.command()
@click.argument("target", type=click.Choice([*TARGETS, "all"]), default="all")
def migrate(target: str) -> None:
    """Apply pending migrations of one service's database (URL from its *_DATABASE_URL)."""
    from valerix.kit import db, logs
    from valerix.local.stack import migration_files

    logs.configure("migrate", os.environ.get("LOG_LEVEL", "INFO"))
    for name in TARGETS if target == "all" else [target]:
        database, env = TARGETS[name]
        url = os.environ.get(env)
        if not url:
            if target == "all":
                continue
            raise click.UsageError(f"{env} is not set")
        applied = db.migrate(url, migration_files(database))
        click.echo(f"{name}: {len(applied)} migration(s) applied" + (f" ({', '.join(applied)})" if applied else ""))


@click.command()
@click.option("--home", type=click.Path(path_type=Path), default=Path(".valerix"), show_default=True,
              help="Where databases, logs, chaos switches and backups live.")
@click.option("--order-port", type=int, default=3000, show_default=True)
@click.option("--inventory-port", type=int, default=3001, show_default=True)
@click.option("--grpc-port", type=int, default=25051, show_default=True)
@click.option("--postgres-port", type=int, default=25432, show_default=True)
@click.option("--prometheus-port", type=int, default=9090, show_default=True)
@click.option("--backup-port", type=int, default=25080, show_default=True)
@click.option("--worker-metrics-ports", type=(int, int), default=(9101, 9102), show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn workers of the order API.")
def up(home: Path, order_port: int, inventory_port: int, grpc_port: int, postgres_port: int, prometheus_port: int,
       backup_port: int, worker_metrics_ports: tuple[int, int], workers: int) -> None:
    """Start everything on this machine and keep it running until Ctrl-C."""
    from valerix.local.config import Ports, StackConfig
    from valerix.local.stack import Stack

    ports = Ports(postgres=postgres_port, order_api=order_port, inventory_http=inventory_port,
                  inventory_grpc=grpc_port, prometheus=prometheus_port, backup_service=backup_port,
                  order_worker_metrics=worker_metrics_ports[0], inventory_worker_metrics=worker_metrics_ports[1])
    stack = Stack(StackConfig(home=home, ports=ports, order_api_workers=workers))

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Also when started from a script that ignores SIGINT (background jobs do): Ctrl-C stops all.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        click.echo("Starting Valerix (PostgreSQL, migrations, supervisor) ...")
        stack.start(wait=90)
        _banner(stack)
        assert stack._supervisord is not None
        stack._supervisord.wait()
    except KeyboardInterrupt:
        click.echo("\nStopping every process ...")
    except TimeoutError as error:
        click.echo(str(error), err=True)
        stack.stop()
        sys.exit(1)
    finally:
        stack.stop()
    click.echo("Stopped.")


def _banner(stack: object) -> None:
    from valerix.local.prometheus import find_prometheus
    from valerix.local.stack import Stack

    assert isinstance(stack, Stack)
    p, home = stack.config.ports, stack.home
    prometheus = (f"http://127.0.0.1:{p.prometheus}" if find_prometheus()
                  else "not installed (apt-get install prometheus), so the alert lights stay grey")
    click.echo(f"""
Valerix is up.
  Storefront        {stack.order_url}/
  Order API         {stack.order_url}/api/orders   (OpenAPI: {stack.order_url}/openapi.json)
  Inventory HTTP    {stack.inventory_url}/api/products
  Inventory gRPC    127.0.0.1:{p.inventory_grpc}
  Prometheus        {prometheus}
  PostgreSQL        127.0.0.1:{p.postgres}   (credentials in {home / 'credentials.json'})
  Logs              {home / 'log'}/
  Chaos             valerix chaos status | gremlin on | schrodinger on
  Tokens            POST /api/session (a customer); valerix auth token --role operator
                    (key in {stack.signing_key_file})
Press Ctrl-C to stop everything.""")
