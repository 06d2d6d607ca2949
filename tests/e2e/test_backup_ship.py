"""The daily ship against the mock backup service running as a real process: one call a day,
ledger-guarded across restarts and concurrent processes, refused and retried only as the
protocol allows; bad input gets problem+json; a shipped bundle restores."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from valerix.backup import ledger, ship, snapshot
from valerix.backup.mock_server import create_mock_app
from valerix.backup.settings import BackupSettings
from valerix.kit import db
from valerix.kit.ports import free_port, wait_listening

pytestmark = pytest.mark.e2e
VALERIX = str(Path(sys.executable).parent / "valerix")
MAX_BYTES = 2_000_000
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    storage = tmp_path_factory.mktemp("backup-service")
    port = free_port()
    proc = subprocess.Popen([VALERIX, "backup", "mock-server", "--port", str(port), "--data-dir", str(storage),
                             "--max-bytes", str(MAX_BYTES), "--allow-clock-header"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def valerix(*args: str, env: dict[str, str], check: bool = True) -> tuple[int, dict]:
    done = subprocess.run([VALERIX, "backup", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)
    if check and done.returncode not in (0, 1):
        raise AssertionError(done.stderr)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}


def bundles(service: str, client: str) -> list[dict]:
    response = httpx.get(f"{service}/v1/bundles", headers={"X-Client-Id": client})
    response.raise_for_status()
    return response.json()["bundles"]


@pytest.fixture
def site(service, new_database, tmp_path):
    """A shop database with a little data and a backup environment for a fresh client id."""
    url = new_database("order")
    db.migrate(url, [*db.migration_files("valerix.kit"),
                     ("test:0001", "CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)")])
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO orders SELECT g, 'confirmed' FROM generate_series(1, 500) g")
    client = f"site-{uuid.uuid4().hex[:10]}"
    env = {"ORDER_DATABASE_URL": url, "INVENTORY_DATABASE_URL": "", "BUS_DATABASE_URL": "",
           "BACKUP_DIR": str(tmp_path / "a"), "BACKUP_SERVICE_URL": service, "BACKUP_CLIENT_ID": client}
    return env


def test_second_ship_the_same_day_spends_no_call_and_the_service_refuses_one(service, site):
    assert valerix("snapshot", env=site)[0] == 0
    code, first = valerix("ship", env=site)
    assert (code, first["called"], first["state"]) == (0, True, "accepted"), first
    assert first["receipt"]["size"] > 0 and len(bundles(service, site["BACKUP_CLIENT_ID"])) == 1

    valerix("snapshot", env=site)
    code, second = valerix("ship", env=site)                 # a restart, a new snapshot: still no call
    assert (code, second["called"]) == (0, False) and "already used" in second["detail"]
    _, scheduled = valerix("run-scheduled", env=site)
    assert scheduled["ship"].startswith("not due until")
    assert len(bundles(service, site["BACKUP_CLIENT_ID"])) == 1

    _, status = valerix("status", env=site)
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert status["todaysCallUsed"] is True and status["snapshots"]["count"] == 2
    assert datetime.fromisoformat(status["nextCallAllowed"]) == midnight
    assert status["lastShippedSnapshot"] == first["snapshots"][-1] != status["snapshots"]["latest"]

    refused = post(service, b"x" * 10, **{"X-Client-Id": site["BACKUP_CLIENT_ID"]})
    assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM
    assert refused.headers["Backup-Call-Counted"] == "false"
    expected = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(int(refused.headers["Retry-After"]) - expected) < 5


def test_concurrent_ships_from_two_processes_spend_exactly_one_call(service, site):
    snapshot.take(in_process(site))
    procs = [subprocess.Popen([VALERIX, "backup", "ship"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **site}) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert sorted(r["called"] for r in results) == [False, True], results
    assert len(bundles(service, site["BACKUP_CLIENT_ID"])) == 1


def in_process(env: dict[str, str]) -> BackupSettings:
    """The same configuration as the CLI gets, for steps where a new process proves nothing more."""
    return BackupSettings(order_database_url=env["ORDER_DATABASE_URL"], inventory_database_url=None,
                          bus_database_url=None, backup_dir=Path(env["BACKUP_DIR"]),
                          backup_service_url=env["BACKUP_SERVICE_URL"], backup_client_id=env["BACKUP_CLIENT_ID"])


def test_a_second_site_without_the_ledger_is_refused_and_never_retries(service, site, tmp_path):
    here, there = in_process(site), in_process({**site, "BACKUP_DIR": str(tmp_path / "b")})
    for settings in (here, there):
        snapshot.take(settings)
    assert ship.ship(here).state == "accepted"
    refused = ship.ship(there)
    assert (refused.called, refused.state) == (True, "refused")
    assert refused.next_allowed >= ledger.next_midnight(datetime.now(UTC)) - timedelta(seconds=5)
    assert ship.ship(there).called is False
    assert len(bundles(service, site["BACKUP_CLIENT_ID"])) == 1


def test_a_failed_call_is_retried_only_when_proven_not_counted(service, site, tmp_path):
    settings = in_process(site)
    snapshot.take(settings)
    nobody = settings.model_copy(update={"backup_service_url": f"http://127.0.0.1:{free_port()}"})
    for _ in (1, 2):                                         # connection refused: nothing was sent
        result = ship.ship(nobody)
        assert (result.called, result.state) == (True, "not_counted"), result
    assert ship.ship(settings).state == "accepted"

    unsure = settings.model_copy(update={"backup_dir": tmp_path / "c", "backup_client_id": "unsure-c",
                                         "backup_service_url": f"{service}/elsewhere"})
    snapshot.take(unsure)                                    # a 404 without proof: it may have counted
    assert ship.ship(unsure).state == "unknown"
    after = ship.ship(unsure.model_copy(update={"backup_service_url": service}))
    assert (after.called, after.state) == (False, "unknown")
    assert bundles(service, "unsure-c") == []


def test_a_shipped_bundle_restores_from_the_service_and_verifies(service, site, pg, tmp_path):
    snapshot.take(in_process(site))
    assert ship.ship(in_process(site)).state == "accepted"
    target = f"order_from_service_{uuid.uuid4().hex[:8]}"
    code, restored = valerix("restore", "--from-service", "latest", "--admin-url", pg.admin_url,
                             "--target", f"order={target}", env=site)
    assert code == 0, restored
    with psycopg.connect(pg.admin_url.rsplit("/", 1)[0] + "/" + target) as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE status = 'confirmed'").fetchone()[0] == 500

    _, status = valerix("status", "--remote", env=site)
    [held] = status["remoteBundles"]
    tar = tmp_path / "shipped.tar"
    tar.write_bytes(httpx.get(f"{service}/v1/bundles/{held['bundleId']}",
                              headers={"X-Client-Id": site["BACKUP_CLIENT_ID"]}).content)
    assert valerix("verify", "--bundle", str(tar), env=site)[0] == 0
    with tarfile.open(tar) as archive:
        dump = next(m for m in archive.getmembers() if m.name.endswith(".dump"))
    data = bytearray(tar.read_bytes())
    data[dump.offset_data + dump.size // 2] ^= 0xFF         # one flipped bit inside a dump
    tar.write_bytes(bytes(data))
    code, verified = valerix("verify", "--bundle", str(tar), env=site)
    assert code == 1 and "sha256 does not match" in json.dumps(verified["problems"])


def post(service: str, body: bytes = b"tar", **headers: str) -> httpx.Response:
    base = {"X-Client-Id": "bad-input", "Content-Type": "application/x-tar"}
    return httpx.post(f"{service}/v1/bundles", content=body, headers={**base, **headers})


@pytest.mark.parametrize(("case", "status"), [
    ({"body": b""}, 400),
    ({"Content-Type": "application/json"}, 415),
    ({"body": b"x" * (MAX_BYTES + 1)}, 413),
    ({"X-Client-Id": "../../etc"}, 400),
    ({"X-Client-Id": ""}, 400),
    ({"X-Client-Id": "a" * 64}, 400),
    ({"X-Client-Id": "Robert'); DROP TABLE"}, 400),
    ({"X-Content-SHA256": "0" * 64}, 422),
    ({"X-Mock-Now": "yesterday"}, 400),
])
def test_the_service_answers_bad_input_with_problem_json_and_does_not_count_it(service, case, status):
    headers = {k: v for k, v in case.items() if k != "body"}
    response = post(service, case.get("body", b"tar"), **headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM and response.json()["status"] == status
    assert response.headers["Backup-Call-Counted"] == "false"
    assert bundles(service, "bad-input") == []


@pytest.mark.parametrize(("path", "status"), [("../../etc/passwd", 404), ("nope", 400),
                                              (f"2026-01-01-{'0' * 32}", 404)])
def test_downloads_only_serve_the_clients_own_bundles(service, path, status):
    response = httpx.get(f"{service}/v1/bundles/{path}", headers={"X-Client-Id": "bad-input"})
    assert response.status_code == status and response.headers["content-type"] == PROBLEM


def test_the_day_rolls_over_at_utc_midnight(service):
    client = f"clock-{uuid.uuid4().hex[:8]}"
    at = {"X-Client-Id": client, "X-Mock-Now": "2031-03-04T23:59:00+00:00"}
    assert post(service, **at).status_code == 201
    again = post(service, **at)
    assert (again.status_code, again.headers["Retry-After"]) == (429, "60")
    assert post(service, **{**at, "X-Mock-Now": "2031-03-05T00:00:01+00:00"}).status_code == 201
    assert [b["day"] for b in bundles(service, client)] == ["2031-03-04", "2031-03-05"]


def test_the_clock_header_is_ignored_unless_the_server_allows_it(tmp_path):
    fixed = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    app = create_mock_app(tmp_path, allow_clock_header=False, clock=lambda: fixed)
    client = app.test_client()
    headers = {"X-Client-Id": "honest", "Content-Type": "application/x-tar",
               "X-Mock-Now": "2031-01-01T00:00:00Z"}
    first = client.post("/v1/bundles", data=b"tar", headers=headers)
    assert first.status_code == 201 and first.json["day"] == "2030-06-01"
    second = client.post("/v1/bundles", data=b"tar",
                         headers={**headers, "X-Mock-Now": "2031-01-02T00:00:00Z"})
    assert second.status_code == 429 and second.headers["Retry-After"] == str(12 * 3600)


def test_a_ship_killed_mid_call_never_spends_a_second_call(service, site):
    """The ledger says in_flight before the request leaves: after a crash the day counts as used."""
    received = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as black_hole:
        def swallow() -> None:
            conn, _ = black_hole.accept()
            with conn:
                conn.recv(65536)          # the request arrived; no answer will ever come
                received.set()
                time.sleep(30)

        threading.Thread(target=swallow, daemon=True).start()
        snapshot.take(in_process(site))
        hanging = {**site, "BACKUP_SERVICE_URL": f"http://127.0.0.1:{black_hole.getsockname()[1]}"}
        proc = subprocess.Popen([VALERIX, "backup", "ship"], env={**os.environ, **hanging},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert received.wait(20)
        finally:
            proc.kill()
            proc.wait(10)
    code, after = valerix("ship", env=site)                 # restarted, against the real service
    assert (code, after["called"], after["state"]) == (0, False, "in_flight")
    assert bundles(service, site["BACKUP_CLIENT_ID"]) == []
