import json

import pytest
from click.testing import CliRunner

from valerix.chaos.switches import configmap_patch, gremlin_values, schrodinger_values
from valerix.chaos_cli import chaos


def test_gremlin_on_writes_files_that_the_live_config_reads(tmp_path):
    runner = CliRunner()
    result = runner.invoke(chaos, ["--chaos-dir", str(tmp_path), "gremlin", "on", "--every", "5", "--min-ms", "2000",
                                   "--max-ms", "5000"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"on": True, "minDelayMs": 2000, "maxDelayMs": 5000, "everyN": 5}
    assert (tmp_path / "GREMLIN_EVERY_N").read_text().strip() == "5"
    result = runner.invoke(chaos, ["--chaos-dir", str(tmp_path), "schrodinger", "on", "--probability", "0.2",
                                   "--mode", "error"])
    assert json.loads(result.output) == {"on": True, "probability": 0.2, "failure": "error"}
    status = json.loads(runner.invoke(chaos, ["--chaos-dir", str(tmp_path), "status"]).output)
    assert status["gremlin"]["on"] and status["schrodinger"]["on"]
    runner.invoke(chaos, ["--chaos-dir", str(tmp_path), "reset"])
    status = json.loads(runner.invoke(chaos, ["--chaos-dir", str(tmp_path), "status"]).output)
    assert not status["gremlin"]["on"] and not status["schrodinger"]["on"]


def test_bad_options_are_refused():
    runner = CliRunner()
    assert runner.invoke(chaos, ["schrodinger", "on", "--probability", "2"]).exit_code == 2
    assert runner.invoke(chaos, ["gremlin", "maybe"]).exit_code == 2


def test_the_kubernetes_patch_sets_only_the_named_keys():
    assert configmap_patch(gremlin_values(True, 5, 2000, 5000, None)) == {"data": {
        "GREMLIN_MODE": "true", "GREMLIN_EVERY_N": "5", "GREMLIN_MIN_DELAY_MS": "2000", "GREMLIN_MAX_DELAY_MS": "5000"}}
    assert configmap_patch(schrodinger_values(False, 0.5, "crash", None)) == {"data": {"SCHRODINGER_MODE": "false"}}
    with pytest.raises(ValueError):
        configmap_patch({"PATH": "/tmp"})
