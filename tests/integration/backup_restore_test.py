"""Snapshot while orders are placed and cancelled concurrently, restore into fresh databases, and
prove the DESIGN §4 invariants on the restored data. Also: corrupted snapshots are never restored."""

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
from valerix.backup import manifest as mf
from valerix.backup import pgtools, restore, snapshot
from valerix.backup.settings import BackupSettings
from valerix.kit import db

ORDER_SCHEMA = """
CREATE TABLE orders (
    id          uuid PRIMARY KEY,
    product_id  integer NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    status      text NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
)"""
INVENTORY_SCHEMA = """
CREATE TABLE products (
    id             integer PRIMARY KEY,
    initial_stock  integer NOT NULL,
    stock          integer NOT NULL
);
CREATE TABLE reservations (
    id          bigserial PRIMARY KEY,
    order_id    uuid NOT NULL,
    product_id  integer NOT NULL REFERENCES products (id),
    quantity    integer NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'released'))
);
CREATE UNIQUE INDEX reservations_one_per_order ON reservations (order_id)"""
PRODUCTS = 4
INITIAL_STOCK = 150


def _schema(url: str, name: str, body: str) -> None:
    """The services' migrations are not on main yet: the kit's plus tables that mimic them."""
    db.migrate(url, [*db.migration_files("valerix.kit"), (f"test:{name}", body)])


