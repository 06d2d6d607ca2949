"""The hash-locked requirements (scripts/lock) agree with pyproject.toml, and the environment the
tests run in is the one the lock describes. Offline: it compares pins, it resolves nothing."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME, DEV = ROOT / "requirements.lock", ROOT / "requirements-dev.lock"
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def _entries(lock: Path) -> dict[str, tuple[Requirement, list[str]]]:
    """name -> (the pinned requirement with its marker, its hashes)."""
    entries: dict[str, tuple[Requirement, list[str]]] = {}
    current: str | None = None
    for line in lock.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            requirement = Requirement(line.rstrip(" \\"))
            current = canonicalize_name(requirement.name)
            assert current not in entries, f"{lock.name}: {current} twice"
            entries[current] = (requirement, [])
        else:
            assert current is not None, line
            entries[current][1].extend(HASH.findall(line))
    return entries


def _pin(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned exactly"
    return spec.version


def _direct(*groups: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for group in groups:
        found += [Requirement(r) for r in project["optional-dependencies"][group]]
    return found + [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]


@pytest.mark.parametrize(("lock", "groups"), [(RUNTIME, ()), (DEV, ("dev",))], ids=["runtime", "dev"])
def test_every_direct_dependency_is_locked_at_its_pyproject_version(lock: Path, groups: tuple[str, ...]) -> None:
    entries = _entries(lock)
    for requirement in _direct(*groups):
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement} is missing from {lock.name}: run scripts/lock"
        assert _pin(entries[name][0]) == _pin(requirement), \
            f"{lock.name} has {entries[name][0]}, pyproject.toml {requirement}: run scripts/lock"


@pytest.mark.parametrize("lock", [RUNTIME, DEV], ids=["runtime", "dev"])
def test_every_locked_package_is_pinned_with_hashes(lock: Path) -> None:
    entries = _entries(lock)
    assert len(entries) > len(_direct()), "the lock lists no transitive dependency"
    for name, (requirement, hashes) in entries.items():
        _pin(requirement)
        assert requirement.url is None, name
        assert hashes, f"{lock.name}: {name} has no hash"


def test_the_runtime_lock_is_the_dev_lock_without_the_dev_tools() -> None:
    runtime, dev = _entries(RUNTIME), _entries(DEV)
    assert runtime.keys() <= dev.keys()
    for name, (requirement, hashes) in runtime.items():
        assert _pin(dev[name][0]) == _pin(requirement), name
        assert set(dev[name][1]) == set(hashes), name
    assert not {"pytest", "ruff", "mypy", "uv"} & runtime.keys()


def test_the_environment_is_the_one_the_lock_describes() -> None:
    """scripts/bootstrap installs requirements-dev.lock; a venv that drifted from it fails here."""
    wrong = []
    for name, (requirement, _) in _entries(DEV).items():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != _pin(requirement):
            wrong.append(f"{name}: locked {_pin(requirement)}, installed {installed}")
    assert not wrong, "run scripts/bootstrap:\n" + "\n".join(wrong)


def test_the_lock_parser_sees_a_missing_hash(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text("flask==3.1.3 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via valerix\nclick==8.5.1\n")
    entries = _entries(lock)
    assert entries["flask"][1] and not entries["click"][1]
