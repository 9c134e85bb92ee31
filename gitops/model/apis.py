"""Where each kind ``gitops get`` knows lives in the Kubernetes API: its group/version and
Kind, by the plural a path uses. Shared by the API's ``/k8s`` routes and the CLI."""

from __future__ import annotations

API: dict[str, tuple[str, str]] = {
    "pods": ("v1", "Pod"),
    "deployments": ("apps/v1", "Deployment"),
    "statefulsets": ("apps/v1", "StatefulSet"),
    "daemonsets": ("apps/v1", "DaemonSet"),
    "replicasets": ("apps/v1", "ReplicaSet"),
    "replicationcontrollers": ("v1", "ReplicationController"),
    "jobs": ("batch/v1", "Job"),
    "cronjobs": ("batch/v1", "CronJob"),
    "services": ("v1", "Service"),
    "endpoints": ("v1", "Endpoints"),
    "namespaces": ("v1", "Namespace"),
    "nodes": ("v1", "Node"),
    "configmaps": ("v1", "ConfigMap"),
    "secrets": ("v1", "Secret"),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim"),
    "poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget"),
    "ingresses": ("networking.k8s.io/v1", "Ingress"),
    "horizontalpodautoscalers": ("autoscaling/v2", "HorizontalPodAutoscaler"),
}


def path(plural: str, namespace: str | None = None, name: str = "") -> str:
    """The Kubernetes API path of a kind (``/api/v1/namespaces/NS/pods/NAME``)."""
    group = API[plural][0]
    base = "/api/v1" if group == "v1" else f"/apis/{group}"
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{where}/{plural}" + (f"/{name}" if name else "")
