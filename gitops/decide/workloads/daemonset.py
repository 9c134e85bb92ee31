"""The DaemonSet planner: one pod on every Ready node that should run it.

Pure. A node should run the DaemonSet's pod when its labels match the template's
nodeSelector and required node affinity and it has no NoSchedule or NoExecute taint the pod
does not tolerate; the pod is made there when the scheduler admits it (resources, host
ports), a cordon aside: daemon pods tolerate it, and a drain leaves them (``kubectl drain
--ignore-daemonsets``). A pod whose node stops matching goes (a NoSchedule taint added later
does not evict it, as in Kubernetes); a silent node's pod is counted and not touched; a node
that joins gets one. RollingUpdate replaces old pods node by node: with ``maxSurge`` 0 an old
pod goes while fewer than ``maxUnavailable`` of the set's nodes lack a ready pod, and the new
one is made there on the next pass; with ``maxSurge`` the new pod is made beside the old one,
which goes once the new one is ready. OnDelete makes new pods only where none is. Broken pods
are replaced; crashed containers restart.
"""

from __future__ import annotations

from gitops.decide.actions import Create, Pending, Remove, Why
from gitops.decide.affinity import untolerated
from gitops.decide.desired import DesiredDeployment
from gitops.decide.workloads.base import Context, Part, is_complete, new_name, restarts
from gitops.decide.workloads.rollout import scaled_value
from gitops.model.live import PodInfo


def plan(ds: DesiredDeployment, pods: list[PodInfo], ctx: Context) -> Part:
    template = ds.template
    tolerations = template.placement.tolerations if template.placement else ()
    by_node: dict[str, list[PodInfo]] = {}
    for p in pods:
        by_node.setdefault(p.node, []).append(p)
    create: list[Create] = []
    remove: list[Remove] = []
    old: list[PodInfo] = []  # the only pod of an older template on its node
    surging: list[PodInfo] = []  # an old pod beside its node's new one, not ready yet
    unavailable = wanted = unplaced = 0
    reason = ""
    for name in sorted(ctx.nodes):
        view = ctx.nodes[name]
        here = by_node.pop(name, [])
        if not view.ready:  # counted, not touched: its pods may well be running
            wanted += bool(here)
            unavailable += bool(here)
            continue
        evicting = untolerated(view.taints, tolerations, {"NoExecute"})
        if here and (evicting or not ctx.scheduler.selects(name, template)):
            remove += [Remove(p, Why.TAINTED if evicting else Why.SURPLUS) for p in here]
            continue
        if not here and (
            not ctx.scheduler.selects(name, template)
            or untolerated(view.taints, tolerations, {"NoSchedule", "NoExecute"})
        ):
            continue
        wanted += 1
        broken = [p for p in here if p.template_hash == template.template_hash
                  and not is_complete(p, template)]  # fmt: skip
        remove += [Remove(p, Why.BROKEN) for p in broken]
        here = [p for p in here if p not in broken]
        current = sorted((p for p in here if p.template_hash == template.template_hash),
                         key=lambda p: (not ctx.ready(p), -p.created))  # fmt: skip
        older = [p for p in here if p not in current]
        remove += [Remove(p, Why.SURPLUS) for p in current[1:]]
        if current and older:  # a surge: the old pod goes once the new one serves
            if ctx.ready(current[0]):
                remove += [Remove(p, Why.OUTDATED) for p in older]
            else:
                surging += older
                unavailable += 0 if any(ctx.ready(p) for p in older) else 1
            continue
        if older:
            remove += [Remove(p, Why.SURPLUS) for p in older[1:]]
            old.append(older[0])
            unavailable += not ctx.ready(older[0])
            continue
        if current:
            unavailable += not ctx.ready(current[0])
            continue
        unavailable += 1
        why = ctx.scheduler.place_on(template, name)
        if why:
            unplaced, reason = unplaced + 1, reason or f"node {name}: {why}"
            continue
        create.append(Create(template, new_name(ctx, f"{ds.name}-"), name, Why.MISSING))
    if ds.strategy == "RollingUpdate" and old:
        create_more, remove_more = _roll(ds, old, len(surging), unavailable, wanted, ctx)
        create += create_more
        remove += remove_more
    gone = {r.pod.name for r in remove}
    restart, keep = restarts(pods, gone, ctx, lambda p: True)
    waiting = ds.strategy == "RollingUpdate" and any(p.name not in gone for p in old + surging)
    pending = Pending(ds.namespace, ds.name, unplaced, reason) if unplaced else None
    return Part(create, restart, remove, keep, waiting, pending, wanted=wanted)


def _roll(
    ds: DesiredDeployment,
    old: list[PodInfo],
    surging: int,
    unavailable: int,
    wanted: int,
    ctx: Context,
) -> tuple[list[Create], list[Remove]]:
    """One step of a rolling update over the nodes whose pod is of an older template."""
    # Both rounded up, as the DaemonSet controller rounds them (a Deployment's maxUnavailable
    # is rounded down).
    surge = scaled_value(ds.max_surge, wanted, round_up=True)
    if surge > 0:  # the new pod beside the old: never fewer pods serving
        create = []
        for pod in sorted(old, key=lambda p: p.node)[: max(0, surge - surging)]:
            if not ctx.scheduler.place_on(ds.template, pod.node):
                create.append(
                    Create(ds.template, new_name(ctx, f"{ds.name}-"), pod.node, Why.OUTDATED)
                )
        return create, []
    # Not ready old pods serve nobody: they go at once; ready ones within maxUnavailable.
    idle = [p for p in old if not ctx.ready(p)]
    allowed = max(0, max(1, scaled_value(ds.max_unavailable, wanted, round_up=True)) - unavailable)
    serving = sorted((p for p in old if ctx.ready(p)), key=lambda p: p.node)[:allowed]
    return [], [Remove(p, Why.UNHEALTHY_OLD) for p in idle] + [
        Remove(p, Why.OUTDATED) for p in serving
    ]
