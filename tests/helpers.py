"""Manifest builders shared by the tests (plain data, no I/O)."""

from __future__ import annotations

from typing import Any

import yaml


def deployment(
    name: str = "web",
    namespace: str = "demo",
    image: str = "reg/web:v1",
    replicas: int = 3,
    **extra: Any,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": image}
    container.update(extra.pop("container", {}))
    pod_spec: dict[str, Any] = {"containers": [container]}
    pod_spec.update(extra.pop("pod", {}))
    doc: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, **extra.pop("metadata", {})},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
            **extra,
        },
    }
    return doc


def config_map(name: str, namespace: str = "demo", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def secret(name: str, namespace: str = "demo", **string_data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": string_data,
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def dump(*docs: dict[str, Any]) -> bytes:
    return yaml.safe_dump_all(docs, sort_keys=False).encode()


def job(
    name: str = "migrate",
    namespace: str = "demo",
    image: str = "reg/api:v1",
    hook: str = "",
    command: list[str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Job of one container (restartPolicy Never); ``hook``: PreSync or PostSync."""
    container: dict[str, Any] = {"name": "task", "image": image}
    if command is not None:
        container["command"] = command
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    annotations = dict(spec.pop("annotations", {}))
    if hook:
        annotations["gitops.io/hook"] = hook
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            **spec,
        },
    }
