"""The Dockerfile: multi-stage, slim Python base, non-root, no build tools in the final stage,
one image whose entrypoint is `valerix`; hadolint finds nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import chartlib as chart
from dockerfile_parse import DockerfileParser

DOCKERFILE = chart.ROOT / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make ", "clang", "apt-get install", "libpq-dev",
               "python3-dev")


def _stages() -> list[list[dict[str, str]]]:
    stages: list[list[dict[str, str]]] = []
    for instruction in DockerfileParser(path=str(DOCKERFILE)).structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _args() -> dict[str, str]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    return {k: v for i in parser.structure if i["instruction"] == "ARG"
            for k, _, v in [i["value"].partition("=")]}


def test_multi_stage_on_slim_python_311() -> None:
    stages = _stages()
    assert len(stages) >= 2
    base = _args()["PYTHON_IMAGE"]
    assert base.startswith("python:3.11-slim")
    for stage in stages:
        assert stage[0]["value"].split()[0] in ("${PYTHON_IMAGE}", base)


def test_final_stage_runs_valerix_as_uid_10001_without_build_tools() -> None:
    final = _stages()[-1]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] == "10001"
    entrypoints = [i["value"] for i in final if i["instruction"] == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["valerix"]
    runs = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    for tool in BUILD_TOOLS:
        assert tool not in runs, tool
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), "the final stage copies only build output"


def test_the_image_ships_only_what_it_needs() -> None:
    ignore = [line for line in (chart.ROOT / ".dockerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ignore[0] == "*"  # allow-list: .venv, .git, tests and local data never enter the context
    assert set(ignore[1:6]) == {"!pyproject.toml", "!README.md", "!requirements.lock", "!requirements-dev.lock",
                                "!services/"}


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_dockerfile_three_images_runtime_last() -> None:
    """scripts/image builds --target runtime (valerix), postgres and k6; a plain build (skaffold,
    Tilt) gets the last stage, the app."""
    names = [stage[0]["value"].split()[-1] for stage in _stages()]
    assert {"build", "postgres", "k6", "runtime"} <= set(names)
    assert names[-1] == "runtime"
    script = (chart.ROOT / "scripts" / "image").read_text()
    for target in ("runtime", "postgres", "k6"):
        assert f"={target}" in script, target


def test_every_dependency_installs_with_its_hash() -> None:
    runs = [line for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines() if line.startswith("RUN ")]
    installs = [cmd.strip() for run in runs for cmd in run.split("&&") if "pip install" in cmd]
    assert installs
    for cmd in installs:
        assert "--require-hashes" in cmd or ("--no-deps" in cmd and cmd.rstrip().endswith(" .")), cmd


def test_the_registry_base_is_pinned_by_digest_and_scripts_image_pulls_the_same() -> None:
    arg = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ARG PYTHON_IMAGE="))
    base = arg.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    assert f"REGISTRY_BASE=docker.io/library/{base} " in (chart.ROOT / "scripts" / "image").read_text()
