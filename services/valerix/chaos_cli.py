"""`valerix chaos`: turn Gremlin and Schrödinger on and off, live, locally or in Kubernetes, and
run the chaos pipeline. The commands only; the library is valerix.chaos."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from valerix.chaos.switches import (
    DEFAULT_CONFIGMAP,
    OFF_VALUES,
    gremlin_values,
    patch_kubernetes,
    read_kubernetes,
    schrodinger_values,
    write_local,
)
from valerix.kit.chaos import ChaosConfig, read_raw


@click.group()
@click.option("--chaos-dir", type=click.Path(path_type=Path),
              default=lambda: os.environ.get("CHAOS_DIR", ".valerix/chaos"),
              show_default=".valerix/chaos or $CHAOS_DIR")
@click.option("--kubernetes", "use_k8s", is_flag=True, help="Patch the chart's chaos ConfigMap instead.")
@click.option("--namespace", default="default", show_default=True)
@click.option("--configmap", default=DEFAULT_CONFIGMAP, show_default=True)
@click.pass_context
def chaos(ctx: click.Context, chaos_dir: Path, use_k8s: bool, namespace: str, configmap: str) -> None:
    """Failure injection: Gremlin (slow ReserveStock) and Schrödinger (die after commit)."""
    def apply(values: dict[str, str]) -> None:
        if use_k8s:
            patch_kubernetes(values, namespace, configmap)
        else:
            write_local(chaos_dir, values)

    def current() -> ChaosConfig:
        raw = read_kubernetes(namespace, configmap) if use_k8s else read_raw(chaos_dir)
        return ChaosConfig.parse(raw)

    ctx.obj = {"apply": apply, "current": current}


@chaos.command()
@click.pass_obj
def status(obj: dict[str, Any]) -> None:
    """Show which chaos modes are on (pods pick changes up within a second)."""
    click.echo(json.dumps(obj["current"]().as_dict(), indent=2))


@chaos.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--every", type=click.IntRange(0, 1_000_000), default=None, help="Delay only every Nth ReserveStock.")
@click.option("--min-ms", type=click.IntRange(0, 60_000), default=None)
@click.option("--max-ms", type=click.IntRange(0, 60_000), default=None)
@click.option("--seed", type=int, default=None, help="Seed the random delays for a repeatable run.")
@click.pass_obj
def gremlin(obj: dict[str, Any], state: str, every: int | None, min_ms: int | None, max_ms: int | None,
            seed: int | None) -> None:
    """Delay ReserveStock by a random [min, max] ms (all calls, or every Nth)."""
    obj["apply"](gremlin_values(state == "on", every, min_ms, max_ms, seed))
    click.echo(json.dumps(obj["current"]().as_dict()["gremlin"]))


@chaos.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--probability", type=click.FloatRange(0, 1), default=None)
@click.option("--mode", type=click.Choice(["crash", "error"]), default=None,
              help="crash: the process dies after the commit; error: it answers INTERNAL.")
@click.option("--seed", type=int, default=None)
@click.pass_obj
def schrodinger(obj: dict[str, Any], state: str, probability: float | None, mode: str | None,
                seed: int | None) -> None:
    """Make a committed ReserveStock die (or fail) before it answers."""
    obj["apply"](schrodinger_values(state == "on", probability, mode, seed))
    click.echo(json.dumps(obj["current"]().as_dict()["schrodinger"]))


@chaos.command()
@click.pass_obj
def reset(obj: dict[str, Any]) -> None:
    """Turn every chaos mode off."""
    obj["apply"](OFF_VALUES)
    click.echo(json.dumps(obj["current"]().as_dict()))


@chaos.command("test")
@click.option("--seconds", type=click.FloatRange(1, 600), default=15.0, show_default=True,
              help="How long each scenario drives orders.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=6, show_default=True)
@click.option("--settle", type=click.FloatRange(1, 600), default=60.0, show_default=True,
              help="How long every order may take to become final after chaos stops.")
@click.option("--scenario", "scenarios", multiple=True,
              type=click.Choice(["baseline", "gremlin", "schrodinger-crash", "schrodinger-error"]))
@click.option("--out", type=click.Path(path_type=Path), default=Path("test-results"), show_default=True)
def chaos_test(seconds: float, concurrency: int, settle: float, scenarios: tuple[str, ...], out: Path) -> None:
    """The automated chaos pipeline: starts its own system, runs every scenario, checks the invariants."""
    from valerix.checks.pipeline import markdown, run

    ok, results = run(out, seconds, concurrency, settle, list(scenarios) or None)
    click.echo(markdown(results))
    click.echo(f"Report: {out / 'chaos-report.json'}")
    if not ok:
        raise SystemExit(1)


@chaos.command("soak")
@click.option("--orders", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--max-seconds", type=click.FloatRange(10, 86_400), default=3600.0, show_default=True,
              help="Stop sending after this long even if fewer orders went out (then the soak fails).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("test-results"), show_default=True)
def soak(orders: int, concurrency: int, max_seconds: float, out: Path) -> None:
    """N orders under mixed chaos (Gremlin, Schrödinger, kill -9 of every process kind, a PostgreSQL
    crash), then: nothing acknowledged lost, nothing oversold, nothing held, everything final."""
    from valerix.checks.soak import markdown, run

    result = run(out, orders, concurrency, max_seconds, say=lambda line: click.echo(line, err=True))
    click.echo(markdown(result))
    click.echo(f"Report: {out / 'soak-report.json'}")
    if not result.ok:
        raise SystemExit(1)


@chaos.command("growth")
@click.option("--rate", type=click.FloatRange(1, 10_000), default=50.0, show_default=True,
              help="Orders/s offered (k6 open model).")
@click.option("--minutes", type=click.FloatRange(0.5, 24 * 60), default=60.0, show_default=True)
@click.option("--retention", type=click.FloatRange(1, 86_400), default=300.0, show_default=True,
              help="Seconds every retention keeps its rows (outbox, inbox, idempotency keys, dead letters).")
@click.option("--housekeeping", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
              help="HOUSEKEEPING_INTERVAL_S: seconds between trims.")
@click.option("--sample", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds between row counts of every table.")
@click.option("--gremlin-every", type=click.IntRange(0, 1_000_000), default=20, show_default=True,
              help="Every Nth ReserveStock answered late, so orders also take the asynchronous path "
                   "(inbox rows, bus messages); 0 = no chaos.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("test-results"), show_default=True)
def growth(rate: float, minutes: float, retention: float, housekeeping: float, sample: float, gremlin_every: int,
           out: Path) -> None:
    """A steady load with short retentions, every table counted over time: each table kept only
    for a while must be flat after its retention window, and the invariants must hold."""
    from valerix.checks.growth import GrowthConfig, markdown, run

    result = run(GrowthConfig(rate=rate, minutes=minutes, retention=retention, housekeeping=housekeeping,
                              sample=sample, gremlin_every=gremlin_every, out=out),
                 say=lambda line: click.echo(line, err=True))
    click.echo(markdown(result))
    click.echo(f"Report: {out / 'growth-report.json'}")
    if not result.ok:
        raise SystemExit(1)
