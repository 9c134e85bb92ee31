"""Status stage: what ``/api/v1/status``, ``gitops get`` and metrics report.

Pure: built from the desired state, the live state, the plan and the apply result of one
reconcile. ``SyncStatus`` is immutable and replaced whole after each reconcile, so readers
(the API threads) never see a half-written status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gitops.decide import disruption, endpoints, health, ingress
from gitops.decide.batch import CronTimes
from gitops.decide.desired import DesiredState
from gitops.decide.health import PodReadiness
from gitops.decide.plan import Plan, default_readiness
from gitops.decide.workloads import cronjob, job
from gitops.manifests import Entry
from gitops.manifests import ingress as ing
from gitops.manifests import model as m
from gitops.model.applied import ApplyResult
from gitops.model.live import LiveState, PodInfo
from gitops.model.verdicts import Health, Result, Sync


@dataclass(frozen=True)
class ResourceStatus:
    kind: str
    namespace: str
    name: str
    sync: str
    health: str
    message: str = ""
    source: str = ""  # file:doc
    replicas: dict[str, int] | None = None
    images: tuple[str, ...] = ()
    condition: str = ""  # a Job's: Complete | Failed | Suspended ("" while it runs)
    reason: str = ""  # the condition's reason (BackoffLimitExceeded, DeadlineExceeded, ...)


@dataclass(frozen=True)
class SyncStatus:
    revision: str = ""  # newest commit seen on the branch
    applied: str = ""  # commit whose manifests are being applied (the last valid one)
    result: Result = Result.PENDING
    reason: str = ""
    message: str = ""
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # fields of the applied commit that are accepted but ignored
    renderer: str = ""  # the kustomize that built the applied commit's kustomizations
    time: float = 0.0
    resources: tuple[ResourceStatus, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resource_statuses(
    desired: DesiredState,
    live: LiveState,
    plan: Plan | None,
    applied: ApplyResult | None,
    looping: Mapping[str, int] | None = None,
    readiness: Mapping[str, PodReadiness] | None = None,
    now: float = math.inf,
    restarts: Mapping[str, int] | None = None,
    cron: Mapping[tuple[str, str], CronTimes] | None = None,
) -> tuple[ResourceStatus, ...]:
    out: list[ResourceStatus] = []
    routes: ingress.IngressTable | None = None  # made at the first Ingress
    for entry in desired.manifests.entries:
        res = entry.resource
        source = f"{entry.path}:{entry.doc}"
        if isinstance(res, m.WORKLOADS) and desired.deployment(entry.namespace, entry.name) is None:
            # Not planned now: a sync hook holds the commit (a new workload, a PostSync Job).
            hook = isinstance(res, m.Job)
            out.append(ResourceStatus(
                res.kind, entry.namespace, entry.name, Sync.OUT_OF_SYNC,
                Health.PROGRESSING if hook or live.of(entry.namespace, entry.name)
                else Health.MISSING, desired.holding, source,
            ))  # fmt: skip
        elif isinstance(res, m.Job):
            out.append(_job(entry, desired, live, restarts or {}, now))
        elif isinstance(res, m.CronJob):
            out.append(
                _cronjob(entry, desired, live, (cron or {}).get((entry.namespace, entry.name)))
            )
        elif isinstance(res, m.WORKLOADS):
            dep = desired.deployment(entry.namespace, entry.name)
            assert dep is not None
            if plan is not None:  # a DaemonSet's replicas are the nodes planning found for it
                dep = replace(dep, replicas=plan.replicas_of(dep))
            pods = live.of(*dep.key)
            failure = applied.failure_for(*dep.key) if applied else None
            h, msg, reps = health.deployment_health(
                dep, pods, failure.message if failure else None, looping, readiness, now
            )
            touched = plan.touches(*dep.key) if plan else False
            pending = plan.pending_for(*dep.key) if plan else None
            if pending is not None:
                msg = f"{msg}; {pending.count} pod(s) Pending: {pending.reason}"
                h = Health.PROGRESSING if h == Health.HEALTHY else h
                touched = True
            # A drain held back is waiting in the plan (so touched already): said, not judged.
            held = (
                [b for b in plan.blocked if (b.namespace, b.deployment) == dep.key] if plan else []
            )
            if held:
                msg = f"{msg}; drain of pod {held[0].pod} held: {held[0].reason}"
            # A StatefulSet's ordinals below its partition, or left to OnDelete, stay old.
            kept = dep.stateful.partition if dep.stateful else 0
            kept = dep.replicas if dep.stateful and dep.stateful.on_delete else kept
            kept = dep.replicas if dep.kind == "DaemonSet" and dep.strategy == "OnDelete" else kept
            in_sync = (
                not touched
                and reps.current == dep.replicas
                and reps.updated >= dep.replicas - kept
                and not dep.rolled_back
                and not dep.held
            )
            if dep.held:
                msg = f"{dep.held}; {msg}" if msg else dep.held
            out.append(
                ResourceStatus(
                    dep.kind,
                    entry.namespace,
                    entry.name,
                    Sync.SYNCED if in_sync else Sync.OUT_OF_SYNC,
                    h,
                    msg,
                    source,
                    {
                        "desired": reps.desired,
                        "current": reps.current,
                        "updated": reps.updated,
                        "ready": reps.ready,
                        "serving": reps.serving,
                        "available": reps.available,
                        "unavailable": reps.unavailable,
                    },
                    tuple(c.image for c in dep.template.containers),
                )
            )
        elif isinstance(res, m.PodDisruptionBudget):
            out.append(_budget(entry, desired, live, plan, readiness))
        elif isinstance(res, m.Ingress):
            if routes is None:
                routes = _routes(desired, live, readiness)
            out.append(_ingress(entry, desired, routes))
        elif isinstance(res, m.Skipped):
            out.append(
                ResourceStatus(
                    res.kind, entry.namespace, entry.name, Sync.SKIPPED, "", res.reason, source
                )
            )
        elif isinstance(res, m.Namespace):
            missing = [n for n, nets in live.networks.items() if entry.name not in nets]
            sync = Sync.OUT_OF_SYNC if missing else Sync.SYNCED
            msg = f"network missing on {', '.join(missing)}" if missing else ""
            out.append(
                ResourceStatus("Namespace", "", entry.name, sync, Health.HEALTHY, msg, source)
            )
        else:
            out.append(
                ResourceStatus(
                    res.kind, entry.namespace, entry.name, Sync.SYNCED, Health.HEALTHY, "", source
                )
            )
    wanted = {d.key for d in desired.deployments}
    for ns, name in sorted(live.deployments() - wanted):
        out.append(
            ResourceStatus(
                "Deployment",
                ns,
                name,
                Sync.OUT_OF_SYNC,
                Health.UNKNOWN,
                "deleted from git; pruning is disabled by annotation"
                if not all(p.prune for p in live.of(ns, name))
                else "deleted from git; pruning",
            )
        )
    return tuple(out)


def behind_head(resources: tuple[ResourceStatus, ...], head: str) -> tuple[ResourceStatus, ...]:
    """While the branch head is rejected, the last valid commit runs: against the head every
    resource is OutOfSync, as Argo CD shows an application whose manifests do not render."""
    note = f"the head {head[:12]} is rejected; the last valid commit runs"
    return tuple(
        replace(r, sync=Sync.OUT_OF_SYNC, message=f"{r.message}; {note}" if r.message else note)
        for r in resources
    )


JOB_HEALTH = {
    job.COMPLETE: Health.HEALTHY,
    job.FAILED: Health.DEGRADED,
    job.SUSPENDED: Health.SUSPENDED,
}


def _job(
    entry: Entry[m.Job],
    desired: DesiredState,
    live: LiveState,
    restarts: Mapping[str, int],
    now: float,
) -> ResourceStatus:
    """A Job's status, as ``kubectl get job`` and its conditions have it: Healthy once
    Complete, Degraded once Failed (with the reason), Progressing while it runs."""
    dep = desired.deployment(entry.namespace, entry.name)
    assert dep is not None and dep.batch is not None
    pods = live.of(*dep.key)
    clock = now if math.isfinite(now) else time_of(pods)
    st, current = job.observed(dep, live, clock, restarts)
    started = bool(current) or st.recorded
    in_sync = started and len(current) == len(pods)
    message = ": ".join(x for x in (st.condition, st.reason, st.message) if x)
    if st.completed_indexes:
        message = f"{message}; completed indexes {st.completed_indexes}".lstrip("; ")
    return ResourceStatus(
        "Job",
        entry.namespace,
        entry.name,
        Sync.SYNCED if in_sync else Sync.OUT_OF_SYNC,
        JOB_HEALTH.get(st.condition, Health.PROGRESSING),
        message,
        f"{entry.path}:{entry.doc}",
        {
            "completions": dep.batch.completions if dep.batch.completions is not None else -1,
            "parallelism": dep.batch.parallelism,
            "active": st.active,
            "succeeded": st.succeeded,
            "failed": st.failed,
            "startTime": int(st.started),
            "completionTime": int(st.finished) if st.condition == job.COMPLETE else 0,
            "finishedTime": int(st.finished),
        },
        tuple(c.image for c in dep.template.containers),
        st.condition,
        st.reason,
    )


def _cronjob(
    entry: Entry[m.CronJob], desired: DesiredState, live: LiveState, times: CronTimes | None
) -> ResourceStatus:
    """A CronJob's status, as ``kubectl get cronjobs`` shows it, with its last result: Degraded
    while the run that ended last failed (or the schedule cannot be read), Suspended while
    suspended, else Healthy."""
    dep = desired.deployment(entry.namespace, entry.name)
    assert dep is not None and dep.cron is not None
    st = cronjob.status(dep, live.of(*dep.key), list(live.records), times)
    health = Health.HEALTHY
    message = f"last run {st.last_run}: {st.last_result}" if st.last_run else "no run yet"
    if st.last_reason and st.last_result != job.COMPLETE:
        message += f" ({st.last_reason})"
    if st.last_result == job.FAILED:
        health = Health.DEGRADED
    if dep.cron.suspend:
        health, message = Health.SUSPENDED, f"suspended; {message}"
    if times is not None and times.error:
        health, message = Health.DEGRADED, times.error
    return ResourceStatus(
        "CronJob",
        entry.namespace,
        entry.name,
        Sync.SYNCED,
        health,
        message,
        f"{entry.path}:{entry.doc}",
        {
            "active": st.active,
            "lastScheduleTime": int(st.last_schedule),
            "lastSuccessfulTime": int(st.last_successful),
            "nextScheduleTime": int(st.next_schedule),
        },
        tuple(c.image for c in dep.template.containers),
        st.last_result,
        st.last_reason,
    )


def _routes(
    desired: DesiredState, live: LiveState, readiness: Mapping[str, PodReadiness] | None
) -> ingress.IngressTable:
    ready = readiness if readiness is not None else default_readiness(live)
    table = endpoints.compute(desired, live, lambda p: p.name in ready and ready[p.name].ready)
    return ingress.compute(desired, table)


def _ingress(
    entry: Entry[m.Ingress], desired: DesiredState, routes: ingress.IngressTable
) -> ResourceStatus:
    """Skipped when another controller's; else Healthy once every backend has a ready
    endpoint, Progressing until then (as Argo CD's Ingress waits for its address)."""
    source = f"{entry.path}:{entry.doc}"
    classes = [e.resource for e in desired.manifests.of(m.IngressClass)]
    why = ing.not_served(entry.resource, classes)
    if why is not None:
        return ResourceStatus("Ingress", entry.namespace, entry.name, Sync.SKIPPED, "",
                              f"not gitops': {why}", source)  # fmt: skip
    ok, message = ingress.health(entry, routes)
    return ResourceStatus(
        "Ingress", entry.namespace, entry.name, Sync.SYNCED,
        Health.HEALTHY if ok else Health.PROGRESSING, message, source,
    )  # fmt: skip


def time_of(pods: list[PodInfo]) -> float:
    """No clock given (a test's status): the latest thing the pods say happened."""
    return max((c.finished or c.created for p in pods for c in p.containers), default=0.0)


def _budget(
    entry: Entry[m.PodDisruptionBudget],
    desired: DesiredState,
    live: LiveState,
    plan: Plan | None,
    readiness: Mapping[str, PodReadiness] | None,
) -> ResourceStatus:
    """A PodDisruptionBudget's status, as its ``status`` stanza has it: Degraded while fewer
    pods are healthy than it wants."""
    namespace, name = entry.namespace, entry.name
    budget = next(b for b in disruption.budgets(desired.manifests) if b.name == name
                  and b.namespace == namespace)  # fmt: skip
    if readiness is None:
        readiness = default_readiness(live)
    scale = {d.key: d.replicas for d in desired.deployments}
    st = disruption.status(budget, live.pods, readiness, scale)
    held = [b for b in plan.blocked if (b.namespace, b.budget) == (namespace, name)] if plan else []
    msg = st.describe() + (f"; holding the drain of {len(held)} pod(s)" if held else "")
    healthy = st.current_healthy >= st.desired_healthy
    return ResourceStatus(
        "PodDisruptionBudget",
        namespace,
        name,
        Sync.SYNCED,
        Health.HEALTHY if healthy else Health.DEGRADED,
        msg,
        f"{entry.path}:{entry.doc}",
        replicas={
            "currentHealthy": st.current_healthy,
            "desiredHealthy": st.desired_healthy,
            "expectedPods": st.expected_pods,
            "disruptionsAllowed": st.disruptions_allowed,
        },
    )
