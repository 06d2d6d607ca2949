"""Fixtures shared by every test layer: a real PostgreSQL from the pgserver wheel."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from valerix.kit import embedded_pg
from valerix.kit.ports import free_port

from support.scheduling import BesideTheRest

if TYPE_CHECKING:
    from xdist.remote import Producer

pytest_plugins = ["support.bus"]  # bus, bus_db_url, service_pool

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[embedded_pg.EmbeddedPostgres]:
    """One private PostgreSQL server for the whole test session (a fresh cluster in /tmp)."""
    root = Path(tempfile.mkdtemp(prefix="valerix-pg-"))
    root.chmod(0o755)
    server = embedded_pg.EmbeddedPostgres(root / "data", free_port(), embedded_pg.new_password()).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


NewDatabase = Callable[[str], str]


@pytest.fixture
def new_database(pg: embedded_pg.EmbeddedPostgres) -> NewDatabase:
    """Creates an empty database owned by its own role and returns the role's URL."""

    def create(prefix: str) -> str:
        name = f"{prefix}_{next(_counter)}_{free_port() % 10000}"
        return embedded_pg.provision_database(pg.admin_url, name, f"{name}_svc", embedded_pg.new_password())

    return create


# Figures a test measures (the bench smoke's CPU ms per order), printed at the end of every
# run: a report, so a regression is seen; never a timing assert. They travel as the test's
# user_properties, so they reach the terminal (and junit.xml) from an xdist worker too.
MEASURED_PROPERTY = "measured"
MEASURED: list[str] = []


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def record(line: str) -> None:
        request.node.user_properties.append((MEASURED_PROPERTY, line))

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        MEASURED.extend(str(value) for name, value in report.user_properties if name == MEASURED_PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> BesideTheRest:
    return BesideTheRest(config, log)
