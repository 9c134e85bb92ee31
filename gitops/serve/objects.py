"""Kubernetes-shaped objects: what ``gitops get -o json|yaml|jsonpath|custom-columns`` prints
and what ``/k8s/...`` serves, so one serializer serves both and ``jq '.items[].status'``
scripts written for kubectl carry over.

Each object has ``apiVersion``, ``kind``, ``metadata`` (name, namespace, labels, annotations,
``creationTimestamp`` in RFC 3339), ``spec`` (the manifest's own, in Kubernetes' field names;
never a Secret's data) and ``status`` (what the nodes show now, in Kubernetes' field names;
gitops' own verdicts beside them: ``sync``, ``health``, ``message``). Pure functions of the
view rows (``gitops.serve.views``) and the applied commit's manifests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gitops.model.apis import API

if TYPE_CHECKING:
    from gitops.decide.desired import DesiredState

A_COMMIT = "gitops.io/commit"
A_TEMPLATE = "gitops.io/template-hash"
_VERDICT = ("sync", "health", "message")
_GENERIC_SKIP = {"namespace", "name", "created", "source", "labels"}


def rfc3339(when: float) -> str | None:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def manifests_of(
    desired: DesiredState | None, kind: str
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The applied resources of ``kind`` (a plural) as Kubernetes writes them, by (Kind,
    namespace, name); a Secret's values left out (``data`` and ``stringData``). Only that
    kind's are dumped: a large commit holds thousands of others."""
    if desired is None:
        return {}
    wanted = API.get(kind, ("", ""))[1]
    out = {}
    for entry in desired.manifests.entries:
        resource = entry.resource
        dump = getattr(resource, "model_dump", None)
        if dump is None or getattr(resource, "kind", None) != wanted:
            continue
        doc = dump(by_alias=True, exclude_none=True, mode="json")
        if doc.get("kind") == "Secret":
            doc = {k: v for k, v in doc.items() if k not in ("data", "stringData")}
        out[(str(doc.get("kind", "")), entry.namespace, entry.name)] = doc
    return out


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``kubectl get -o json``'s answer: a ``v1`` List of the objects."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": items}  # fmt: skip


def to_object(
    kind: str, row: dict[str, Any], manifests: Mapping[tuple[str, str, str], dict[str, Any]]
) -> dict[str, Any]:
    api, k = API.get(kind, ("v1", kind.rstrip("s").capitalize()))
    ns = row.get("namespace", "")
    doc = manifests.get((k, ns, row["name"]), {})
    meta_doc = doc.get("metadata", {})
    meta: dict[str, Any] = {"name": row["name"], **({"namespace": ns} if ns else {})}
    meta["labels"] = row.get("labels") or meta_doc.get("labels") or {}
    meta["annotations"] = dict(meta_doc.get("annotations") or {})
    created = rfc3339(float(row.get("created") or 0))
    if created:
        meta["creationTimestamp"] = created
    obj: dict[str, Any] = {"apiVersion": api, "kind": k, "metadata": meta}
    if kind == "pods":
        return _pod(obj, row)
    if kind == "nodes":
        return _node(obj, row)
    if "spec" in doc:
        obj["spec"] = doc["spec"]
    for extra in ("data", "type", "subsets"):
        if extra in doc:
            obj[extra] = doc[extra]
    status = _STATUS.get(kind, _generic)(row)
    obj["status"] = status | {k: row[k] for k in _VERDICT if k in row}
    return obj


def _workload(row: dict[str, Any]) -> dict[str, Any]:
    reps = row.get("replicas") or {}
    desired = reps.get("desired", row.get("desired", 0))
    available = row.get("available", 0)
    return {
        "replicas": row.get("current", 0),
        "readyReplicas": reps.get("serving", reps.get("ready", 0)),
        "updatedReadyReplicas": reps.get("ready", 0),
        "updatedReplicas": row.get("upToDate", 0),
        "availableReplicas": available,
        "conditions": [
            {
                "type": "Available",
                "status": str(available >= desired).title(),
                "reason": "MinimumReplicasAvailable"
                if available >= desired
                else "MinimumReplicasUnavailable",
            },
            {
                "type": "Progressing",
                "status": str(row.get("health") != "Degraded").title(),
                "message": row.get("message", ""),
            },
        ],
    }


def _daemonset(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "desiredNumberScheduled": row.get("desired", 0),
        "currentNumberScheduled": row.get("current", 0),
        "numberReady": int(str(row.get("ready", "0")).partition("/")[0] or 0),
        "updatedNumberScheduled": row.get("upToDate", 0),
        "numberAvailable": row.get("available", 0),
    }


