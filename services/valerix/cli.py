"""The `valerix` command: every process role and operator tool behind one entrypoint."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group, imported only when used so that
# `valerix order api` never pays for the chart or backup tooling.
COMMANDS: dict[str, str] = {
    "order": "valerix.order.cli:order",
    "inventory": "valerix.inventory.cli:inventory",
    "migrate": "valerix.local.cli:migrate",
    "up": "valerix.local.cli:up",
    "bus": "valerix.kit.bus.cli:bus",
    "chaos": "valerix.chaos_cli:chaos",
    "backup": "valerix.backup.cli:backup",
    "bench": "valerix.checks.bench_cli:bench",
    "auth": "valerix.order.operator_cli:auth",
    "orders": "valerix.order.operator_cli:orders",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        try:
            command = getattr(importlib.import_module(module), attribute)
        except ModuleNotFoundError as error:
            if error.name and module.startswith(error.name):
                return None  # that tool is not part of this build
            raise
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Valerix: orders and inventory that stay correct when the network lies."""
