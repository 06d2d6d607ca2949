"""The Valerix overview dashboard as code (grafana-foundation-sdk, Grafana 11.6 schema).

Regenerate the committed JSON (a test fails when it is stale):

    .venv/bin/python -m valerix.observability.dashboard \
        --output charts/valerix/files/grafana/valerix-overview.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)

from valerix.order.alerts import LIGHTS

UID = "valerix-overview"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
SLOW_SECONDS = 1.0  # the OrderServiceSlowResponses threshold (alerts.yml)
ERROR_SHARE = 0.05  # the OrderServiceHighErrorRate threshold
API = 'route!~"/health.*|/metrics|/ws/.*"'  # as the alerts: no probes, scrapes, WebSockets
HTTP = "valerix_http_request_duration_seconds"
TARGETS_UP = 'up{job=~"(.+-)?(order|inventory)-(api|worker)"}'  # as the ServiceDown alert
LIGHT_NAMES = {"responseTime": "Response time", "errorRate": "Error rate", "dependencies": "Dependencies"}

Query = tuple[str, str]  # (PromQL, legend)


def _targets(panel: Any, queries: list[Query]) -> Any:
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend)
                                  .ref_id(chr(ord("A") + index)))
    return panel


def _threshold_line(value: float) -> dashboard.ThresholdsConfig:
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(None, "green"), Threshold(value, "red")])


def graph(title: str, unit: str, queries: list[Query], *, span: int = 12, line_at: float | None = None,
          description: str = "") -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(DS).unit(unit)
             .height(8).span(span).line_width(2).fill_opacity(10)
             .legend(cb.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM)))
    if line_at is not None:
        panel = (panel.thresholds(_threshold_line(line_at))
                 .thresholds_style(cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)))
    return _targets(panel, queries)


def number(title: str, unit: str, queries: list[Query], *, span: int = 4, red_at: float = 1.0,
           description: str = "") -> stat.Panel:
    panel = (stat.Panel().title(title).description(description).datasource(DS).unit(unit).height(5)
             .span(span).thresholds(_threshold_line(red_at))
             .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    return _targets(panel, queries)


def alert_lights() -> stat.Panel:
    """One light per storefront alert: 0 OK, 1 pending, 2 firing (from the ALERTS series)."""
    queries = []
    for light, names in LIGHTS.items():
        pattern = "|".join(names)
        queries.append((f'max(ALERTS{{alertname=~"{pattern}",alertstate="firing"}}) * 2'
                        f' or max(ALERTS{{alertname=~"{pattern}"}}) or vector(0)', LIGHT_NAMES[light]))
    mapping = ValueMap({"0": ValueMappingResult(text="OK", color="green", index=0),
                        "1": ValueMappingResult(text="PENDING", color="orange", index=1),
                        "2": ValueMappingResult(text="FIRING", color="red", index=2)})
    panel = (stat.Panel().title("Alerts").description("The three alerts behind the storefront light.")
             .datasource(DS).height(5).span(12).mappings([mapping])
             .color_mode(common.BigValueColorMode.BACKGROUND)
             .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
             .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    return _targets(panel, queries)


def alert_history() -> statetimeline.Panel:
    panel = (statetimeline.Panel().title("Firing alerts").datasource(DS).height(6).span(24)
             .show_value(common.VisibilityMode.NEVER))
    return _targets(panel, [('max by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}")])


def _series(name: str, selector: str) -> str:
    return f"{name}{{{selector}}}" if selector else name


def _average(metric: str, by: str, selector: str, window: str) -> str:
    return (f"sum by ({by}) (rate({_series(metric + '_sum', selector)}[{window}]))"
            f" / sum by ({by}) (rate({_series(metric + '_count', selector)}[{window}]))")


def _p95(metric: str, by: str, selector: str, window: str) -> str:
    return (f"histogram_quantile(0.95, sum by (le, {by}) "
            f"(rate({_series(metric + '_bucket', selector)}[{window}])))")


def health_row() -> list[Any]:
    return [
        alert_lights(),
        number("Pending verification", "short", [("max(valerix_orders_pending_verification)", "orders")],
               red_at=10, description="Orders waiting for the inventory worker's verdict."),
        number("Targets down", "short", [(f"count({TARGETS_UP} == 0) or vector(0)", "down")]),
        number("Dead letters", "short", [("sum(valerix_bus_dead_letters) or vector(0)", "messages")]),
        alert_history(),
    ]


def orders_row() -> list[Any]:
    return [
        graph("Orders by status", "ops", [("sum by (status) (rate(valerix_orders_total[1m]))", "{{status}}")],
              description="Orders reaching each status per second."),
        graph("Pending verification backlog", "short",
              [("max(valerix_orders_pending_verification)", "pending_verification")]),
        graph("Reservations by outcome", "ops",
              [("sum by (outcome) (rate(valerix_reservations_total[1m]))", "{{outcome}}")]),
        graph("Sweeper actions", "short",
              [("sum by (action) (increase(valerix_sweeper_actions_total[5m]))", "{{action}}")],
              description="Verification re-sends and forced failures in the last 5 minutes."),
    ]


def latency_row() -> list[Any]:
    order_api = f'service="order",{API}'
    grpc_server = "valerix_grpc_server_duration_seconds"
    return [
        graph("Order API response time", "s", [
            (_average(HTTP, "service", order_api, "30s"), "average (30s, alerted)"),
            (_p95(HTTP, "service", order_api, "1m"), "p95 (1m, not alerted)")],
            line_at=SLOW_SECONDS, description="The alert fires when the 30 s average crosses the line."),
        graph("Order API 5xx share", "percentunit", [
            (f'sum(rate({HTTP}_count{{{order_api},status=~"5.."}}[30s]))'
             f" / sum(rate({HTTP}_count{{{order_api}}}[30s]))", "5xx share (30s)")], line_at=ERROR_SHARE),
        graph("Requests by status", "reqps", [
            (f"sum by (service, status) (rate({HTTP}_count{{{API}}}[1m]))", "{{service}} {{status}}")]),
        graph("Inventory API response time", "s", [
            (_average(HTTP, "route", f'service="inventory",{API}', "1m"), "avg {{route}}")]),
        graph("gRPC server time (inventory)", "s", [
            (_average(grpc_server, "method", "", "1m"), "avg {{method}}"),
            (_p95(grpc_server, "method", "", "1m"), "p95 {{method}}")]),
        graph("gRPC calls as the order service saw them", "ops", [
            ("sum by (method, code) (rate(valerix_grpc_client_duration_seconds_count[1m]))",
             "{{method}} {{code}}")]),
    ]


def inventory_row() -> list[Any]:
    batch = "valerix_group_commit_batch_size"
    return [
        graph("Stock levels", "short", [("max by (product_id) (valerix_stock_level)", "{{product_id}}")]),
        graph("Callers per transaction (group commit)", "short", [
            (_average(batch, "batch", "", "1m"), "avg {{batch}}"),
            (f"sum by (batch) (rate({batch}_count[1m]))", "{{batch}} transactions/s")],
            description="Concurrent reservations, new orders and outcomes sharing one transaction "
                        "(1: no concurrency to share; a failed batch runs again order by order)."),
    ]


def messaging_row() -> list[Any]:
    return [
        graph("Outbox publish lag", "s", [
            (_average("valerix_outbox_publish_lag_seconds", "service", "", "1m"), "avg {{service}}")],
            line_at=5),
        graph("Outbox backlog", "short", [("max by (service) (valerix_outbox_backlog)", "{{service}}")]),
        graph("Bus depth", "short", [("max by (entity) (valerix_bus_depth)", "{{entity}}")]),
        graph("Dead letters", "short", [("max by (entity) (valerix_bus_dead_letters)", "{{entity}}")],
              line_at=1),
        graph("Messages handled", "ops", [
            ("sum by (consumer, result) (rate(valerix_messages_handled_total[1m]))",
             "{{consumer}} {{result}}")], span=24),
    ]


def chaos_row() -> list[Any]:
    return [
        graph("Gremlin delays injected", "ops", [
            ("sum by (method) (rate(valerix_chaos_delays_total[1m]))", "{{method}}"),
            ("sum by (method) (rate(valerix_chaos_delay_seconds_total[1m]))", "{{method}} delay s/s")]),
        graph("Schrödinger faults injected", "short", [
            ("sum by (mode) (increase(valerix_chaos_faults_total[5m]))", "{{mode}}")],
            description="Crashes and 500-after-commit in the last 5 minutes."),
    ]


ROWS = (("Health", health_row), ("Orders", orders_row), ("Response time and errors", latency_row),
        ("Inventory", inventory_row), ("Messaging", messaging_row), ("Chaos", chaos_row))


def build() -> dict[str, Any]:
    datasource = dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
    board = (dashboard.Dashboard("Valerix overview").uid(UID).tags(["valerix"]).refresh("10s")
             .time("now-30m", "now").timezone("browser").with_variable(datasource))
    for title, panels in ROWS:
        board = board.with_row(dashboard.Row(title))
        for panel in panels():
            board = board.with_panel(panel)
    document: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for number_, panel in enumerate(document["panels"], start=1):  # rows come out as id 0
        panel["id"] = number_
    return document


def render() -> str:
    return json.dumps(build(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.output is None:
        sys.stdout.write(render())
    else:
        args.output.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