def _job(row: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "active": row.get("active", 0), "succeeded": row.get("succeeded", 0),
        "failed": row.get("failed", 0),
    }  # fmt: skip
    if row.get("startTime"):
        status["startTime"] = rfc3339(row["startTime"])
    if row.get("completionTime"):
        status["completionTime"] = rfc3339(row["completionTime"])
    if row.get("status") in ("Complete", "Failed"):
        status["conditions"] = [{"type": row["status"], "status": "True",
                                 "reason": row.get("reason") or ""}]  # fmt: skip
    return status


def _generic(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _GENERIC_SKIP and k not in _VERDICT}


def _autoscaler(row: dict[str, Any]) -> dict[str, Any]:
    """``autoscaling/v2`` HorizontalPodAutoscalerStatus."""
    current = []
    for m in row.get("metrics", []):
        if m["value"] is None or m["type"] not in ("Resource", "ContainerResource"):
            continue
        value = ({"averageUtilization": int(m["value"])} if m["targetType"] == "Utilization"
                 else {"averageValue": m["current"]})  # fmt: skip
        field = "resource" if m["type"] == "Resource" else "containerResource"
        current.append({"type": m["type"], field: {"name": m["name"], "current": value}})
    out: dict[str, Any] = {"currentReplicas": row["replicas"], "desiredReplicas": row["desired"],
                           "currentMetrics": current, "conditions": row["conditions"]}  # fmt: skip
    if row.get("lastScaleTime"):
        out["lastScaleTime"] = rfc3339(row["lastScaleTime"])
    return out


_STATUS = {
    "deployments": _workload, "statefulsets": _workload, "replicasets": _workload,
    "replicationcontrollers": _workload, "daemonsets": _daemonset, "jobs": _job,
    "horizontalpodautoscalers": _autoscaler,
}  # fmt: skip
_PHASE = {"Running": "Running", "NotReady": "Running", "CrashLoopBackOff": "Running",
          "Restarting": "Running", "Completed": "Succeeded", "Error": "Failed"}  # fmt: skip


def _pod(obj: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    meta["annotations"] |= {A_COMMIT: row.get("commit", ""),
                            A_TEMPLATE: row.get("templateHash", "")}  # fmt: skip
    if row.get("deployment"):
        owner = row.get("ownerKind") or "Deployment"
        meta["ownerReferences"] = [{"apiVersion": API.get(owner.lower() + "s", ("apps/v1",))[0],
                                    "kind": owner, "name": row["deployment"],
                                    "controller": True}]  # fmt: skip
    containers = row.get("containers", [])
    specs = [{"name": c["name"], "image": c["image"]} for c in containers]
    obj["spec"] = {"nodeName": row.get("node", ""), "containers": specs}
    statuses = [_container_status(c) for c in containers]
    ready = bool(containers) and all(c.get("ready") for c in containers)
    status: dict[str, Any] = {
        "phase": _PHASE.get(row.get("status", ""), "Pending"),
        "conditions": [
            {"type": "PodScheduled", "status": str(bool(row.get("node"))).title()},
            {"type": "Ready", "status": str(ready).title()},
            {"type": "ContainersReady", "status": str(ready).title()},
        ],
        "containerStatuses": statuses,
    }
    if row.get("ip"):
        status["podIP"] = row["ip"]
        status["podIPs"] = [{"ip": row["ip"]}]
    if row.get("created"):
        status["startTime"] = rfc3339(row["created"])
    if row.get("status") not in _PHASE and row.get("status"):
        status["reason"] = row["status"]
    if row.get("message"):
        status["message"] = row["message"]
    obj["status"] = status
    return obj


def _container_status(c: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any]
    if c.get("state") == "running":
        state = {"running": {}}
    elif c.get("state") in ("exited", "dead"):
        code = c.get("exitCode")
        state = {"terminated": {"exitCode": code if code is not None else -1,
                                "reason": "Completed" if code == 0 else "Error"}}  # fmt: skip
    else:
        state = {"waiting": {"reason": "ContainerCreating" if c.get("state") == "created"
                             else str(c.get("status") or c.get("state") or "")}}  # fmt: skip
    return {
        "name": c["name"], "image": c["image"], "containerID": f"docker://{c.get('id', '')}",
        "ready": bool(c.get("ready")), "restartCount": int(c.get("restarts") or 0),
        "started": c.get("state") == "running", "state": state,
    }  # fmt: skip


def _node(obj: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    state = str(row.get("status", ""))
    cpu, memory = row.get("cpu_millis"), row.get("memory")
    alloc = {**({"cpu": f"{cpu}m"} if cpu else {}), **({"memory": str(memory)} if memory else {})}
    obj["spec"] = {"unschedulable": "SchedulingDisabled" in state}
    obj["status"] = {
        "conditions": [{"type": "Ready", "status": str(state.startswith("Ready")).title(),
                        "message": row.get("message", "")}],
        "addresses": [{"type": "InternalIP", "address": row.get("address", "")}],
        "allocatable": alloc, "capacity": alloc,
        "nodeInfo": {"containerRuntimeVersion": f"docker://{row.get('version', '')}"},
    }  # fmt: skip
    return obj
