"""`valerix bus`: depths and dead letters, peek, resubmit a dead letter, provision entities.
The backend and its address come from the environment, as for the services."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click

from valerix.kit.bus import secret_value
from valerix.kit.bus.port import BusError, OperatedBus, ReceivedMessage
from valerix.kit.settings import CommonSettings


@contextmanager
def _admin() -> Iterator[OperatedBus]:
    from valerix.kit.bus import open_bus

    try:
        bus = open_bus(CommonSettings())
    except BusError as error:
        raise click.ClickException(str(error)) from error
    assert isinstance(bus, OperatedBus)
    try:
        yield bus
    except BusError as error:
        raise click.ClickException(str(error)) from error
    finally:
        bus.close()


def _line(message: ReceivedMessage) -> str:
    return json.dumps({
        "entity": message.entity, "messageId": message.message_id, "sequenceNumber": message.sequence_number,
        "deliveryCount": message.delivery_count,
        "enqueuedAt": message.enqueued_at.isoformat() if message.enqueued_at else None,
        "deadLetterReason": message.dead_letter_reason, "deadLetterDescription": message.dead_letter_description,
        "body": message.body}, default=str)


@click.group()
def bus() -> None:
    """The event bus (BUS_BACKEND=postgres with BUS_DATABASE_URL, or azure with
    SERVICE_BUS_CONNECTION_STRING)."""


@bus.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entity.")
def status(as_json: bool) -> None:
    """Active, scheduled and dead-lettered messages of every queue and subscription."""
    with _admin() as admin:
        rows = admin.stats()
    if as_json:
        for s in rows:
            click.echo(json.dumps({"entity": s.entity, "active": s.active, "scheduled": s.scheduled,
                                   "deadLetter": s.dead_letter}))
        return
    width = max([len("ENTITY"), *(len(s.entity) for s in rows)])
    click.echo(f"{'ENTITY':<{width}}  {'ACTIVE':>7}  {'SCHEDULED':>9}  {'DEAD-LETTER':>11}")
    for s in rows:
        click.echo(f"{s.entity:<{width}}  {s.active:>7}  {s.scheduled:>9}  {s.dead_letter:>11}")


@bus.command()
@click.argument("entity")
@click.option("--dead-letter", is_flag=True, help="Peek the dead-letter store instead.")
@click.option("-n", "--max", "max_messages", type=click.IntRange(1, 1000), default=20, show_default=True)
def peek(entity: str, dead_letter: bool, max_messages: int) -> None:
    """Show messages without locking them (ENTITY: a queue or <topic>/subscriptions/<name>)."""
    with _admin() as admin:
        for message in admin.peek(entity, dead_letter=dead_letter, max_messages=max_messages):
            click.echo(_line(message))


@bus.command()
@click.argument("entity")
@click.argument("message_id")
def resubmit(entity: str, message_id: str) -> None:
    """Move a dead-lettered message back to ENTITY for another round of deliveries."""
    with _admin() as admin:
        moved = admin.resubmit(entity, message_id)
    if not moved:
        raise click.ClickException(f"no dead letter with message id {message_id} in {entity}")
    click.echo(f"resubmitted {moved} message(s) to {entity}")


@bus.command()
def provision() -> None:
    """Create the queues, topics and subscriptions (Azure namespace or bus_db). Safe to repeat."""
    from valerix.kit.bus import provision as prov

    settings = CommonSettings()
    if settings.bus_backend == "azure":
        connection = secret_value(settings.service_bus_connection_string)
        if not connection:
            raise click.ClickException("SERVICE_BUS_CONNECTION_STRING is not set")
        created = prov.provision_azure(connection)
        click.echo(f"created: {', '.join(created) or 'nothing (all entities exist)'}")
        return
    url = secret_value(settings.bus_database_url)
    if not url:
        raise click.ClickException("BUS_DATABASE_URL is not set")
    names = prov.provision_postgres(url)
    click.echo(f"embedded bus ready: {', '.join(names)}")
