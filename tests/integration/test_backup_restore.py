"""Snapshot while orders are placed and cancelled concurrently (the real order and inventory services),
restore into fresh databases, and prove the DESIGN §4 invariants on the restored data. Also: corrupted snapshots are never restored."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from valerix.backup import manifest as mf
from valerix.backup import pgtools, reconcile, restore, snapshot
from valerix.backup.settings import BackupSettings
from valerix.checks import invariants
from valerix.inventory import db as inventory_db
from valerix.order import db as order_db
from valerix.order import service
from valerix.order.domain import OrderLine

PRODUCTS = ["SKU-001", "SKU-003", "SKU-004", "SKU-006", "SKU-008"]  # 006 and 008 run out: failures too


@dataclass
class Workload:
    """Places and cancels orders through the order service's use cases (real gRPC to inventory)."""
    deps: service.Deps
    stop: threading.Event = field(default_factory=threading.Event)
    windows: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[BaseException] = field(default_factory=list)

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        confirmed: list[str] = []
        try:
            while not self.stop.is_set():
                started = time.time()
                if confirmed and rng.random() < 0.25:
                    order_id = confirmed.pop(rng.randrange(len(confirmed)))
                    service.cancel_order(self.deps, order_id)
                else:
                    lines = [OrderLine(p, rng.randint(1, 3)) for p in rng.sample(PRODUCTS, rng.randint(1, 2))]
                    placed = service.place_order(self.deps, lines)
                    assert isinstance(placed, service.Placed)
                    order_id = placed.order["id"]
                    if placed.order["status"] == "confirmed":
                        confirmed.append(order_id)
                with self.lock:
                    self.windows.setdefault(order_id, []).append((started, time.time()))
        except BaseException as error:
            self.errors.append(error)

    def split_by(self, cut: mf.Cut) -> set[str]:
        """Orders with an operation running while the cut was taken: only these may disagree."""
        lo, hi = cut.started_at.timestamp(), cut.finished_at.timestamp()
        return {o for o, spans in self.windows.items() if any(s <= hi and e >= lo for s, e in spans)}


def _cross_database_disagreements(order_url: str, inventory_url: str) -> set[str]:
    with psycopg.connect(order_url, row_factory=dict_row) as oc, \
            psycopg.connect(inventory_url, row_factory=dict_row) as ic:
        orders, reservations = order_db.orders_by_status(oc), inventory_db.reservations_by_status(ic)
    held = reservations["reserved"]
    return ((orders["confirmed"] ^ held) | orders["pending"] | orders["pending_verification"]
            | ((orders["failed"] | orders["cancelled"]) & held))


def _settings(tmp_path: Path, order_url: str, inventory_url: str) -> BackupSettings:
    return BackupSettings(order_database_url=order_url, inventory_database_url=inventory_url,
                          bus_database_url=None, backup_dir=tmp_path / "backups")


@pytest.fixture
def shop(order_pool, inventory_url, inventory_pool) -> tuple[str, str]:
    """order_db and inventory_db migrated by the services' own migrations (demo catalogue seeded)."""
    return order_pool.conninfo, inventory_url


def test_snapshot_under_concurrent_orders_restores_to_a_consistent_shop(pg, shop, order_deps, tmp_path):
    order_url, inventory_url = shop
    settings = _settings(tmp_path, order_url, inventory_url)
    load = Workload(order_deps)
    writers = [threading.Thread(target=load.run, args=(seed,)) for seed in range(4)]
    for w in writers:
        w.start()
    try:
        time.sleep(0.5)
        manifests = []
        for _ in range(3):
            manifests.append(snapshot.take(settings))
            time.sleep(0.2)
    finally:
        load.stop.set()
        for w in writers:
            w.join(10)
    assert not load.errors, load.errors
    latest = manifests[-1]
    assert [s.id for s in snapshot.list_snapshots(settings.snapshots_dir)] == [m.id for m in manifests]
    assert latest.cut.order == ["order", "inventory"]
    assert (latest.cut.finished_at - latest.cut.started_at).total_seconds() < 1

    restored = restore.restore(settings.snapshots_dir / latest.id, pg.admin_url, {}, {})
    urls = {r.name: r.url for r in restored}
    with psycopg.connect(urls["order"]) as conn:
        restored_orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    with psycopg.connect(order_url) as conn:
        live_orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    assert 0 < restored_orders < live_orders, "the snapshot must be taken while orders were being written"
    assert restored_orders == latest.database("order").row_counts["orders"]

    # Inside one database the dump is one MVCC snapshot: stock invariants hold exactly.
    report = invariants.check(urls["order"], urls["inventory"])
    by_name = {c.name: c for c in report.checks}
    for name in ("stock never negative", "initial = stock + active reservations", "at most one reservation per order"):
        assert by_name[name].ok, by_name[name]
    # Across databases only an order with an operation running during the cut may disagree...
    assert _cross_database_disagreements(urls["order"], urls["inventory"]) <= load.split_by(latest.cut)
    # ...and once reconciled with the services' own recovery code, every invariant holds.
    reconcile.reconcile(urls["order"], urls["inventory"])
    report = invariants.check(urls["order"], urls["inventory"])
    assert report.ok, report.as_dict()
    assert report.counts["confirmed"] > 0 and report.counts["cancelled"] > 0 and report.counts["failed"] > 0


