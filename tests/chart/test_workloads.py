"""The four process roles, their probes, migrations, services, PDBs, autoscaling and backups."""

from __future__ import annotations

import chartlib as chart

ROLES = {
    "order-api": ["order", "api"],
    "order-worker": ["order", "worker"],
    "inventory-api": ["inventory", "api", "--respawn-on-crash"],  # Schrödinger crashes restart in the pod
    "inventory-worker": ["inventory", "worker"],
}


def _main(doc: chart.Doc) -> chart.Doc:
    return chart.pod_spec(doc)["containers"][0]  # type: ignore[index]


def test_one_deployment_per_role_with_its_command(values_file: str) -> None:
    deployments = chart.of_kind(chart.render(values_file), "Deployment")
    assert set(deployments) == set(ROLES)
    for name, args in ROLES.items():
        assert _main(deployments[name])["args"] == args


def test_http_probes_liveness_readiness_startup() -> None:
    deployments = chart.of_kind(chart.render("values.yaml"), "Deployment")
    for name in ("order-api", "order-worker", "inventory-worker"):
        main = _main(deployments[name])
        assert main["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert main["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert main["startupProbe"]["httpGet"]["path"] == "/health/live", name
    worker = _main(deployments["order-worker"])
    assert worker["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert chart.env_of(worker)["METRICS_PORT"]["value"] == "9100"


def test_order_api_readiness_can_ignore_inventory() -> None:
    docs = chart.render("values.yaml", "order.api.readinessPath=/health/live")
    assert _main(chart.one(docs, "Deployment", "order-api"))["readinessProbe"]["httpGet"]["path"] == "/health/live"


def test_inventory_uses_native_grpc_probes() -> None:
    main = _main(chart.one(chart.render("values.yaml"), "Deployment", "inventory-api"))
    assert main["startupProbe"]["grpc"] == {"port": 50051}
    assert main["livenessProbe"]["grpc"] == {"port": 50051}
    assert main["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"grpc": 50051, "http": 3001}
    env = chart.env_of(main)
    assert env["INVENTORY_GRPC_BIND"]["value"] == "0.0.0.0:50051"
    assert env["INVENTORY_HTTP_BIND"]["value"] == "0.0.0.0:3001"


def test_grpc_service_port_is_named_for_meshes() -> None:
    service = chart.one(chart.render("values.yaml"), "Service", "inventory-api")
    grpc = next(p for p in service["spec"]["ports"] if p["port"] == 50051)
    assert grpc["name"] == "grpc" and grpc["appProtocol"] == "grpc"


def test_order_pods_find_inventory_through_the_service() -> None:
    main = _main(chart.one(chart.render("values.yaml"), "Deployment", "order-api"))
    assert chart.env_of(main)["INVENTORY_GRPC_TARGET"]["value"] == "inventory-api:50051"
    assert chart.env_of(main)["ORDER_API_BIND"]["value"] == "0.0.0.0:3000"


def test_migrations_run_before_the_apps(values_file: str) -> None:
    docs = chart.render(values_file)
    postgres_bus = values_file != "values-aks.yaml"
    for name, (service, role, *_) in ROLES.items():
        spec = chart.pod_spec(chart.one(docs, "Deployment", name))
        migrations = [c["args"] for c in spec["initContainers"] if c["args"][0] == "migrate"]  # type: ignore[index]
        expected = [["migrate", service]] + ([["migrate", "bus"]] if postgres_bus else [])
        assert migrations == expected, name


def test_pods_wait_for_their_databases_before_migrating() -> None:
    spec = chart.pod_spec(chart.one(chart.render("values.yaml"), "Deployment", "inventory-worker"))
    wait = spec["initContainers"][0]  # type: ignore[index]
    assert wait["name"] == "wait-for-db"
    script = wait["args"][0]
    assert "for host in inventory-db bus-db" in script
    # uid 10001 has no passwd entry in the postgres image: libpq needs an explicit user.
    assert "pg_isready -q -h \"$host\" -p 25432 -U postgres" in script
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-db", "migrate", "migrate-bus"]  # type: ignore[index]


def test_each_deployment_has_a_matching_pdb(values_file: str) -> None:
    docs = chart.render(values_file)
    pdbs = chart.of_kind(docs, "PodDisruptionBudget")
    for name, deployment in chart.of_kind(docs, "Deployment").items():
        selector = pdbs[name]["spec"]["selector"]["matchLabels"]
        assert selector == deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= chart.pod_labels(deployment).items()
        assert pdbs[name]["spec"]["maxUnavailable"] >= 1  # never blocks a node drain


def test_aks_runs_highly_available_apis_with_hpa_and_ingress() -> None:
    docs = chart.render("values-aks.yaml")
    hpas = chart.of_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"order-api", "inventory-api"}
    for hpa in hpas.values():
        assert hpa["spec"]["minReplicas"] >= 2
        assert "replicas" not in chart.one(docs, "Deployment", hpa["metadata"]["name"])["spec"]
    for worker in ("order-worker", "inventory-worker"):
        assert chart.one(docs, "Deployment", worker)["spec"]["replicas"] >= 2
    ingress = chart.one(docs, "Ingress", "valerix")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "order-api", "port": {"name": "http"}}
    assert not chart.of_kind(docs, "StatefulSet")


def test_aks_uses_azure_service_bus_and_external_databases_from_secrets() -> None:
    docs = chart.render("values-aks.yaml")
    for name in ROLES:
        env = chart.env_of(_main(chart.one(docs, "Deployment", name)))
        assert env["BUS_BACKEND"]["value"] == "azure"
        ref = env["SERVICE_BUS_CONNECTION_STRING"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "valerix-servicebus", "key": "SERVICE_BUS_CONNECTION_STRING"}
        url = next(v for k, v in env.items() if k.endswith("_DATABASE_URL"))
        assert url["valueFrom"]["secretKeyRef"]["name"] == "valerix-databases"
        assert "BUS_DATABASE_URL" not in env


def test_kind_runs_everything_in_cluster_with_the_embedded_bus() -> None:
    docs = chart.render("values-kind.yaml")
    assert set(chart.of_kind(docs, "StatefulSet")) == {"order-db", "inventory-db", "bus-db"}
    env = chart.env_of(_main(chart.one(docs, "Deployment", "inventory-worker")))
    assert env["BUS_BACKEND"]["value"] == "postgres"
    assert env["BUS_DATABASE_URL"]["value"] == "postgresql://bus_svc:$(BUS_DB_PASSWORD)@bus-db:25432/bus_db"


def test_each_service_gets_only_its_own_database_url() -> None:
    docs = chart.render("values.yaml")
    for name, (service, *_) in ROLES.items():
        env = chart.env_of(_main(chart.one(docs, "Deployment", name)))
        urls = {k for k in env if k.endswith("_DATABASE_URL")}
        assert urls == {f"{service.upper()}_DATABASE_URL", "BUS_DATABASE_URL"}, name


def test_postgres_statefulsets_have_volumes_and_an_init_script() -> None:
    docs = chart.render("values.yaml")
    for db in ("order", "inventory", "bus"):
        sts = chart.one(docs, "StatefulSet", f"{db}-db")
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
        main = sts["spec"]["template"]["spec"]["containers"][0]
        env = chart.env_of(main)
        assert env["APP_DB"]["value"] == f"{db}_db" and env["APP_USER"]["value"] == f"{db}_svc"
        assert env["APP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"{db}-db-credentials"
        assert env["PGPORT"]["value"] == "25432"
        mounts = {m["mountPath"] for m in main["volumeMounts"]}
        assert {"/var/lib/postgresql/data", "/docker-entrypoint-initdb.d", "/var/run/postgresql"} <= mounts
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert main[probe]["exec"]["command"][0] == "pg_isready"
    init = chart.one(docs, "ConfigMap", "valerix-postgres-init")["data"]["init-app-db.sh"]
    assert init == (chart.CHART / "files/postgres/init-app-db.sh").read_text()


def test_bus_db_only_with_the_postgres_bus() -> None:
    docs = chart.render("values.yaml", "bus.backend=azure", "bus.azure.existingSecret=sb",
                        "networkPolicy.external.serviceBus.cidrs={10.0.2.0/24}",
                        "bus.azure.provision.existingSecret=sb-admin")
    assert set(chart.of_kind(docs, "StatefulSet")) == {"order-db", "inventory-db"}


def test_backup_cronjob_every_15_minutes_on_a_volume() -> None:
    docs = chart.render("values.yaml", "backup.enabled=true", "backup.serviceUrl=https://backup.example/api")
    cron = chart.one(docs, "CronJob", "backup")
    assert cron["spec"]["schedule"] == "*/15 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    spec = chart.pod_spec(cron)
    main = spec["containers"][0]  # type: ignore[index]
    assert main["args"] == ["backup", "run-scheduled"]
    env = chart.env_of(main)
    assert env["BACKUP_SERVICE_URL"]["value"] == "https://backup.example/api"
    assert env["BACKUP_CLIENT_ID"]["value"] == "valerix"
    volumes = {v["name"]: v for v in spec["volumes"]}  # type: ignore[index]
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == env["BACKUP_DIR"]["value"])
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    assert chart.one(docs, "PersistentVolumeClaim", claim)
    assert {"ORDER_DATABASE_URL", "INVENTORY_DATABASE_URL", "BUS_DATABASE_URL"} <= set(env)
    assert not chart.of_kind(chart.render("values.yaml", "backup.enabled=false"), "CronJob")