@dataclass
class Workload:
    """Places and cancels orders the way the services do: the order row first (intent), then the
    reservation (effect), then the order's final state; a cancel marks the order, then releases."""
    order_url: str
    inventory_url: str
    stop: threading.Event = field(default_factory=threading.Event)
    windows: dict[uuid.UUID, list[tuple[float, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[BaseException] = field(default_factory=list)

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        confirmed: list[uuid.UUID] = []
        try:
            with psycopg.connect(self.order_url, autocommit=True) as orders, \
                    psycopg.connect(self.inventory_url, autocommit=True) as inventory:
                while not self.stop.is_set():
                    started = time.time()
                    if confirmed and rng.random() < 0.25:
                        order_id = confirmed.pop(rng.randrange(len(confirmed)))
                        self._cancel(orders, inventory, order_id)
                    else:
                        order_id = uuid.uuid4()
                        if self._place(orders, inventory, order_id, rng):
                            confirmed.append(order_id)
                    with self.lock:
                        self.windows.setdefault(order_id, []).append((started, time.time()))
        except BaseException as error:
            self.errors.append(error)

    def _place(self, orders: psycopg.Connection, inventory: psycopg.Connection, order_id: uuid.UUID,
               rng: random.Random) -> bool:
        product, quantity = rng.randrange(PRODUCTS), rng.randint(1, 3)
        orders.execute("INSERT INTO orders (id, product_id, quantity, status) VALUES (%s, %s, %s, 'pending')",
                       (order_id, product, quantity))
        with inventory.transaction():
            reserved = inventory.execute(
                "UPDATE products SET stock = stock - %s WHERE id = %s AND stock >= %s RETURNING id",
                (quantity, product, quantity)).fetchone()
            if reserved:
                inventory.execute("INSERT INTO reservations (order_id, product_id, quantity, status) "
                                  "VALUES (%s, %s, %s, 'active')", (order_id, product, quantity))
        orders.execute("UPDATE orders SET status = %s WHERE id = %s",
                       ("confirmed" if reserved else "failed", order_id))
        return reserved is not None

    def _cancel(self, orders: psycopg.Connection, inventory: psycopg.Connection, order_id: uuid.UUID) -> None:
        orders.execute("UPDATE orders SET status = 'cancelled' WHERE id = %s AND status = 'confirmed'",
                       (order_id,))
        with inventory.transaction():
            row = inventory.execute(
                "UPDATE reservations SET status = 'released' WHERE order_id = %s AND status = 'active' "
                "RETURNING product_id, quantity", (order_id,)).fetchone()
            if row:
                inventory.execute("UPDATE products SET stock = stock + %s WHERE id = %s", (row[1], row[0]))


def _state(order_url: str, inventory_url: str) -> tuple[dict, dict, list]:
    with psycopg.connect(order_url) as conn:
        orders = dict(conn.execute("SELECT id, status FROM orders").fetchall())
    with psycopg.connect(inventory_url) as conn:
        reservations = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
            "SELECT order_id, product_id, quantity, status FROM reservations").fetchall()}
        products = conn.execute("SELECT id, initial_stock, stock FROM products ORDER BY id").fetchall()
    return orders, reservations, products


def _inventory_invariants(reservations: dict, products: list) -> None:
    for product_id, initial, stock in products:
        assert stock >= 0, f"product {product_id} has negative stock {stock}"
        held = sum(q for p, q, s in reservations.values() if p == product_id and s == "active")
        assert initial == stock + held, f"product {product_id}: {initial} != {stock} + {held}"


def _cross_invariants(orders: dict, reservations: dict, exempt: set) -> None:
    for order_id in (set(orders) | set(reservations)) - exempt:
        status = orders.get(order_id)
        active = reservations.get(order_id, (0, 0, "none"))[2] == "active"
        assert status != "pending", f"{order_id} pending outside the cut window"
        assert (status == "confirmed") == active, f"{order_id}: order {status}, reservation active={active}"


def _settle(orders: dict, reservations: dict, products: list) -> None:
    """What the workers do after a restart (sweeper, verification, outbox re-delivery), on the
    restored state in memory: finish each order that the cut split."""
    stock = {p: s for p, _, s in products}
    for order_id in set(orders) | set(reservations):
        status, res = orders.get(order_id), reservations.get(order_id)
        active = res is not None and res[2] == "active"
        if status == "pending":                               # verification: reserve-or-read
            orders[order_id] = "confirmed" if active else "failed"
        elif status in (None, "failed", "cancelled") and active:  # orphan or release not yet applied
            reservations[order_id] = (res[0], res[1], "released")
            stock[res[0]] += res[1]
        elif status == "confirmed" and not active:             # the cancel's release came first
            orders[order_id] = "cancelled"
    products[:] = [(p, i, stock[p]) for p, i, _ in products]


@pytest.fixture
def shop(new_database):
    order_url, inventory_url = new_database("order"), new_database("inventory")
    _schema(order_url, "orders", ORDER_SCHEMA)
    _schema(inventory_url, "inventory", INVENTORY_SCHEMA)
    with psycopg.connect(inventory_url) as conn:
        for product in range(PRODUCTS):
            conn.execute("INSERT INTO products VALUES (%s, %s, %s)", (product, INITIAL_STOCK, INITIAL_STOCK))
    return order_url, inventory_url


def _settings(tmp_path: Path, order_url: str, inventory_url: str) -> BackupSettings:
    return BackupSettings(order_database_url=order_url, inventory_database_url=inventory_url,
                          bus_database_url=None, backup_dir=tmp_path / "backups")


def test_snapshot_under_concurrent_orders_restores_to_a_consistent_shop(pg, shop, tmp_path):
    order_url, inventory_url = shop
    settings = _settings(tmp_path, order_url, inventory_url)
    load = Workload(order_url, inventory_url)
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
    orders, reservations, products = _state(urls["order"], urls["inventory"])
    live_orders, _, _ = _state(order_url, inventory_url)
    assert 0 < len(orders) < len(live_orders), "the snapshot must be taken while orders were being written"
    assert len(orders) == latest.database("order").row_counts["orders"]

    # Inside one database the dump is one MVCC snapshot: these hold exactly, no exemption.
    _inventory_invariants(reservations, products)
    # Across databases only an operation running during the cut may be split by it.
    cut = (latest.cut.started_at.timestamp(), latest.cut.finished_at.timestamp())
    in_flight = {o for o, spans in load.windows.items() if any(s <= cut[1] and e >= cut[0] for s, e in spans)}
    _cross_invariants(orders, reservations, exempt=in_flight)
    # ...and once the workers finish those, every invariant holds for every order.
    _settle(orders, reservations, products)
    _inventory_invariants(reservations, products)
    _cross_invariants(orders, reservations, exempt=set())
    assert any(s == "confirmed" for s in orders.values()) and any(s == "cancelled" for s in orders.values())


def test_restore_refuses_an_existing_database_and_keeps_roles_apart(pg, shop, tmp_path, new_database):
    order_url, inventory_url = shop
    settings = _settings(tmp_path, order_url, inventory_url)
    manifest = snapshot.take(settings)
    folder = settings.snapshots_dir / manifest.id
    existing = order_url.rsplit("/", 1)[1]
    with pytest.raises(restore.RestoreError, match="already exists"):
        restore.restore(folder, pg.admin_url, {"order": existing}, {})
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
