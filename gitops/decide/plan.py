"""Plan stage: desired vs live -> an immutable ``Plan`` in buckets. Deciding only, no doing.

Pure. In: ``DesiredState``, ``LiveState``, the node names and a pod-name source (injected, so
tests are deterministic). Out: ``Plan`` with ``create``, ``restart``, ``remove`` and ``keep``
buckets plus network changes. ``gitops diff`` and ``--dry-run`` print it; ``gitops.act.apply``
carries it out.

Each workload kind has its planner under ``gitops.decide.workloads`` (Deployment: how many
pods of a changed template to create and which old ones to remove in one pass, by
maxSurge, maxUnavailable, minReadySeconds or Recreate; ReplicaSet and ReplicationController:
a fixed set, healed and scaled, never rolled); this module gathers their parts, prunes
what git no longer holds and adds the namespaces' networks. A pass that changed something asks
for a quick follow-up pass, so a rollout proceeds as pods become ready.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from gitops.decide import quota
from gitops.decide.actions import (
    Create,
    NameProxy,
    NameSource,
    Pending,
    Remove,
    Restart,
    RestartPolicy,
    Why,
    random_suffix,
)
from gitops.decide.batch import CronTimes
from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.disruption import Blocked, admit, budgets
from gitops.decide.health import PodReadiness
from gitops.decide.schedule import NodeView, Scheduler
from gitops.decide.workloads import cronjob, daemonset, deployment, job, replicaset, statefulset
from gitops.decide.workloads.base import Context, Planner
from gitops.manifests.model import Service
from gitops.model.labels import JobRecord
from gitops.model.live import LiveState, PodInfo, VolumeInfo

# One planner a workload kind (``gitops.decide.workloads``).
PLANNERS: Mapping[str, Planner[DesiredDeployment]] = {
    "Deployment": deployment.plan,
    "ReplicaSet": replicaset.plan,
    "ReplicationController": replicaset.plan,
    "StatefulSet": statefulset.plan,
    "DaemonSet": daemonset.plan,
    "Job": job.plan,
    "CronJob": cronjob.plan,
}


@dataclass(frozen=True)
class Plan:
    commit: str
    create: tuple[Create, ...] = ()
    restart: tuple[Restart, ...] = ()
    remove: tuple[Remove, ...] = ()
    keep: tuple[PodInfo, ...] = ()
    networks_create: tuple[tuple[str, str], ...] = ()  # (node, namespace)
    networks_remove: tuple[tuple[str, str], ...] = ()
    waiting: tuple[tuple[str, str], ...] = field(default=())  # deployments mid-replacement
    wake_at: float | None = None  # earliest time a backed-off restart becomes due
    pending: tuple[Pending, ...] = ()
    names_create: tuple[NameProxy, ...] = ()  # Services' name proxies (re)made on a node
    names_remove: tuple[NameProxy, ...] = ()
    blocked: tuple[Blocked, ...] = ()  # a drain's removals a PodDisruptionBudget holds back
    volumes_remove: tuple[VolumeInfo, ...] = ()  # a StatefulSet's retention policy: Delete
    wanted: tuple[tuple[str, str, int], ...] = ()  # a DaemonSet's replicas: the nodes it is on
    records_write: tuple[JobRecord, ...] = ()  # Jobs that ended: remembered on every node
    records_remove: tuple[JobRecord, ...] = ()  # of Jobs git no longer holds, or changed
    # Workloads whose new pods need no slow start (``gitops.act.apply``, which guards against a
    # template whose containers cannot start): Jobs, whose parallelism bounds them already.
    unthrottled: tuple[tuple[str, str], ...] = ()

    def replicas_of(self, dep: DesiredDeployment) -> int:
        """The replicas a workload wants: its spec's, or what planning counted (DaemonSet)."""
        return next((n for ns, name, n in self.wanted if (ns, name) == dep.key), dep.replicas)

    def pending_for(self, namespace: str, deployment: str) -> Pending | None:
        return next(
            (p for p in self.pending if (p.namespace, p.deployment) == (namespace, deployment)),
            None,
        )

    @property
    def empty(self) -> bool:
        return not (
            self.volumes_remove
            or self.records_write
            or self.records_remove
            or self.create
            or self.restart
            or self.remove
            or self.networks_create
            or self.networks_remove
            or self.names_create
            or self.names_remove
        )

    def gate(self, action: Create | Restart | Remove) -> tuple[str, str] | None:
        """The deployment whose images must be had for ``action`` to go ahead: a pod of a
        deployment whose image cannot be pulled is not touched (old pods keep serving), but
        pruning what git deleted needs no image."""
        if isinstance(action, Create):
            return action.template.namespace, action.template.deployment
        if isinstance(action, Remove) and action.why == Why.PRUNED:
            return None
        return action.pod.namespace, action.pod.deployment

    def touches(self, namespace: str, deployment: str) -> bool:
        key = (namespace, deployment)
        return (
            any((c.template.namespace, c.template.deployment) == key for c in self.create)
            or any((r.pod.namespace, r.pod.deployment) == key for r in self.remove)
            or any((r.pod.namespace, r.pod.deployment) == key for r in self.restart)
            or key in self.waiting
        )

    def describe(self) -> list[str]:
        """One line per change, grouped by deployment; what ``gitops diff`` prints."""
        lines = [f"+ network {ns} on {node}" for node, ns in self.networks_create]
        for c in self.create:
            images = ",".join(x.image for x in c.template.containers)
            lines.append(
                f"+ pod {c.template.namespace}/{c.pod} on {c.node} ({c.why}; "
                f"template {c.template.template_hash}; {images})"
            )
        for r in self.restart:
            lines.append(f"~ pod {r.pod.namespace}/{r.pod.name} on {r.pod.node} (restart: {r.why})")
        for rm in self.remove:
            images = ",".join(x.image for x in rm.pod.app_containers())
            lines.append(
                f"- pod {rm.pod.namespace}/{rm.pod.name} on {rm.pod.node} ({rm.why}; "
                f"template {rm.pod.template_hash}; {images})"
            )
        for n in self.names_create:
            ports = ",".join(map(str, n.ports))
            lines.append(f"+ service name {n.namespace}/{n.service} on {n.node} (ports {ports})")
        lines += [
            f"- service name {n.namespace}/{n.service} on {n.node}" for n in self.names_remove
        ]
        lines += [f"- network {ns} on {node}" for node, ns in self.networks_remove]
        lines += [
            f"+ job record {r.namespace}/{r.job} on {r.node} ({r.result}: {r.reason}; template "
            f"{r.template_hash})"
            for r in self.records_write
        ]
        lines += [
            f"- job record {r.namespace}/{r.job} on {r.node} (template {r.template_hash})"
            for r in self.records_remove
        ]
        lines += [
            f"! {p.count} pod(s) of {p.namespace}/{p.deployment} pending: {p.reason}"
            for p in self.pending
        ]
        return lines


