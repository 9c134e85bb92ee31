"""The events of one pass, from what it decided and what carrying it out did. Pure.

Kubernetes' controllers and kubelet each record what they do; here the one pass does it all,
so its plan says it: a pod placed is Scheduled, Pulled (Pulling first when its image was
pulled), Created and Started, or Failed when its image could not be had; a pod removed is
Killing (Evicted, when its node was lost); a container restarted after a crash is BackOff, one
that failed liveness is Killing; replicas no node can take are FailedScheduling; a workload
whose replicas changed is ScalingUp or ScalingDown; a container whose probe fails is
Unhealthy, with the probe's output, counted by failed run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gitops.decide.actions import Why
from gitops.decide.desired import DesiredState
from gitops.decide.plan import Plan
from gitops.model import eventlog as ev
from gitops.model.applied import ApplyResult
from gitops.model.eventlog import ObjectEvent, event
from gitops.model.live import LiveState

Replicas = dict[tuple[str, str], int]


def pass_events(
    plan: Plan,
    applied: ApplyResult | None,
    desired: DesiredState,
    live: LiveState,
    before: Mapping[tuple[str, str], int],
    unhealthy: Mapping[str, Sequence[tuple[str, int]]],
    now: float,
) -> tuple[list[ObjectEvent], Replicas]:
    """The pass's events, and each workload's replicas now (the next pass's ``before``)."""
    out: list[ObjectEvent] = []
    unstarted = {u.pod: u for u in (applied.unstarted if applied else ())}
    for c in plan.create:
        ns, made, node = c.template.namespace, c.pod, c.node
        placed = f"Successfully assigned {ns}/{made} to {node}"
        out.append(event("Pod", ns, made, ev.SCHEDULED, placed, now, node=node))
        for spec in c.template.all_containers():
            took = applied.pulled.get((node, spec.image)) if applied else None
            if took is not None:
                out.append(event("Pod", ns, made, ev.PULLING, f'Pulling image "{spec.image}"',
                                 now, node=node))  # fmt: skip
                out.append(event("Pod", ns, made, ev.PULLED, f'Successfully pulled image '
                                 f'"{spec.image}" in {took:.3f}s', now, node=node))  # fmt: skip
            elif made not in unstarted:
                out.append(event("Pod", ns, made, ev.PULLED, f'Container image "{spec.image}" '
                                 "already present on machine", now, node=node))  # fmt: skip
        if made in unstarted:
            u = unstarted[made]
            out.append(event("Pod", ns, made, ev.FAILED, f"{u.status}: {u.message}", now, True,
                             node))  # fmt: skip
        elif applied is not None and applied.failure_for(ns, c.template.deployment) is None:
            names = ", ".join(x.name for x in c.template.containers)
            out.append(event("Pod", ns, made, ev.CREATED, f"Created container {names}", now,
                             node=node))  # fmt: skip
            out.append(event("Pod", ns, made, ev.STARTED, f"Started container {names}", now,
                             node=node))  # fmt: skip
    for f in applied.failures if applied else ():
        kind = _kind(desired, f.namespace, f.deployment)
        out.append(event(kind, f.namespace, f.deployment, ev.FAILED, f"{f.reason}: {f.message}",
                         now, True))  # fmt: skip
    for r in plan.remove:
        pod = r.pod
        names = ", ".join(c.meta.container or c.name for c in pod.app_containers())
        if r.why == Why.EVICTED:
            out.append(event("Pod", pod.namespace, pod.name, ev.EVICTED,
                             f"Node {pod.node} was lost: the pod is replaced elsewhere", now,
                             True, pod.node))  # fmt: skip
        else:
            stopping = f"Stopping container {names} ({r.why})"
            out.append(event("Pod", pod.namespace, pod.name, ev.KILLING, stopping, now,
                             node=pod.node))  # fmt: skip
    for again in plan.restart:
        pod = again.pod
        by_id = {c.id: c.meta.container or c.name for c in pod.containers}
        for cid in again.restarts:
            name = by_id.get(cid, cid[:12])
            if cid in again.running:
                out.append(event("Pod", pod.namespace, pod.name, ev.KILLING,
                                 f"Container {name} failed its probe, will be restarted: "
                                 f"{again.why}", now, node=pod.node))  # fmt: skip
            else:
                out.append(event("Pod", pod.namespace, pod.name, ev.BACK_OFF,
                                 f"Back-off restarting failed container {name} in pod "
                                 f"{pod.name} ({again.why})", now, True, pod.node))  # fmt: skip
    for p in plan.pending:
        kind = _kind(desired, p.namespace, p.deployment)
        if p.refused:  # the namespace's quota refused them, as admission refuses a create
            out.append(event(kind, p.namespace, p.deployment, ev.FAILED_CREATE,
                             f"Error creating: {p.reason}", now, True))  # fmt: skip
            continue
        out.append(event(kind, p.namespace, p.deployment, ev.FAILED_SCHEDULING,
                         f"{p.count} replica(s) pending: {p.reason}", now, True))  # fmt: skip
    for pod in live.pods:  # each failed probe run, as the kubelet tells them (``unhealthy``)
        for app in pod.app_containers():
            for said, runs in unhealthy.get(app.id, ()):
                out.append(event("Pod", pod.namespace, pod.name, ev.UNHEALTHY, said, now, True,
                                 pod.node, runs))  # fmt: skip
    now_replicas: Replicas = {}
    for dep in desired.deployments:
        if dep.kind in {"Job", "DaemonSet"}:
            continue  # their pods follow completions and nodes, not a replica count
        wanted = plan.replicas_of(dep)
        now_replicas[dep.key] = wanted
        was = before.get(dep.key)
        if was is not None and was != wanted:
            reason = ev.SCALING_UP if wanted > was else ev.SCALING_DOWN
            out.append(event(dep.kind, dep.namespace, dep.name, reason,
                             f"Scaled {'up' if wanted > was else 'down'} to {wanted} "
                             f"replica(s) from {was}", now))  # fmt: skip
    return out, now_replicas


def _kind(desired: DesiredState, namespace: str, name: str) -> str:
    dep = desired.deployment(namespace, name)
    return dep.kind if dep is not None else "Deployment"