def test_restore_refuses_an_existing_database_and_keeps_roles_apart(pg, shop, tmp_path, new_database):
    order_url, inventory_url = shop
    settings = _settings(tmp_path, order_url, inventory_url)
    manifest = snapshot.take(settings)
    folder = settings.snapshots_dir / manifest.id
    existing = order_url.rsplit("/", 1)[1]
    with pytest.raises(restore.RestoreError, match="already exists"):
        restore.restore(folder, pg.admin_url, {"order": existing}, {})
    with pytest.raises(restore.RestoreError, match="1-63 bytes"):
        restore.restore(folder, pg.admin_url, {"order": "x" * 64}, {})
    owner_url = new_database("owner")
    owner = owner_url.split("://", 1)[1].split(":", 1)[0]
    target = f"inv_restored_{uuid.uuid4().hex[:8]}"
    [done] = restore.restore(folder, pg.admin_url, {"inventory": target}, {"inventory": owner}, ["inventory"])
    assert done.rows == sum(manifest.database("inventory").row_counts.values())
    with psycopg.connect(restore.database_url(pg.admin_url, target)) as conn:
        owners = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
    assert owners == {owner}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    valerix = str(Path(sys.executable).parent / "valerix")
    return subprocess.run([valerix, "backup", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_corrupted_snapshot_is_detected_by_verify_and_never_restored(pg, shop, tmp_path):
    order_url, inventory_url = shop
    settings = _settings(tmp_path, order_url, inventory_url)
    good, bad = snapshot.take(settings), snapshot.take(settings)
    dump = settings.snapshots_dir / bad.id / "inventory.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    env = {"BACKUP_DIR": str(settings.backup_dir), "ORDER_DATABASE_URL": order_url,
           "INVENTORY_DATABASE_URL": inventory_url, "BACKUP_RESTORE_ADMIN_URL": pg.admin_url}

    verified = _cli("verify", env=env)
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert bad.id in verified.stdout and "sha256 does not match" in verified.stdout
    assert good.id not in verified.stdout.split('"problems"')[1]

    target = f"must_not_exist_{uuid.uuid4().hex[:8]}"
    refused = _cli("restore", "--snapshot", bad.id, "--target", f"order={target}x", "--target",
                   f"inventory={target}", env=env)
    assert refused.returncode != 0 and "refusing to restore a corrupted backup" in refused.stderr
    with psycopg.connect(pg.admin_url) as conn:
        assert not conn.execute("SELECT 1 FROM pg_database WHERE datname LIKE %s", (target + "%",)).fetchone()

    # A manifest that lies about a dump (checksum recomputed over garbage) is caught by pg_restore --list.
    forged = settings.snapshots_dir / good.id
    (forged / "order.dump").write_bytes(b"PGDMP not really a dump")
    fake = mf.load(forged).model_copy(deep=True)
    fake.databases[0].size = (forged / "order.dump").stat().st_size
    from valerix.backup.files import sha256_file, write_json_atomic
    fake.databases[0].sha256 = sha256_file(forged / "order.dump")
    write_json_atomic(forged / mf.MANIFEST, fake.model_dump(mode="json"))
    problems = snapshot.verify(forged, pgtools.tool("pg_restore"))
    assert problems and "pg_restore failed" in problems[0]
