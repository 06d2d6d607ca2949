"""A kubelet in miniature: runs the pods of rendered chart manifests as podman containers.

Kept exactly as rendered: command and args; env (value, secretKeyRef, configMapKeyRef and
$(VAR) expansion); runAsUser/runAsGroup/fsGroup, runAsNonRoot, readOnlyRootFilesystem,
dropped capabilities and no privilege escalation; ConfigMap and Secret volumes as files in the
kubelet's layout (a `..data` symlink, so an update is an atomic symlink swap); emptyDirs as
per-pod directories on tmpfs; one PVC per StatefulSet replica as a podman volume; init containers in order before
the main one; resource limits; Services as DNS aliases on one internal podman network, so the
rendered URLs work unchanged. Probes run as the kubelet runs them: HTTP and gRPC from the host
to the container's address, exec inside the container.

Not emulated (needs a real cluster): NetworkPolicies, Service port remapping (refused below),
HPAs and PDBs, rolling updates, scheduling and node failures.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

Doc = dict[str, Any]
PODMAN = shutil.which("podman")
LABEL = "io.valerix.test"
# How often a failing init container is run, 1, 2, 4 ... s apart (the kubelet's back-off, shortened).
INIT_RUNS = 4
# Each module of tests/containers: the image build alone may take minutes on a fresh machine.
MARKS = [pytest.mark.containers, pytest.mark.timeout(1500),
         pytest.mark.skipif(PODMAN is None, reason="podman is not installed (scripts/ci-deps installs podman, "
                                                   "buildah and runc)")]


class PodmanError(RuntimeError):
    pass


def podman(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    assert PODMAN, "podman is not installed"
    result = subprocess.run([PODMAN, "--runtime", "runc", *args], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])} ... failed ({result.returncode}):\n"
                          f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


_SIZE = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}


def quantity_bytes(text: str) -> int:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text)).groups()  # type: ignore[union-attr]
    return int(float(number) * _SIZE.get(unit, 1))


def quantity_cpus(text: str) -> float:
    text = str(text)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ escapes, others stay."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def write_atomically(directory: Path, data: dict[str, str], modes: int = 0o644) -> None:
    """Writes a ConfigMap/Secret volume the way the kubelet's AtomicWriter does: the files in a
    timestamped directory, `..data` pointing at it (replaced by a rename), and one symlink per
    key through `..data`."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    stamp.mkdir()
    for key, value in data.items():
        (stamp / key).write_text(value)
        (stamp / key).chmod(modes)
    stamp.chmod(0o755)
    old = (directory / "..data").resolve() if (directory / "..data").is_symlink() else None
    tmp = directory / "..data_tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(stamp.name)
    tmp.rename(directory / "..data")
    for key in data:
        link = directory / key
        if not link.is_symlink():
            link.symlink_to(f"..data/{key}")
    for stale in directory.iterdir():
        if stale.is_symlink() and not stale.name.startswith("..") and stale.name not in data:
            stale.unlink()
    if old is not None and old.exists():
        shutil.rmtree(old)