def default_readiness(live: LiveState) -> dict[str, PodReadiness]:
    """Readiness from the engine alone (running, and HEALTHCHECK healthy where there is one)."""
    return {p.name: PodReadiness(p.healthy, p.created) for p in live.pods}


def make_plan(
    desired: DesiredState,
    live: LiveState,
    nodes: Sequence[str | NodeView],
    names: NameSource | None = None,
    readiness: Mapping[str, PodReadiness] | None = None,
    now: float = math.inf,  # no clock: minReadySeconds counts as served
    restarts: RestartPolicy | None = None,
    evicted: Collection[str] = (),
    cron: Mapping[tuple[str, str], CronTimes] | None = None,
) -> Plan:
    """``nodes``: names, or what the scheduler knows of each (readiness, cordon, drain,
    capacity, labels). ``evicted``: pods of a node that was lost and evicted; they are replaced,
    and removed when their node answers again. The claims' volumes are ``live``'s (a node that
    does not answer is said to hold what it held when it last did)."""
    views = {v.name: v for v in (NodeView(n) if isinstance(n, str) else n for n in nodes)}
    ready = sorted(n for n, v in views.items() if v.ready)
    stale = [p for p in live.pods if p.name in evicted]
    pods = [p for p in live.pods if p.name not in evicted]
    # A Job's finished pods hold nothing of their node (resources, host ports).
    holding = [p for p in pods if not p.finished]
    # A shared claim's volumes (one a node) tie no pod to a node: only the others are bound.
    bound = {v.key: v.node for v in live.volumes if not v.meta.shared}
    ctx = Context(
        nodes=views,
        scheduler=Scheduler(list(views.values()), holding, bound, live.unreachable),
        names=names or random_suffix(),
        taken={p.name for p in live.pods},
        readiness=default_readiness(live) if readiness is None else readiness,
        now=now,
        restarts=restarts or RestartPolicy(),
        volumes=bound,
        records={(r.namespace, r.job, r.template_hash): r for r in live.records},
        cron=cron or {},
    )
    create: list[Create] = []
    restart: list[Restart] = []
    # Back from the dead: removed before anything else, never counted.
    remove: list[Remove] = [Remove(p, Why.EVICTED) for p in stale if views[p.node].ready]
    keep: list[PodInfo] = []
    waiting: list[tuple[str, str]] = []
    pending: list[Pending] = []
    by_key: dict[tuple[str, str], list[PodInfo]] = {}
    for p in pods:
        by_key.setdefault((p.namespace, p.deployment), []).append(p)
    volumes: dict[tuple[str, str], VolumeInfo] = {v.key: v for v in live.volumes}
    drop: list[VolumeInfo] = []
    counted: list[tuple[str, str, int]] = []
    records: list[JobRecord] = []
    forget: list[JobRecord] = []
    wakes: list[float] = []
    for dep in desired.deployments:
        part = PLANNERS[dep.kind](dep, by_key.get(dep.key, []), ctx)
        drop += [
            volumes[(dep.namespace, c)] for c in part.drop_claims if (dep.namespace, c) in volumes
        ]
        create += part.create
        restart += part.restart
        remove += part.remove
        keep += part.keep
        if part.waiting:
            waiting.append(dep.key)
        if part.pending is not None:
            pending.append(part.pending)
        if part.wanted is not None:
            counted.append((dep.namespace, dep.name, part.wanted))
        records += part.records
        forget += part.forget
        if part.wake_at is not None:
            wakes.append(part.wake_at)
    remove, held, blocked = _budgeted(remove, desired, pods, ctx)
    # The namespaces' quotas admit the new pods; a pod removed now frees its share.
    leaving = {r.pod.name for r in remove}
    create, over = quota.admit(create, [p for p in pods if p.name not in leaving],
                               desired.templates, quota.quotas_of(desired))  # fmt: skip
    pending += over
    waiting += [(p.namespace, p.deployment) for p in over
                if (p.namespace, p.deployment) not in waiting]  # fmt: skip
    blocked += _pinned(pods, ctx)
    keep += held
    waiting += sorted({(b.namespace, b.deployment) for b in blocked} - set(waiting))
    wanted = {d.key for d in desired.deployments}
    # A deleted StatefulSet's claims go with it only where whenDeleted said Delete (their
    # volumes carry that), and only once its pods are gone.
    drop += [v for v in live.volumes if v.meta.owner and (v.meta.namespace, v.meta.owner)
             not in wanted and (v.meta.namespace, v.meta.owner) not in by_key
             and v.node not in live.unreachable]  # fmt: skip
    for key in sorted(by_key.keys() - wanted):
        doomed = by_key[key]
        if key in desired.held:  # a PreSync hook runs first: left as they are
            keep += doomed
            continue
        if all(p.prune for p in doomed):
            remove += [Remove(p, Why.PRUNED) for p in doomed if ctx.reachable(p)]
            keep += [p for p in doomed if not ctx.reachable(p)]
        else:
            keep += doomed  # prune disabled by annotation: left running, reported OutOfSync
    namespaces = set(desired.namespaces)
    net_create = tuple(
        (node, ns)
        for node in ready
        for ns in sorted(namespaces)
        if ns not in live.networks.get(node, ())
    )
    staying = {(p.node, p.namespace) for p in keep} | {
        (r.pod.node, r.pod.namespace) for r in restart
    }
    net_remove = tuple(
        (node, ns)
        for node in ready
        for ns in sorted(live.networks.get(node, ()))
        if ns not in namespaces and (node, ns) not in staying
    )
    names_create, names_remove = _names(desired, live, ready)
    return Plan(
        commit=desired.commit,
        create=tuple(create),
        restart=tuple(restart),
        remove=tuple(remove),
        keep=tuple(keep),
        networks_create=net_create,
        networks_remove=net_remove,
        waiting=tuple(waiting),
        wake_at=min(
            (t for t in (ctx.restarts.next_wake(keep, now), *wakes) if t is not None),
            default=None,
        ),
        pending=tuple(pending),
        names_create=names_create,
        names_remove=names_remove,
        blocked=blocked,
        volumes_remove=tuple(v for v in drop if v.node in ready),
        wanted=tuple(counted),
        records_write=_unrecorded(records, live, ready),
        unthrottled=_unthrottled(create),
        records_remove=_forgotten(desired, live, ready, forget),
    )


