"""The GitHub Actions workflows, checked offline: the workflow schema vendored in check-jsonschema,
actions pinned to full commit SHAs, least-privilege permissions, and every `run:` script through
Debian's shellcheck (scripts/ci-deps installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# owner/repo[/path]@<40 hex> followed by the tag it stands for, e.g. `# v4.2.2`
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
TAG_COMMENT = re.compile(r"@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")


def load(path: Path) -> dict[Any, Any]:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # BaseLoader: `on` stays a string


def steps(workflow: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def schema_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_the_ci_and_deploy_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "deploy-aks.yml"}


def test_workflows_match_the_github_workflow_schema() -> None:
    result = schema_check(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: true\n")  # no runs-on
    result = schema_check(broken)
    assert result.returncode != 0 and "runs-on" in result.stdout + result.stderr, result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_sha_with_its_tag(path: Path) -> None:
    text = path.read_text()
    uses = [(job, step["uses"]) for job, step in steps(load(path)) if "uses" in step]
    uses += [(name, job["uses"]) for name, job in load(path)["jobs"].items() if "uses" in job]
    assert uses, f"{path.name} uses no action"
    for job, ref in uses:
        if ref.startswith("./"):
            continue  # an action of this repository, pinned by the checkout itself
        assert PINNED.match(ref), f"{path.name} job {job}: {ref!r} is not pinned to a full commit SHA"
        line = next(line for line in text.splitlines() if ref in line)
        assert TAG_COMMENT.search(line), f"{path.name}: say which tag {ref} is, e.g. `# v1.2.3`"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path: Path) -> None:
    workflow = load(path)
    granted = workflow.get("permissions")
    assert isinstance(granted, dict), f"{path.name}: set top-level permissions explicitly"
    writes = {scope for scope, level in granted.items() if level == "write"}
    # Only deploying needs a token: id-token to exchange for Azure credentials over OIDC.
    assert writes <= ({"id-token"} if path.name == "deploy-aks.yml" else set()), granted
    for name, job in workflow["jobs"].items():
        assert "write" not in str(job.get("permissions", "")), f"{path.name} job {name} widens permissions"


def test_ci_runs_cancel_older_runs_of_the_same_ref() -> None:
    concurrency = load(ROOT / ".github/workflows/ci.yml")["concurrency"]
    assert "github.ref" in concurrency["group"] and concurrency["cancel-in-progress"] == "true"


def test_deploy_uses_oidc_and_no_stored_secrets() -> None:
    text = (ROOT / ".github/workflows/deploy-aks.yml").read_text()
    assert "secrets." not in text
    login = next(step for _, step in steps(load(ROOT / ".github/workflows/deploy-aks.yml"))
                 if step.get("uses", "").startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}


def run_scripts() -> Iterator[tuple[str, str]]:
    for path in WORKFLOWS:
        workflow = load(path)
        shell = workflow.get("defaults", {}).get("run", {}).get("shell")
        assert shell == "bash", f"{path.name}: set defaults.run.shell: bash (what shellcheck checks)"
        for job, step in steps(workflow):
            if "run" in step:
                yield f"{path.name}:{job}:{step.get('name', step['run'].splitlines()[0])}", step["run"]


SCRIPTS = list(run_scripts())


@pytest.mark.parametrize(("where", "script"), SCRIPTS, ids=[where for where, _ in SCRIPTS])
def test_every_run_script_passes_shellcheck(where: str, script: str) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/ci-deps installs the Debian package shellcheck"
    # Expressions in a script are template injection (a branch name runs as code): use env: instead.
    assert "${{" not in script, f"{where}: pass ${{{{ ... }}}} through env:, not into the script"
    # GitHub runs `bash -e {0}` with these options; shellcheck sees the same script.
    result = subprocess.run([shellcheck, "--shell=bash", "--severity=style", "-"],
                            input="set -eo pipefail\n" + script, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{where}:\n{result.stdout}{result.stderr}"


def test_shellcheck_finds_a_defect_in_a_script() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck
    result = subprocess.run([shellcheck, "--shell=bash", "-"], input='rm -rf $DIR/*\n', capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "SC2086" in result.stdout


def job_script(path: Path, job: str) -> str:
    return "\n".join(step.get("run", "") + step.get("uses", "") for step in load(path)["jobs"][job]["steps"])


def in_order(text: str, *parts: str) -> bool:
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
    return True


def test_ci_runs_the_suite_then_the_chart_on_kind() -> None:
    ci = ROOT / ".github/workflows/ci.yml"
    assert ".ci/run" in job_script(ci, "test")
    kind = job_script(ci, "kind")
    assert in_order(kind, "helm/kind-action@", "scripts/image", "kind load", "helm install", "values-kind.yaml",
                    "--wait", "helm test", "pytest", "k8s-tests"), kind
    assert "VALERIX_REQUIRE_CLUSTER" in str(load(ci)["jobs"]["kind"]), "k8s-tests must not skip in CI"


def test_deploy_pushes_then_upgrades_atomically_then_runs_the_smoke_test() -> None:
    deploy = job_script(ROOT / ".github/workflows/deploy-aks.yml", "deploy")
    assert in_order(deploy, "azure/login@", "scripts/image", "push", "helm upgrade --install", "values-aks.yaml",
                    "--atomic", "helm test"), deploy
    assert set(load(ROOT / ".github/workflows/deploy-aks.yml")["on"]) == {"push", "workflow_dispatch"}