@dataclass
class Pod:
    """One replica of a workload: its main container (and its init containers, already run)."""

    workload: Doc
    ordinal: int
    name: str
    container: str
    spec: Doc
    ip: str = ""
    init_logs: list[str] = field(default_factory=list)

    @property
    def main(self) -> Doc:
        return self.spec["containers"][0]

    def port(self, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in self.main.get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
        raise KeyError(f"{self.name} has no port named {port}")


class Cluster:
    def __init__(self, docs: list[Doc], session: str, workdir: Path, replicas: int | None = None) -> None:
        self.docs = docs
        self.session = session
        self.network = f"{session}-net"
        self.workdir = workdir
        self.replicas = replicas
        self.secrets = {d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
                        for d in docs if d["kind"] == "Secret"}
        for d in docs:
            if d["kind"] == "Secret":
                self.secrets[d["metadata"]["name"]].update(d.get("stringData", {}))
        self.configmaps = {d["metadata"]["name"]: dict(d.get("data", {})) for d in docs if d["kind"] == "ConfigMap"}
        self.services = [d for d in docs if d["kind"] == "Service"]
        self.pods: dict[str, list[Pod]] = {}
        shm = Path("/dev/shm")
        self.scratch = (shm if shm.is_dir() else workdir) / f"{session}-emptydir"

    # ---- lifecycle -------------------------------------------------------------------------
    def create_network(self) -> None:
        podman("network", "create", "--internal", "--label", f"{LABEL}={self.session}", self.network)

    def workloads(self, *kinds: str) -> list[Doc]:
        return [d for d in self.docs if d["kind"] in kinds]

    def start(self, workloads: Iterable[Doc]) -> None:
        """Starts every replica of every workload at once, as a fresh install does."""
        plan = [(w, i) for w in workloads for i in range(int(w["spec"].get("replicas", 1)))]
        with ThreadPoolExecutor(max_workers=len(plan)) as pool:
            pods = list(pool.map(lambda item: self.start_pod(*item), plan))
        for pod in pods:
            self.pods.setdefault(pod.workload["metadata"]["name"], []).append(pod)

    def start_pod(self, workload: Doc, ordinal: int) -> Pod:
        wname = workload["metadata"]["name"]
        spec = workload["spec"]["template"]["spec"]
        name = f"{wname}-{ordinal}"
        pod = Pod(workload, ordinal, name, f"{self.session}-{name}", spec)
        for init in spec.get("initContainers", []):
            self._run_init(pod, init)
        podman("run", "-d", "--name", pod.container, *self.run_args(pod, pod.main))
        pod.ip = self.ip_of(pod.container)
        return pod

    def _run_init(self, pod: Pod, init: Doc) -> None:
        """Runs an init container to completion. Like the kubelet (a Deployment's pods restart
        on failure), a failed one is run again after a back-off, a few times: a fresh podman
        network's DNS may not answer the first lookup yet, as a new cluster's may not."""
        cname = f"{pod.container}-init-{init['name']}"
        for attempt in range(1, INIT_RUNS + 1):
            result = podman("run", "--name", cname, *self.run_args(pod, init), timeout=300, check=False)
            pod.init_logs.append(result.stdout + result.stderr)
            podman("rm", "-f", cname, check=False)
            if result.returncode == 0:
                return
            if attempt < INIT_RUNS:
                time.sleep(2 ** (attempt - 1))
        raise PodmanError(f"init container {init['name']} of {pod.name} exited {result.returncode} "
                          f"{INIT_RUNS} times:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")

    def run_job(self, job: Doc, timeout: float) -> subprocess.CompletedProcess[str]:
        """Runs a Job's pod to completion (restartPolicy: Never, backoffLimit 0)."""
        spec = job["spec"]["template"]["spec"]
        pod = Pod(job, 0, f"{job['metadata']['name']}-0", f"{self.session}-{job['metadata']['name']}", spec)
        try:
            return podman("run", "--name", pod.container, *self.run_args(pod, pod.main), check=False, timeout=timeout)
        finally:
            podman("rm", "-f", pod.container, check=False)

    def cleanup(self) -> None:
        """Removes every container, volume and the network of this session; keeps their logs
        in workdir/logs for a failed run."""
        ids = podman("ps", "-aq", "--filter", f"label={LABEL}={self.session}", check=False).stdout.split()
        (self.workdir / "logs").mkdir(exist_ok=True)
        for pod in self.all_pods():
            (self.workdir / "logs" / f"{pod.name}.log").write_text(self.logs(pod, 100_000))
        if ids:
            podman("rm", "-f", "-t", "0", *ids, check=False)
        vols = podman("volume", "ls", "-q", "--filter", f"label={LABEL}={self.session}", check=False).stdout.split()
        if vols:
            podman("volume", "rm", "-f", *vols, check=False)
        podman("network", "rm", "-f", self.network, check=False)
        shutil.rmtree(self.scratch, ignore_errors=True)

    # ---- the pod spec as podman arguments -----------------------------------------------------
    def env_of(self, container: Doc) -> dict[str, str]:
        env: dict[str, str] = {}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), env)
            elif "secretKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self.secrets[ref["name"]][ref["key"]]
            elif "configMapKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["configMapKeyRef"]
                env[item["name"]] = self.configmaps[ref["name"]][ref["key"]]
            else:
                raise NotImplementedError(f"env source {item}")
        return env

    def aliases(self, workload: Doc) -> list[str]:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        ports = {int(p["containerPort"]): p.get("name") for c in workload["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        names = []
        for svc in self.services:
            selector = svc["spec"].get("selector") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                for p in svc["spec"]["ports"]:
                    target = p.get("targetPort", p["port"])
                    number = target if isinstance(target, int) else next(n for n, nm in ports.items() if nm == target)
                    if int(p["port"]) != number:
                        raise NotImplementedError(f"Service {svc['metadata']['name']} remaps {p['port']} -> {number}")
                names.append(svc["metadata"]["name"])
        return names

    def volume_dir(self, kind: str, name: str, mode: int) -> Path:
        directory = self.workdir / kind / name
        if not directory.exists():
            source = self.configmaps[name] if kind == "configmap" else self.secrets[name]
            write_atomically(directory, source, mode)
        return directory

    def empty_dir(self, pod: Pod, name: str) -> Path:
        """An emptyDir lives as long as its pod: shared with the init containers and kept across
        container restarts, mode 0777 as the kubelet makes it. On tmpfs (/dev/shm) when there is
        one. (A podman tmpfs mount would not do: podman 4.3 drops its mode on restart.)"""
        directory = self.scratch / pod.name / name
        if not directory.exists():
            directory.mkdir(parents=True)
            directory.chmod(0o777)
        return directory

    def update_configmap(self, name: str, data: dict[str, str], *, replace: bool = False) -> None:
        """`kubectl patch configmap` (or `kubectl replace` with ``replace``: keys not in ``data``
        go), then the kubelet's refresh: an atomic swap of `..data`."""
        if replace:
            self.configmaps[name].clear()
        self.configmaps[name].update(data)
        write_atomically(self.workdir / "configmap" / name, self.configmaps[name])

    def mounts(self, pod: Pod, container: Doc) -> list[str]:
        volumes = {v["name"]: v for v in pod.spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in pod.workload["spec"].get("volumeClaimTemplates", [])}
        args: list[str] = []
        for mount in container.get("volumeMounts", []):
            path = mount["mountPath"]
            assert "subPath" not in mount, "subPath mounts are not emulated"
            if mount["name"] in claims:
                volume = f"{self.session}-{mount['name']}-{pod.name}"
                if podman("volume", "exists", volume, check=False).returncode != 0:
                    podman("volume", "create", "--label", f"{LABEL}={self.session}", volume)
                args += ["-v", f"{volume}:{path}:U"]
                continue
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                args += ["-v", f"{self.empty_dir(pod, mount['name'])}:{path}"]
            elif "configMap" in volume:
                cm = volume["configMap"]
                args += ["-v", f"{self.volume_dir('configmap', cm['name'], cm.get('defaultMode', 0o644))}:{path}:ro"]
            elif "secret" in volume:
                sec = volume["secret"]
                args += ["-v", f"{self.volume_dir('secret', sec['secretName'], sec.get('defaultMode', 0o644))}:{path}:ro"]
            else:
                raise NotImplementedError(f"volume {volume}")
        return args

    def security(self, pod: Pod, container: Doc) -> list[str]:
        psc, csc = pod.spec.get("securityContext", {}), container.get("securityContext", {})
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup", uid))
        args: list[str] = []
        if uid is not None:
            args += ["--user", f"{uid}:{gid}"]
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            assert uid not in (0, None), f"{pod.name}: runAsNonRoot needs a numeric non-zero runAsUser"
        if "fsGroup" in psc:
            args += ["--group-add", str(psc["fsGroup"])]
        if csc.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        for cap in csc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", cap]
        for cap in csc.get("capabilities", {}).get("add", []):
            args += ["--cap-add", cap]
        if csc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        assert not csc.get("privileged"), f"{pod.name}: privileged containers are refused"
        return args

    def run_args(self, pod: Pod, container: Doc) -> list[str]:
        args = ["--label", f"{LABEL}={self.session}", "--pull", "never", "--network", self.network,
                "--hostname", pod.name]
        for alias in self.aliases(pod.workload) if container is pod.main else []:
            args += ["--network-alias", alias]
        args += self.security(pod, container) + self.mounts(pod, container)
        limits = container.get("resources", {}).get("limits", {})
        if "memory" in limits:
            args += ["--memory", str(quantity_bytes(limits["memory"]))]
        if "cpu" in limits:
            args += ["--cpus", str(quantity_cpus(limits["cpu"]))]
        for key, value in self.env_of(container).items():
            args += ["--env", f"{key}={value}"]
        if "command" in container:
            args += ["--entrypoint", json.dumps(container["command"])]
        args.append(container["image"])
        args += [str(a) for a in container.get("args", [])]
        return args

    # ---- observation -------------------------------------------------------------------------
    def ip_of(self, container: str) -> str:
        fmt = f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}'
        return podman("inspect", "--format", fmt, container).stdout.strip()

    def inspect(self, container: str) -> Doc:
        return json.loads(podman("inspect", container).stdout)[0]

    def logs(self, pod: Pod, tail: int = 200) -> str:
        result = podman("logs", "--tail", str(tail), pod.container, check=False)
        return result.stdout + result.stderr

    def exec(self, pod: Pod, *command: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", pod.container, *command, check=False, timeout=60)

    def state(self, pod: Pod) -> str:
        return podman("inspect", "--format", "{{.State.Status}}", pod.container).stdout.strip()

    def probe(self, pod: Pod, kind: str) -> tuple[bool, str]:
        spec = pod.main.get(kind)
        if spec is None:
            return True, "no probe"
        timeout = float(spec.get("timeoutSeconds", 1))
        try:
            if "httpGet" in spec:
                get = spec["httpGet"]
                url = f"http://{pod.ip}:{pod.port(get['port'])}{get.get('path', '/')}"
                response = httpx.get(url, timeout=timeout)
                return 200 <= response.status_code < 400, f"GET {url} -> {response.status_code}"
            if "grpc" in spec:
                target = f"{pod.ip}:{pod.port(spec['grpc']['port'])}"
                with grpc.insecure_channel(target) as channel:
                    answer = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=spec["grpc"].get("service", "")), timeout=timeout)
                return answer.status == health_pb2.HealthCheckResponse.SERVING, f"grpc {target} -> {answer.status}"
            if "exec" in spec:
                result = podman("exec", pod.container, *spec["exec"]["command"], check=False,
                                timeout=timeout + 5)
                return result.returncode == 0, f"exec -> {result.returncode} {result.stderr[-200:]}"
        except (httpx.HTTPError, grpc.RpcError) as error:
            return False, f"{kind}: {error!r}"[:300]
        raise NotImplementedError(f"probe {spec}")

    def wait_probe(self, pod: Pod, kind: str, deadline_s: float | None = None) -> str:
        """Polls one probe until it passes, within the time the kubelet would allow."""
        spec = pod.main.get(kind) or {}
        allowed = deadline_s or (spec.get("initialDelaySeconds", 0)
                                 + spec.get("periodSeconds", 10) * spec.get("failureThreshold", 3))
        end = time.monotonic() + allowed
        while True:
            ok, detail = self.probe(pod, kind)
            if ok:
                return detail
            if time.monotonic() > end:
                raise AssertionError(f"{pod.name}: {kind} still failing after {allowed:.0f} s: {detail}\n"
                                     f"{self.logs(pod, 40)}")
            time.sleep(0.5)

    def all_pods(self) -> list[Pod]:
        return [p for pods in self.pods.values() for p in pods]

    # ---- faults ------------------------------------------------------------------------------
    def kill9(self, pod: Pod) -> None:
        pid = podman("inspect", "--format", "{{.State.Pid}}", pod.container).stdout.strip()
        subprocess.run(["kill", "-9", pid], check=True)
        end = time.monotonic() + 30
        while self.state(pod) == "running":
            assert time.monotonic() < end, f"{pod.name} survived kill -9"
            time.sleep(0.2)

    def restart(self, pod: Pod) -> None:
        """restartPolicy: Always — the same container (same volumes) started again."""
        podman("start", pod.container)
        pod.ip = self.ip_of(pod.container)