def _unthrottled(create: Sequence[Create]) -> tuple[tuple[str, str], ...]:
    """Jobs: their parallelism is the bound their author set (a ReplicaSet's slow start would
    leave their slots empty, a pod at a time)."""
    return tuple(sorted({(c.template.namespace, c.template.deployment) for c in create
                         if c.template.restart_policy}))  # fmt: skip


def _unrecorded(
    ended: Sequence[JobRecord], live: LiveState, ready: Sequence[str]
) -> tuple[JobRecord, ...]:
    """Each ended Job's record, on every ready node that does not hold it yet (a node that
    joins learns it too): one node is enough to remember, any node may be the one left."""
    have = {(r.namespace, r.job, r.template_hash, r.node) for r in live.records}
    return tuple(replace(r, node=n) for r in ended for n in ready
                 if (r.namespace, r.job, r.template_hash, n) not in have)  # fmt: skip


def _forgotten(
    desired: DesiredState, live: LiveState, ready: Sequence[str], forget: Sequence[JobRecord]
) -> tuple[JobRecord, ...]:
    """Records of Jobs git no longer holds, or of a Job's older template: forgotten, so a Job
    put back (or changed back) runs again. A CronJob's runs are forgotten past its history
    limits (``forget``: its planner says which)."""
    current = {(d.namespace, d.name, d.template.template_hash) for d in desired.deployments
               if d.batch is not None and d.cron is None}  # fmt: skip
    crons = [d for d in desired.deployments if d.cron is not None]
    gone = {(r.namespace, r.job, r.template_hash) for r in forget}

    def kept(r: JobRecord) -> bool:
        key = (r.namespace, r.job, r.template_hash)
        if key in gone:
            return False
        ours = any(d.namespace == r.namespace and cronjob.is_run(d.name, r.job) for d in crons)
        return ours or key in current

    return tuple(r for r in live.records if not kept(r) and r.node in ready)


