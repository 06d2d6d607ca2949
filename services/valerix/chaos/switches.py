"""Turning Gremlin and Schrödinger on and off: the values of each mode, written as files in the
local chaos directory or patched into the chart's ConfigMap (the services re-read both live)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valerix.kit.chaos import KEYS

DEFAULT_CONFIGMAP = "valerix-chaos"


def gremlin_values(on: bool, every: int | None, min_ms: int | None, max_ms: int | None,
                   seed: int | None) -> dict[str, str]:
    values = {"GREMLIN_MODE": "true" if on else "false"}
    if on:
        values["GREMLIN_EVERY_N"] = str(every or 0)
        if min_ms is not None:
            values["GREMLIN_MIN_DELAY_MS"] = str(min_ms)
        if max_ms is not None:
            values["GREMLIN_MAX_DELAY_MS"] = str(max_ms)
        if seed is not None:
            values["GREMLIN_SEED"] = str(seed)
    return values


def schrodinger_values(on: bool, probability: float | None, mode: str | None, seed: int | None) -> dict[str, str]:
    values = {"SCHRODINGER_MODE": "true" if on else "false"}
    if on:
        if probability is not None:
            values["SCHRODINGER_CRASH_PROBABILITY"] = str(probability)
        if mode is not None:
            values["SCHRODINGER_FAILURE"] = mode
        if seed is not None:
            values["SCHRODINGER_SEED"] = str(seed)
    return values


OFF_VALUES = {"GREMLIN_MODE": "false", "SCHRODINGER_MODE": "false"}


def configmap_patch(values: dict[str, str]) -> dict[str, Any]:
    """A strategic-merge patch that sets only the given keys of the chaos ConfigMap."""
    unknown = set(values) - set(KEYS)
    if unknown:
        raise ValueError(f"not chaos keys: {sorted(unknown)}")
    return {"data": dict(values)}


def write_local(chaos_dir: Path, values: dict[str, str]) -> None:
    """One file per key, replaced atomically so a reader never sees half a value."""
    chaos_dir.mkdir(parents=True, exist_ok=True)
    for key, value in values.items():
        tmp = chaos_dir / f".{key}.tmp"
        tmp.write_text(value + "\n")
        tmp.replace(chaos_dir / key)


def patch_kubernetes(values: dict[str, str], namespace: str, name: str) -> None:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    client.CoreV1Api().patch_namespaced_config_map(name, namespace, configmap_patch(values))


def read_kubernetes(namespace: str, name: str) -> dict[str, str]:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return dict(client.CoreV1Api().read_namespaced_config_map(name, namespace).data or {})
