"""Client input never causes a 5xx (issue #17): schemathesis fuzzes every operation of the live
order API (a real gunicorn order-api process with its worker, inventory and bus) from its own
OpenAPI document, following the document's links statefully (place -> get / cancel / ship,
list -> next page), with an operator's bearer token. Any server error fails the test."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from valerix.kit.auth import Identity, Role

pytestmark = pytest.mark.e2e

REPORT = Path(__file__).resolve().parents[2] / "test-results" / "schemathesis.xml"
TIME_BUDGET_SECONDS = 75  # the whole run; fuzzing and the stateful phase stop when it is spent


def test_no_input_makes_the_live_api_answer_a_server_error(stack, tmp_path):
    token = stack.tokens().issue(Identity("operator:fuzz", Role.OPERATOR), timedelta(hours=1)).token
    REPORT.parent.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"{stack.order_url}/openapi.json",
         "--header", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error", "--phases", "examples,coverage,fuzzing,stateful",
         "--max-time", str(TIME_BUDGET_SECONDS), "--max-examples", "60", "--request-timeout", "10",
         "--seed", "17", "--generation-database", "none", "--suppress-health-check", "all",
         "--generation-allow-x00", "true", "--no-color",
         "--report", "junit", "--report-junit-path", str(REPORT)],
        capture_output=True, text=True, timeout=TIME_BUDGET_SECONDS + 60,
        cwd=tmp_path)  # schemathesis keeps a crash cache in its working directory
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    tested = set(re.findall(r'<testcase name="([^"]+)"', REPORT.read_text()))
    assert tested == {"POST /api/orders", "GET /api/orders", "GET /api/orders/{orderId}",
                      "POST /api/orders/{orderId}/cancel", "POST /api/orders/{orderId}/ship",
                      "POST /api/session", "GET /health", "GET /health/live", "Stateful tests"}, tested
    links = re.search(r"API Links:\s+(\d+) covered", output)
    assert links and int(links.group(1)) >= 5, output[-3000:]  # place -> get / cancel / ship at least