def _pinned(pods: Sequence[PodInfo], ctx: Context) -> tuple[Blocked, ...]:
    """A drained node's pods that stay: their claims' volumes are there."""
    out = []
    for p in pods:
        node = ctx.nodes.get(p.node)
        claim = ctx.pinned(p) if node is not None and node.draining else ""
        if claim:
            out.append(Blocked(p.namespace, p.name, p.deployment, "", (
                f"cannot move: PersistentVolumeClaim {p.namespace}/{claim} has its volume on "
                f"node {p.node}, and a pod elsewhere would start on no data"
            )))  # fmt: skip
    return tuple(out)


def _budgeted(
    remove: list[Remove], desired: DesiredState, pods: Sequence[PodInfo], ctx: Context
) -> tuple[list[Remove], list[PodInfo], tuple[Blocked, ...]]:
    """The removals that may go now, the pods of a drain that a budget holds back, and why."""
    all_budgets = budgets(desired.manifests)
    drained = [r.pod for r in remove if r.why == Why.DRAINED]
    if not all_budgets or not drained:
        return remove, [], ()
    scale = {d.key: d.replicas for d in desired.deployments}
    _, blocked = admit(drained, all_budgets, pods, ctx.readiness, scale)
    held = {b.pod for b in blocked}
    return (
        [r for r in remove if r.pod.name not in held],
        [p for p in drained if p.name in held],
        tuple(blocked),
    )


def _names(
    desired: DesiredState, live: LiveState, ready: Sequence[str]
) -> tuple[tuple[NameProxy, ...], tuple[NameProxy, ...]]:
    """Each Service with ports has a name proxy on every ready node. One missing, stopped or
    made for other ports is made again; one whose Service git no longer holds goes."""
    wanted = {
        (e.namespace, e.name): tuple(sorted({p.port for p in e.resource.spec.ports}))
        for e in desired.manifests.of(Service)
        if e.resource.spec.cluster_ip != "None"  # a headless name is its pods' own aliases
    }
    create: list[NameProxy] = []
    remove: list[NameProxy] = []
    for node in ready:
        for (ns, name), ports in sorted(wanted.items()):
            have = live.services.get((node, ns, name))
            fresh = have is not None and have.state == "running"
            if ports and not (fresh and have is not None and have.meta.service_ports == ports):
                create.append(NameProxy(node, ns, name, ports))
        remove += [
            NameProxy(node, ns, name)
            for n, ns, name in sorted(live.services)
            if n == node and (ns, name) not in wanted
        ]
    return tuple(create), tuple(remove)
