"""`valerix bench`: the k6 load benchmark (see BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import click

CHOICES = ["normal", "steady", "gremlin", "schrodinger", "mixed", "all"]  # valerix.checks.bench.SCENARIOS, and all


@click.command()
@click.option("--scenario", type=click.Choice(CHOICES), default="normal", show_default=True)
@click.option("--duration", type=click.FloatRange(1, 3600), default=60.0, show_default=True, help="Seconds of load.")
@click.option("--vus", type=click.IntRange(1, 2000), default=16, show_default=True,
              help="k6 virtual users (closed model); pre-allocated VUs under chaos.")
@click.option("--rate", type=click.FloatRange(1, 100_000), default=None,
              help="Orders/s offered under chaos (open model). Default: 80 %% (gremlin) or 40 %% "
                   "(schrodinger, mixed) of normal's confirmed orders/s.")
@click.option("--base-url", default=None, help="Drive a running system instead of starting one.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="gunicorn workers.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="gunicorn threads per worker.  [default: the order API's own, ORDER_API_THREADS]")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE",
              help="Extra environment for every process of the started system, e.g. GRPC_MAX_WORKERS=128.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("test-results"), show_default=True)
def bench(scenario: str, duration: float, vus: int, rate: float | None, base_url: str | None, workers: int,
          threads: int | None, env: tuple[str, ...], out: Path) -> None:
    """Drive POST /api/orders with k6, then check every order is final and the invariants hold."""
    from valerix.checks.bench import SCENARIOS, BenchConfig, run
    from valerix.checks.bench_report import markdown

    bad = [e for e in env if "=" not in e]
    if bad:
        raise click.BadParameter(f"expected KEY=VALUE, got {bad[0]!r}", param_hint="--env")
    names = list(SCENARIOS) if scenario == "all" else [scenario]
    results = run(BenchConfig(names, duration=duration, vus=vus, rate=rate, base_url=base_url, out=out,
                              order_api_workers=workers, order_api_threads=threads,
                              extra_env=dict(e.split("=", 1) for e in env)))
    for result in results:
        click.echo(markdown(result))
    if any(r["correct"] is False for r in results):
        raise SystemExit(1)
