"""Every pod and container of every values file is hardened, sized and pinned."""

from __future__ import annotations

import re

import chartlib as chart

VALERIX_UID = 10001


def test_every_pod_is_non_root_with_seccomp_and_no_token(values_file: str) -> None:
    for doc, spec in chart.workloads(chart.render_all(values_file)):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] > 0, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where


def test_every_container_is_locked_down(values_file: str) -> None:
    for doc, spec in chart.workloads(chart.render_all(values_file)):
        for container in chart.containers(spec):
            where = f"{doc['metadata']['name']}/{container['name']}"
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert sc.get("privileged", False) is False, where
            assert sc.get("runAsUser", 1) != 0, where


def test_valerix_containers_write_only_to_empty_dirs(values_file: str) -> None:
    for doc, spec in chart.workloads(chart.render_all(values_file)):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in chart.containers(spec):
            if not container["image"].startswith("valerix:") and "/valerix:" not in container["image"]:
                continue
            where = f"{doc['metadata']['name']}/{container['name']}"
            assert spec["securityContext"]["runAsUser"] == VALERIX_UID, where
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
            assert "emptyDir" in mounts["/tmp"], where
            multiproc = chart.env_of(container)["PROMETHEUS_MULTIPROC_DIR"]["value"]
            assert "emptyDir" in mounts[multiproc], where


def test_every_container_has_requests_and_limits(values_file: str) -> None:
    for doc, spec in chart.workloads(chart.render_all(values_file)):
        for container in chart.containers(spec):
            resources = container["resources"]
            for part in ("requests", "limits"):
                where = f"{doc['metadata']['name']}/{container['name']}"
                assert {"cpu", "memory"} <= set(resources[part]), where


def test_images_are_pinned(values_file: str) -> None:
    for doc, spec in chart.workloads(chart.render_all(values_file)):
        for container in chart.containers(spec):
            image = container["image"]
            name, _, tag = image.rpartition("@")[0].rpartition(":") if "@" in image else image.rpartition(":")
            assert name and tag, f"{image} has no tag"
            assert tag != "latest" and re.search(r"\d", tag), f"{image} is not pinned to a version"


def test_digest_pins_the_valerix_image() -> None:
    digest = "sha256:" + "ab" * 32
    docs = chart.render("values.yaml", "image.repository=r.example/valerix", "image.tag=1.2.3",
                        f"image.digest={digest}")
    image = chart.one(docs, "Deployment", "order-api")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"r.example/valerix:1.2.3@{digest}"


def test_only_the_chaos_account_may_carry_a_token(values_file: str) -> None:
    accounts = chart.of_kind(chart.render_all(values_file), "ServiceAccount")
    for name, account in accounts.items():
        assert account.get("automountServiceAccountToken") is (name == "chaos"), name
