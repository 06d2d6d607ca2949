"""What `helm install` deploys, run as real containers: every Deployment (two replicas) and
StatefulSet of the kind values with exactly the rendered spec; probes as the kubelet runs them;
orders through the order-api container; Gremlin switched on by an atomic swap of the mounted
chaos ConfigMap; kill -9 and restart; Schrödinger crashes absorbed inside the container; the
k6 Job; and at the end every order final and the invariants holding. The tests run in file
order on one cluster (session fixture)."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import psycopg
import pytest
from kubelet import MARKS, Cluster, Pod

from valerix.checks import invariants

pytestmark = MARKS
SETTLE_S = 120  # generous: the sweeper's bounds plus a busy 2-core machine


def place(client: httpx.Client, product: str = "SKU-005", quantity: int = 1) -> httpx.Response:
    return client.post("/api/orders", json={"productId": product, "quantity": quantity})


def clients(cluster: Cluster) -> list[httpx.Client]:
    """One client per order-api container, with a guest session once the API requires one."""
    made = []
    for pod in cluster.pods["order-api"]:
        base = f"http://{pod.ip}:{pod.port('http')}"
        session = httpx.post(f"{base}/api/session", json={}, timeout=30)
        headers = {"Authorization": f"Bearer {session.json()['token']}"} if session.status_code == 201 else {}
        made.append(httpx.Client(base_url=base, headers=headers, timeout=30))
    return made


ACKNOWLEDGED: set[str] = set()


def acknowledge(response: httpx.Response) -> None:
    if response.status_code in (201, 202):
        ACKNOWLEDGED.add(response.json()["orderId"])


def database_url(cluster: Cluster, db: str) -> str:
    pod = cluster.pods[f"{db}-db"][0]
    password = cluster.secrets[f"{db}-db-credentials"]["postgres-password"]
    port = pod.port("postgres")
    name = cluster.env_of(pod.main)["APP_DB"]
    return f"postgresql://postgres:{password}@{pod.ip}:{port}/{name}"


@pytest.fixture
def chaos(cluster: Cluster) -> Iterator[None]:
    """Puts the chaos ConfigMap back to its rendered defaults after a test that changed it."""
    rendered = dict(cluster.configmaps["valerix-chaos"])
    yield
    cluster.update_configmap("valerix-chaos", rendered, replace=True)   # keys the test added go too


def test_every_workload_runs_exactly_as_rendered(cluster: Cluster) -> None:
    for workload in cluster.workloads("Deployment", "StatefulSet"):
        name = workload["metadata"]["name"]
        expected = 2 if workload["kind"] == "Deployment" else 1
        assert workload["spec"]["replicas"] == expected, name
        assert len(cluster.pods[name]) == expected, name
    assert {"order-api", "order-worker", "inventory-api", "inventory-worker", "order-db", "inventory-db",
            "bus-db"} <= set(cluster.pods)
    for pod in cluster.all_pods():
        info = cluster.inspect(pod.container)
        main = pod.main
        psc, csc = pod.spec["securityContext"], main["securityContext"]
        assert info["State"]["Status"] == "running", pod.name
        assert info["Config"]["User"] == f"{psc['runAsUser']}:{psc['runAsGroup']}"
        assert info["HostConfig"]["ReadonlyRootfs"] is csc["readOnlyRootFilesystem"] is True
        assert info["Config"]["Cmd"] == [str(a) for a in main.get("args", info["Config"]["Cmd"])]
        env = dict(e.split("=", 1) for e in info["Config"]["Env"])
        for key, value in cluster.env_of(main).items():
            assert env[key] == value, (pod.name, key)
        status = cluster_exec(cluster, pod, "cat", "/proc/1/status")
        caps = dict(line.split(":", 1) for line in status.splitlines() if line.startswith("Cap"))
        assert int(caps["CapEff"].strip(), 16) == 0, f"{pod.name}: capabilities left: {caps}"
        assert "NoNewPrivs:\t1" in status
        assert cluster_exec(cluster, pod, "id", "-u").strip() == str(psc["runAsUser"])
        denied = cluster.exec(pod, "touch", "/opt/written")
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr, pod.name


def cluster_exec(cluster: Cluster, pod: Pod, *command: str) -> str:
    result = cluster.exec(pod, *command)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_probes_pass_as_the_kubelet_runs_them(cluster: Cluster) -> None:
    kinds = set()
    for pod in cluster.all_pods():
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            spec = pod.main.get(probe)
            assert spec is not None, f"{pod.name} has no {probe}"
            kinds |= {k for k in ("httpGet", "grpc", "exec") if k in spec}
            ok, detail = cluster.probe(pod, probe)
            assert ok, f"{pod.name} {probe}: {detail}"
    assert kinds == {"httpGet", "grpc", "exec"}


def test_orders_through_both_order_api_replicas(cluster: Cluster) -> None:
    for client in clients(cluster):
        with client:
            for _ in range(5):
                response = place(client)
                assert response.status_code == 201, response.text
                acknowledge(response)
                order = client.get(f"/api/orders/{response.json()['orderId']}").json()
                assert order["status"] == "confirmed"
            response = place(client, "SKU-008", 2)
            assert response.status_code == 409, response.text


def test_stock_level_is_exported_by_every_inventory_api(cluster: Cluster) -> None:
    for pod in cluster.pods["inventory-api"]:
        assert cluster.env_of(pod.main)["PROMETHEUS_MULTIPROC_DIR"]
        text = httpx.get(f"http://{pod.ip}:{pod.port('http')}/metrics", timeout=10).text
        assert 'valerix_stock_level{product_id="SKU-001"}' in text, text[:2000]


def test_gremlin_through_the_mounted_configmap_then_recovery(cluster: Cluster, chaos: None) -> None:
    cluster.update_configmap("valerix-chaos", {"GREMLIN_MODE": "true", "GREMLIN_MIN_DELAY_MS": "2500",
                                               "GREMLIN_MAX_DELAY_MS": "3000", "GREMLIN_EVERY_N": "0"})
    client = clients(cluster)[0]
    with client:
        end = time.monotonic() + 20  # ChaosSource re-reads CHAOS_DIR every 0.5 s
        while (response := place(client)).status_code != 202:
            acknowledge(response)
            assert time.monotonic() < end, "Gremlin never delayed ReserveStock"
        acknowledge(response)
        assert response.headers["Location"].endswith(response.json()["orderId"])
        with ThreadPoolExecutor(4) as pool:
            delayed = list(pool.map(lambda _: place(client), range(4)))
        assert [r.status_code for r in delayed] == [202] * 4, [r.text for r in delayed]
        for r in delayed:
            acknowledge(r)
        cluster.update_configmap("valerix-chaos", {"GREMLIN_MODE": "false"})
        end = time.monotonic() + 20
        while (response := place(client)).status_code != 201:
            acknowledge(response)
            assert time.monotonic() < end, "orders still delayed after Gremlin was switched off"
        acknowledge(response)
    wait_all_final(cluster)


def test_kill_9_and_restart_loses_nothing_acknowledged(cluster: Cluster) -> None:
    """Orders flow while the order database and one order worker die by SIGKILL and are
    restarted like restartPolicy: Always; every 201/202 answer's order survives."""
    stop = threading.Event()
    answers: list[int] = []

    def load() -> None:
        with clients(cluster)[1] as client:
            while not stop.is_set():
                try:
                    response = place(client, "SKU-007")
                    answers.append(response.status_code)
                    acknowledge(response)
                except httpx.HTTPError:
                    answers.append(0)
                time.sleep(0.2)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(2)
        db, worker = cluster.pods["order-db"][0], cluster.pods["order-worker"][0]
        cluster.kill9(db)
        cluster.kill9(worker)
        time.sleep(2)
        cluster.restart(db)
        cluster.restart(worker)
        for pod in (db, worker):
            cluster.wait_probe(pod, "startupProbe")
            cluster.wait_probe(pod, "readinessProbe", deadline_s=60)
        time.sleep(3)
    finally:
        stop.set()
        thread.join()
    assert answers.count(201) + answers.count(202) > 5, answers
    for client in clients(cluster):  # no replica answers from a connection the restart killed
        with client:
            for _ in range(4):
                response = place(client)
                assert response.status_code in (201, 202), f"{client.base_url}: {response.text}"
                acknowledge(response)
    wait_all_final(cluster)
    report = invariants.check(database_url(cluster, "order"), database_url(cluster, "inventory"), ACKNOWLEDGED)
    assert report.ok, json.dumps(report.as_dict(), indent=1)


