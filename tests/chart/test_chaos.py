"""The chaos ConfigMap: the CHAOS_DIR file names, mounted live, patchable by one account only."""

from __future__ import annotations

import chartlib as chart

from valerix.kit import chaos

CHAOS_KEYS = {
    "GREMLIN_MODE", "GREMLIN_MIN_DELAY_MS", "GREMLIN_MAX_DELAY_MS", "GREMLIN_EVERY_N",
    "SCHRODINGER_MODE", "SCHRODINGER_CRASH_PROBABILITY", "SCHRODINGER_FAILURE",
}


def test_configmap_holds_one_key_per_chaos_file() -> None:
    docs = chart.render("values.yaml", "chaos.gremlin.mode=true", "chaos.gremlin.everyN=5",
                        "chaos.schrodinger.failure=error")
    data = chart.one(docs, "ConfigMap", "valerix-chaos")["data"]
    assert set(data) == CHAOS_KEYS
    assert data["GREMLIN_MODE"] == "true" and data["GREMLIN_EVERY_N"] == "5"
    assert data["SCHRODINGER_FAILURE"] == "error"
    assert all(isinstance(v, str) for v in data.values())
    config = chaos.ChaosConfig.parse(data)  # the very parser the services use
    assert config.gremlin and config.every_n == 5 and config.failure == "error"


def test_every_key_is_one_the_services_read() -> None:
    docs = chart.render("values.yaml", "chaos.gremlin.seed=7", "chaos.schrodinger.seed=9")
    data = chart.one(docs, "ConfigMap", "valerix-chaos")["data"]
    assert set(data) == CHAOS_KEYS | {"GREMLIN_SEED", "SCHRODINGER_SEED"}
    assert set(data) <= set(chaos.KEYS)
    assert chaos.ChaosConfig.parse(data).gremlin_seed == 7


def test_inventory_pods_mount_it_as_a_directory_without_subpath(values_file: str) -> None:
    docs = chart.render(values_file)
    for name in ("inventory-api", "inventory-worker", "order-api", "order-worker"):
        spec = chart.pod_spec(chart.one(docs, "Deployment", name))
        assert spec is not None
        volume = next(v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "valerix-chaos")
        main = spec["containers"][0]
        mount = next(m for m in main["volumeMounts"] if m["name"] == volume["name"])
        assert "subPath" not in mount and "subPathExpr" not in mount, name
        assert mount["readOnly"] is True
        assert volume["configMap"].get("items") is None  # every key becomes a file
        assert chart.env_of(main)["CHAOS_DIR"]["value"] == mount["mountPath"]


def test_chaos_role_may_only_get_and_patch_that_configmap() -> None:
    docs = chart.render("values.yaml")
    role = chart.one(docs, "Role", "valerix-chaos")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": ["valerix-chaos"], "verbs": ["get", "patch"]}]
    binding = chart.one(docs, "RoleBinding", "valerix-chaos")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "valerix-chaos"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "chaos", "namespace": chart.NAMESPACE}]
    assert not chart.of_kind(docs, "ClusterRole") and not chart.of_kind(docs, "ClusterRoleBinding")
    assert chart.one(docs, "ServiceAccount", "chaos")


def test_no_app_pod_runs_as_the_chaos_account() -> None:
    for _, spec in chart.workloads(chart.render_all("values.yaml")):
        assert spec.get("serviceAccountName") != "chaos"
