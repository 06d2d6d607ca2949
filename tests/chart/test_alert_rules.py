"""The alert rules file, checked and unit-tested with the real promtool (Debian package
`prometheus`), plus mutations proving the unit tests catch a wrong rule."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts/valerix/files/prometheus/alerts.yml"
TESTS_DIR = Path(__file__).parent / "promtool"
TEST_FILES = sorted(TESTS_DIR.glob("*_test.yml"))
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package `prometheus`; scripts/ci-deps installs it)")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60)


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alert(name: str) -> dict[str, Any]:
    return next(rule for rule in rules() if rule.get("alert") == name)


@needs_promtool
def test_rules_file_is_valid() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@needs_promtool
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.stem)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    result = promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_unit_tests() -> None:
    tested = {case["alertname"] for path in TEST_FILES
              for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    assert {rule["alert"] for rule in rules()} <= tested


def test_every_alert_is_labelled_and_described() -> None:
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_response_time_alert_is_a_30s_average_not_a_percentile() -> None:
    expr = alert("OrderServiceSlowResponses")["expr"]
    assert "histogram_quantile" not in expr and "_bucket" not in expr
    assert re.search(r"rate\(valerix_http_request_duration_seconds_sum\{[^}]*\}\[30s\]\)", expr)
    assert re.search(r"rate\(valerix_http_request_duration_seconds_count\{[^}]*\}\[30s\]\)", expr)
    assert 'route!~"/health.*|/metrics|/ws/.*"' in expr and expr.strip().endswith("> 1")


def _run_with_mutated_rules(tmp_path: Path, test_file: Path, alert_name: str, expr: str) -> str:
    """Runs one promtool test file against a copy of the rules where one alert's expr is replaced."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert_name:
                rule["expr"] = expr
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(document))
    test = yaml.safe_load(test_file.read_text())
    test["rule_files"] = ["alerts.yml"]
    (tmp_path / test_file.name).write_text(yaml.safe_dump(test))
    result = promtool("test", "rules", tmp_path / test_file.name)
    assert result.returncode != 0, f"{test_file.name} did not notice the mutated {alert_name}"
    return result.stdout + result.stderr


def slow_expr() -> str:
    return str(alert("OrderServiceSlowResponses")["expr"])


P95 = ('histogram_quantile(0.95, sum by (le) (rate(valerix_http_request_duration_seconds_bucket'
       '{service="order",route!~"/health.*|/metrics|/ws/.*"}[30s]))) > 1')


@needs_promtool
@pytest.mark.parametrize(("expr", "caught_by"), [
    (P95, "p95 spike with a fast average stays quiet"),
    (slow_expr().replace("[30s]", "[10s]"), "one slow request in a fast stream stays quiet"),
    (slow_expr().replace(',route!~"/health.*|/metrics|/ws/.*"', ""),
     "slow health probes, metrics scrapes, websockets and inventory requests are ignored"),
], ids=["percentile", "10s-window", "health-included"])
def test_slow_response_tests_catch_wrong_rules(tmp_path: Path, expr: str, caught_by: str) -> None:
    output = _run_with_mutated_rules(tmp_path, TESTS_DIR / "slow_responses_test.yml",
                                     "OrderServiceSlowResponses", expr)
    assert caught_by in output


@needs_promtool
def test_error_rate_tests_catch_counting_4xx(tmp_path: Path) -> None:
    expr = alert("OrderServiceHighErrorRate")["expr"].replace('status=~"5.."', 'status=~"[45].."')
    output = _run_with_mutated_rules(tmp_path, TESTS_DIR / "error_rate_test.yml",
                                     "OrderServiceHighErrorRate", expr)
    assert "client errors do not count" in output