def test_schrodinger_crashes_restart_inside_the_container(cluster: Cluster, chaos: None,
                                                          measured: Callable[[str], None]) -> None:
    pods = cluster.pods["inventory-api"]
    started = {p.name: cluster.inspect(p.container)["State"]["StartedAt"] for p in pods}
    cluster.update_configmap("valerix-chaos", {"SCHRODINGER_MODE": "true", "SCHRODINGER_CRASH_PROBABILITY": "0.5",
                                               "SCHRODINGER_FAILURE": "crash"})

    def crashes() -> int:
        return sum(cluster.logs(p, 10_000).count("starting it again") for p in pods)

    crashes_before = crashes()
    with clients(cluster)[0] as client:
        statuses: list[int] = []
        # ChaosSource re-reads CHAOS_DIR every 0.5 s and an order takes milliseconds, so the
        # first orders may see the old config: go on until a crash shows, then 12 orders more
        end = time.monotonic() + 30
        while crashes() == crashes_before:
            assert time.monotonic() < end, f"no Schrödinger crash in 30 s at p=0.5: {statuses}"
            place_through_crashes(cluster, client, statuses)
        for _ in range(12):
            place_through_crashes(cluster, client, statuses)
    crashed = crashes() - crashes_before
    assert set(statuses) <= {201, 202}, statuses
    for pod in pods:
        info = cluster.inspect(pod.container)
        assert info["State"]["Status"] == "running" and info["State"]["StartedAt"] == started[pod.name], \
            f"{pod.name}: the container itself restarted"
    gaps = [gap for p in pods for gap in restart_gaps(cluster.logs(p, 10_000))]
    back_after = ", ".join(f"{g:.2f}" for g in gaps)
    measured(f"containers, Schrödinger: {crashed} crashes in {len(statuses)} orders, server back after {back_after} s")
    assert gaps and max(gaps) < 10, gaps  # about a second by design; generous on a busy machine
    cluster.update_configmap("valerix-chaos", {"SCHRODINGER_MODE": "false"})
    wait_all_final(cluster)


