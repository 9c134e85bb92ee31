"""Rows for ``gitops get`` and the read API: live pods joined with the last status.

Pure functions of values; the API calls them with a fresh observation of the nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gitops.decide.actions import Pending
from gitops.decide.desired import DesiredState
from gitops.decide.disruption import Blocked
from gitops.decide.endpoints import PortEndpoints
from gitops.decide.health import container_ready, pod_ready
from gitops.decide.ingress import IngressTable, cert_file
from gitops.decide.stateful import claim_name, claim_ordinal
from gitops.decide.status import SyncStatus
from gitops.manifests import ingress as ing
from gitops.manifests import model as m
from gitops.model.applied import Unstarted
from gitops.model.labels import L_POD_LABEL
from gitops.model.live import LiveState, PodInfo, VolumeInfo
from gitops.model.verdicts import Sync

ProbeVerdict = Callable[[str], bool | None]


def pod_phase(pod: PodInfo, restarts: Mapping[str, int], ready: ProbeVerdict) -> str:
    """Kubernetes-style one-word status of a pod."""
    apps = pod.app_containers()
    states = {c.state for c in apps}
    if pod.finished:  # a Job's pod that ended, as kubectl shows it
        return "Completed" if pod.phase == "Succeeded" else "Error"
    if states == {"running"}:
        return "Running" if pod_ready(pod, ready) else "NotReady"
    crashed = [c for c in apps if c.state in ("exited", "dead")]
    if crashed and any(restarts.get(c.id, 0) for c in crashed):
        return "CrashLoopBackOff"
    if "restarting" in states:
        return "Restarting"
    if "created" in states:
        return "ContainerCreating"
    if "exited" in states or "dead" in states:
        failed = [c for c in apps if c.state in ("exited", "dead") and c.exit_code != 0]
        return "Error" if failed else "Completed"
    return next(iter(states), "Unknown").capitalize()


def pod_rows(
    live: LiveState,
    namespace: str | None,
    restarts: Mapping[str, int] | None = None,
    ready: ProbeVerdict = lambda _: None,
    unstarted: Sequence[Unstarted] = (),
    pending: Sequence[Pending] = (),
    blocked: Sequence[Blocked] = (),
    kinds: Mapping[tuple[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """Live pods, then the ones that do not run yet: their image cannot be had (on the node
    it was placed on), or no node can take them (Pending, with the scheduler's reason).
    ``kinds``: each workload's kind, for the pod's ``ownerKind`` (describe's "Controlled By")."""
    kinds = kinds or {}
    restarts = restarts or {}
    held = {(b.namespace, b.pod): b.reason for b in blocked}
    rows: list[dict[str, Any]] = []
    for u in unstarted:
        if not namespace or u.namespace == namespace:
            rows.append(_not_running(u.namespace, u.deployment, u.pod, u.node, u.status,
                                     u.message, u.template_hash, u.commit))  # fmt: skip
    for p in pending:
        if not namespace or p.namespace == namespace:
            for i in range(p.count):
                name = f"{p.deployment}-pending-{i + 1}"
                rows.append(_not_running(p.namespace, p.deployment, name, "", "Pending",
                                         p.reason, "", ""))  # fmt: skip
    for pod in live.pods:
        if namespace and pod.namespace != namespace:
            continue
        apps = pod.app_containers()
        n_ready = sum(1 for c in apps if container_ready(c, ready))
        rows.append(
            {
                "namespace": pod.namespace,
                "name": pod.name,
                "ready": f"{n_ready}/{len(apps)}",
                "status": pod_phase(pod, restarts, ready),
                "restarts": sum(restarts.get(c.id, 0) for c in apps),
                "created": pod.created,
                "node": pod.node,
                "ip": pod.ip,
                "labels": pod.labels(),
                "deployment": pod.deployment,
                "ownerKind": kinds.get((pod.namespace, pod.deployment), ""),
                "templateHash": pod.template_hash,
                "commit": pod.commit,
                "message": held.get((pod.namespace, pod.name), ""),
                "containers": [
                    {
                        "name": c.meta.container or c.name,
                        "id": c.id[:12],
                        "image": c.image,
                        "state": c.state,
                        "status": c.status,
                        "ready": container_ready(c, ready),
                        "restarts": restarts.get(c.id, 0),
                        "exitCode": c.exit_code,
                    }
                    for c in apps
                ],
            }
        )
    return rows


def _not_running(
    namespace: str, deployment: str, name: str, node: str, status: str, message: str,
    template_hash: str, commit: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "namespace": namespace,
        "name": name,
        "ready": "0/0",
        "status": status,
        "restarts": 0,
        "created": 0.0,
        "node": node,
        "ip": "",
        "labels": {},
        "deployment": deployment,
        "templateHash": template_hash,
        "commit": commit,
        "containers": [],
        "message": message,
    }


def deployment_rows(
    status: SyncStatus,
    live: LiveState,
    namespace: str | None,
    kind: str = "Deployment",
    born: Mapping[tuple[str, str], float] | None = None,
) -> list[dict[str, Any]]:
    """Rows of one workload kind: Deployment, ReplicaSet or ReplicationController. ``born``:
    when each workload's first rollout began, its age (else its oldest pod's)."""
    born = born or {}
    rows = []
    for r in status.resources:
        if r.kind != kind or (namespace and r.namespace != namespace):
            continue
        pods = live.of(r.namespace, r.name)
        reps = r.replicas or {}
        rows.append(
            {
                "namespace": r.namespace,
                "name": r.name,
                # kubectl's READY: the ready pods of any template, the ones that serve
                "ready": f"{reps.get('serving', reps.get('ready', 0))}/{reps.get('desired', 0)}",
                "desired": reps.get("desired", 0),
                "current": reps.get("current", 0),
                "upToDate": reps.get("updated", 0),
                "available": reps.get("available", 0),
                "sync": r.sync,
                "health": r.health,
                "message": r.message,
                "images": list(r.images),
                "commits": sorted({p.commit[:12] for p in pods}),
                "nodes": sorted({p.node for p in pods}),
                "created": born.get((r.namespace, r.name))
                or min((p.created for p in pods), default=0.0),
                "replicas": reps,
                "source": r.source,
            }
        )
    return rows


def job_rows(status: SyncStatus, live: LiveState, namespace: str | None) -> list[dict[str, Any]]:
    """Jobs, as ``kubectl get jobs`` shows them (STATUS, COMPLETIONS, DURATION), and their
    counts, times and condition for ``-o json``."""
    rows = []
    for r in status.resources:
        if r.kind != "Job" or (namespace and r.namespace != namespace):
            continue
        reps = r.replicas or {}
        state = r.condition or "Running"
        completions = reps.get("completions", 1)
        pods = live.of(r.namespace, r.name)
        rows.append(
            {
                "namespace": r.namespace,
                "name": r.name,
                "status": state,
                "reason": r.reason,
                "completions": f"{reps.get('succeeded', 0)}/"
                + (str(completions) if completions >= 0 else "1 of ≥1"),
                "active": reps.get("active", 0),
                "succeeded": reps.get("succeeded", 0),
                "failed": reps.get("failed", 0),
                "parallelism": reps.get("parallelism", 1),
                "startTime": reps.get("startTime", 0),
                "completionTime": reps.get("completionTime", 0) or None,
                "finishedTime": reps.get("finishedTime", 0) or None,
                "sync": r.sync,
                "health": r.health,
                "message": r.message,
                "images": list(r.images),
                "pods": sorted(p.name for p in pods),
                "nodes": sorted({p.node for p in pods}),
                "created": reps.get("startTime", 0) or min((p.created for p in pods), default=0.0),
                "source": r.source,
            }
        )
    return rows


def cronjob_rows(
    status: SyncStatus, desired: DesiredState | None, namespace: str | None
) -> list[dict[str, Any]]:
    """CronJobs, as ``kubectl get cronjobs`` shows them (SCHEDULE, TIMEZONE, SUSPEND, ACTIVE,
    LAST SCHEDULE), with the next schedule and the last result."""
    if desired is None:
        return []
    rows = []
    for r in status.resources:
        if r.kind != "CronJob" or (namespace and r.namespace != namespace):
            continue
        dep = desired.deployment(r.namespace, r.name)
        if dep is None or dep.cron is None:
            continue
        reps = r.replicas or {}
        rows.append(
            {
                "namespace": r.namespace,
                "name": r.name,
                "schedule": dep.cron.schedule,
                "timeZone": dep.cron.time_zone or None,
                "suspend": dep.cron.suspend,
                "concurrencyPolicy": dep.cron.concurrency,
                "active": reps.get("active", 0),
                "lastScheduleTime": reps.get("lastScheduleTime") or None,
                "lastSuccessfulTime": reps.get("lastSuccessfulTime") or None,
                "nextScheduleTime": reps.get("nextScheduleTime") or None,
                "lastResult": r.condition or None,
                "lastReason": r.reason or None,
                "health": r.health,
                "message": r.message,
                "images": list(r.images),
                "source": r.source,
            }
        )
    return rows


def budget_rows(
    status: SyncStatus, desired: DesiredState | None, namespace: str | None
) -> list[dict[str, Any]]:
    """PodDisruptionBudgets, as ``kubectl get pdb`` shows them."""
    if desired is None:
        return []
    said = {(r.namespace, r.name): r for r in status.resources if r.kind == "PodDisruptionBudget"}
    rows = []
    for e in desired.manifests.of(m.PodDisruptionBudget):
        if namespace and e.namespace != namespace:
            continue
        r = said.get((e.namespace, e.name))
        spec = e.resource.spec
        rows.append(
            {
                "namespace": e.namespace,
                "name": e.name,
                "minAvailable": spec.min_available,
                "maxUnavailable": spec.max_unavailable,
                "status": (r.replicas or {}) if r else {},
                "health": r.health if r else "",
                "message": r.message if r else "",
                "source": f"{e.path}:{e.doc}",
            }
        )
    return rows


def claim_rows(
    desired: DesiredState | None,
    live: LiveState,
    volumes: Sequence[VolumeInfo],
    namespace: str | None,
) -> list[dict[str, Any]]:
    """PersistentVolumeClaims as ``kubectl get pvc`` shows them, with the node that holds each
    volume and the pods using it: Bound (its volume exists), Pending (made when a pod first
    uses it), Released (git no longer holds the claim; its volume and data stay). A StatefulSet's
    claims are in git through its claim templates, those of ordinals scaled away included (they
    stay Bound, as Kubernetes keeps them)."""
    held = {v.key: v for v in volumes}
    on: dict[ClaimKey, set[str]] = {}  # a shared claim has a volume on each node using it
    for v in volumes:
        on.setdefault(v.key, set()).add(v.node)
    claims = _git_claims(desired, held) if desired else {}
    rows = []
    for key in sorted(claims.keys() | held.keys()):
        if namespace and key[0] != namespace:
            continue
        vol = held.get(key)
        spec, source = claims.get(key, (None, ""))
        rows.append(
            {
                "namespace": key[0],
                "name": key[1],
                "status": "Released" if spec is None else "Bound" if vol else "Pending",
                "volume": vol.name if vol else "",
                "node": ",".join(sorted(on.get(key, ()))),
                "capacity": str(spec.resources.requests.get("storage", "")) if spec else
                (vol.meta.size if vol else ""),
                "accessModes": list(spec.access_modes) if spec else
                list(vol.meta.access_modes if vol else ()),
                "storageClass": (spec.storage_class_name or "local") if spec else
                (vol.meta.storage_class if vol else ""),
                "usedBy": sorted(p.name for p in live.pods
                                 if p.namespace == key[0] and key[1] in p.claims),
                "created": vol.meta.created if vol else 0.0,
                "source": source,
            }
        )  # fmt: skip
    return rows


ClaimKey = tuple[str, str]


def _git_claims(
    desired: DesiredState, held: Mapping[ClaimKey, VolumeInfo]
) -> dict[ClaimKey, tuple[m.PersistentVolumeClaimSpec, str]]:
    """Each claim git holds, with its spec and where it is written: the PersistentVolumeClaims,
    and the claims of each StatefulSet's templates (its ordinals', and those its volumes show)."""
    out = {(e.namespace, e.name): (e.resource.spec, f"{e.path}:{e.doc}")
           for e in desired.manifests.of(m.PersistentVolumeClaim)}  # fmt: skip
    for e in desired.manifests.of(m.StatefulSet):
        spec, source = e.resource.spec, f"{e.path}:{e.doc}"
        ordinals = range(spec.ordinals.start, spec.ordinals.start + spec.replicas)
        for t in spec.volume_claim_templates:
            name = t.metadata.name
            for o in ordinals:
                out[(e.namespace, claim_name(name, e.name, o))] = (t.spec, source)
            for ns, claim in held:
                if ns == e.namespace and claim_ordinal(claim, name, e.name) is not None:
                    out[(ns, claim)] = (t.spec, source)
    return out


def service_rows(
    desired: DesiredState | None,
    live: LiveState,
    namespace: str | None,
    ready: ProbeVerdict = lambda _: None,
) -> list[dict[str, Any]]:
    if desired is None:
        return []
    rows = []
    for entry in desired.manifests.of(m.Service):
        if namespace and entry.namespace != namespace:
            continue
        spec = entry.resource.spec
        selector = spec.selector
        endpoints = [
            p.name
            for p in live.pods
            if p.namespace == entry.namespace
            and selector
            and all(
                c.labels.get(L_POD_LABEL + k) == v
                for k, v in selector.items()
                for c in p.containers[:1]
            )
            and pod_ready(p, ready)
        ]
        ports = [
            f"{p.port}{':' + str(p.node_port) if p.node_port else ''}/{p.protocol}"
            for p in spec.ports
        ]
        rows.append(
            {
                "namespace": entry.namespace,
                "name": entry.name,
                "type": spec.type,
                "ports": ",".join(ports) or "<none>",
                "selector": ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>",
                "endpoints": endpoints,
            }
        )
    return rows


def namespace_rows(status: SyncStatus, desired: DesiredState | None) -> list[dict[str, Any]]:
    if desired is None:
        return []
    declared = {r.name: r for r in status.resources if r.kind == "Namespace"}
    return [
        {
            "name": ns,
            "status": "Active",
            "declared": ns in declared,
            "sync": declared[ns].sync if ns in declared else Sync.SYNCED,
        }
        for ns in desired.namespaces
    ]


def ingress_rows(
    status: SyncStatus,
    desired: DesiredState | None,
    routes: IngressTable,
    listen: tuple[str, int, int],
    namespace: str | None,
) -> list[dict[str, Any]]:
    """Ingresses as ``kubectl get ingress`` shows them (CLASS, HOSTS, ADDRESS, PORTS), with
    each route's backend and ready endpoints and each certificate's expiry."""
    if desired is None:
        return []
    address, http_port, https_port = listen
    health = {(r.namespace, r.name): r for r in status.resources if r.kind == "Ingress"}
    certs = {c.name: c for c in routes.certs}
    pools = {p.name: p for p in routes.pools}
    rows = []
    for e in desired.manifests.of(m.Ingress):
        if namespace and e.namespace != namespace:
            continue
        spec = e.resource.spec
        st = health.get((e.namespace, e.name))
        mine = [r for r in routes.routes if (r.namespace, r.ingress) == (e.namespace, e.name)]
        tls = []
        for t in spec.tls:
            cert = certs.get(cert_file(e.namespace, t.secret_name or ""))
            tls.append({"secretName": t.secret_name, "hosts": list(t.hosts),
                        "notAfter": cert.not_after if cert else None})  # fmt: skip
        hosts = sorted({r.host or "*" for r in spec.rules}) or ["*"]
        rows.append({
            "namespace": e.namespace,
            "name": e.name,
            "class": ing.class_name(e.resource) or "<none>",
            "hosts": hosts,
            "address": address,
            "ports": [http_port, *([https_port] if spec.tls else [])],
            "rules": [
                {"host": r.host or "*", "path": r.path, "pathType": r.match,
                 "service": pools[r.pool].service, "port": pools[r.pool].port,
                 "endpoints": len(pools[r.pool].endpoints)}
                for r in mine
            ],
            "defaultBackend": _backend_name(spec.default_backend),
            "tls": tls,
            "sync": st.sync if st else "",
            "health": st.health if st else "",
            "message": st.message if st else "",
            "source": f"{e.path}:{e.doc}",
        })  # fmt: skip
    return rows


def _backend_name(backend: m.IngressBackend | None) -> str | None:
    if backend is None or backend.service is None:
        return None
    port = backend.service.port
    return f"{backend.service.name}:{port.number if port.number is not None else port.name}"


def endpoint_rows(table: Sequence[PortEndpoints], namespace: str | None) -> list[dict[str, Any]]:
    return [
        {
            "namespace": t.namespace,
            "name": t.service,
            "port": t.port,
            "portName": t.port_name,
            "nodePort": t.node_port,
            "endpoints": [
                {"pod": e.pod, "node": e.node, "ip": e.ip, "port": e.port} for e in t.endpoints
            ],
        }
        for t in table
        if not namespace or t.namespace == namespace
    ]


def config_rows(
    desired: DesiredState | None, kind: str, namespace: str | None
) -> list[dict[str, Any]]:
    """ConfigMaps or Secrets of the applied commit: names and keys. Never a value, not even a
    Secret's (kubectl describe shows sizes only); ConfigMaps get the same shape for one table."""
    if desired is None:
        return []
    cls: type[m.ConfigMap] | type[m.Secret] = m.Secret if kind == "secrets" else m.ConfigMap
    rows = []
    for e in desired.manifests.of(cls):
        if namespace and e.namespace != namespace:
            continue
        r = e.resource
        keys = sorted({*r.data, *getattr(r, "string_data", {}), *getattr(r, "binary_data", {})})
        rows.append(
            {
                "namespace": e.namespace,
                "name": e.name,
                "type": getattr(r, "type", ""),
                "keys": keys,
                "data": len(keys),
                "immutable": r.immutable,
                "source": f"{e.path}:{e.doc}",
            }
        )
    return rows