def place_through_crashes(cluster: Cluster, client: httpx.Client, statuses: list[int]) -> None:
    response = place(client)
    statuses.append(response.status_code)
    acknowledge(response)
    for pod in cluster.pods["inventory-api"]:  # the server is back (a second, as the design promises)
        cluster.wait_probe(pod, "livenessProbe", deadline_s=15)


def restart_gaps(log: str) -> list[float]:
    """Seconds from each 'dying after commit' to the next 'inventory api listening' (JSON logs)."""
    gaps, died = [], None
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        at = datetime.fromisoformat(record["ts"]).timestamp()
        if record.get("msg", "").startswith("schrodinger: dying"):
            died = at
        elif record.get("msg") == "inventory api listening" and died is not None:
            gaps.append(at - died)
            died = None
    return gaps


def test_the_k6_job_passes_its_thresholds(cluster: Cluster) -> None:
    job = next(d for d in cluster.docs if d["kind"] == "Job" and d["metadata"]["name"].startswith("k6-"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert cluster.env_of(container)["BASE_URL"] == "http://order-api:3000"
    result = cluster.run_job(job, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "orders_confirmed" in output and "order_errors" in output, output[-4000:]


def test_a_k6_threshold_that_fails_fails_the_job(cluster: Cluster) -> None:
    job = copy.deepcopy(next(d for d in cluster.docs if d["kind"] == "Job" and d["metadata"]["name"].startswith("k6-")))
    job["metadata"]["name"] += "-strict"
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] not in ("P99_MS", "DURATION")] + [
        {"name": "P99_MS", "value": "0.001"}, {"name": "DURATION", "value": "3s"}]
    result = cluster.run_job(job, timeout=120)
    assert result.returncode == 99, (result.returncode, (result.stdout + result.stderr)[-3000:])  # k6: thresholds


def test_two_of_everything_finalises_once_and_keeps_the_invariants(cluster: Cluster) -> None:
    wait_all_final(cluster)
    order_url, inventory_url = database_url(cluster, "order"), database_url(cluster, "inventory")
    report = invariants.check(order_url, inventory_url, ACKNOWLEDGED)
    assert report.ok, json.dumps(report.as_dict(), indent=1)
    assert report.counts.get("confirmed", 0) > 20
    with psycopg.connect(order_url) as conn:
        twice = conn.execute(
            "SELECT order_id FROM order_status_history WHERE to_status IN ('confirmed', 'failed') "
            "GROUP BY order_id HAVING count(*) > 1").fetchall()
        assert twice == [], f"orders finalised more than once: {twice[:10]}"
    with psycopg.connect(database_url(cluster, "bus")) as conn:
        dead = conn.execute("SELECT entity, dead_letter_reason FROM bus_messages WHERE dead_lettered_at IS NOT NULL"
                            ).fetchall()
        assert dead == [], dead
        doubled = conn.execute("SELECT entity, message_id FROM bus_messages GROUP BY 1, 2 HAVING count(*) > 1"
                               ).fetchall()
        assert doubled == [], f"published twice inside the duplicate window: {doubled[:10]}"
    for pod in cluster.all_pods():
        assert cluster.state(pod) == "running", pod.name


def wait_all_final(cluster: Cluster) -> None:
    url = database_url(cluster, "order")
    end = time.monotonic() + SETTLE_S
    while (left := invariants.unfinished_count(url)) > 0:
        assert time.monotonic() < end, f"{left} orders still not final after {SETTLE_S} s"
        time.sleep(1)
