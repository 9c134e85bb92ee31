"""The ReplicaSet planner (ReplicationController too): a fixed set of replicas, healed and
scaled, never rolled.

Pure. Every live pod of the workload is one of its replicas, whatever template made it: as
Kubernetes' ReplicaSet controller, a changed template is used only by pods made from then on,
and no pod is replaced for it. Missing replicas are made on the nodes the scheduler picks;
surplus ones go, the not-ready and the youngest first (``ActivePodsWithRanks``). Broken pods
(a container or the pause container gone), and those on a node with a NoExecute taint they do
not tolerate, are replaced; crashed containers restart; a silent
node's pods are counted but not touched. A drained node's pods are made again elsewhere first
and go once as many others are ready, so a drain costs no replica.
"""

from __future__ import annotations

from collections import Counter

from gitops.decide.actions import Remove, Why
from gitops.decide.desired import DesiredDeployment
from gitops.decide.workloads.base import Context, Part, is_complete, place, restarts
from gitops.model.live import PodInfo


def plan(rs: DesiredDeployment, pods: list[PodInfo], ctx: Context) -> Part:
    template = rs.template
    tainted = [p for p in pods if ctx.tainted(p, template)]
    broken = [p for p in pods if p not in tainted and not _whole(p, rs) and ctx.reachable(p)]
    members = [p for p in pods if p not in broken and p not in tainted]
    moving = [p for p in members if ctx.drained(p)]
    staying = sorted((p for p in members if p not in moving), key=lambda p: _rank(p, ctx))
    remove = [Remove(p, Why.BROKEN) for p in broken] + [Remove(p, Why.TAINTED) for p in tainted]
    remove += [Remove(p, Why.SURPLUS) for p in staying[rs.replicas :] if ctx.reachable(p)]
    staying = staying[: rs.replicas]
    remove += [Remove(p, Why.DRAINED) for p in _leaving(rs, staying, moving, ctx)]
    gone = {r.pod.name for r in remove}
    restart, keep = restarts(members, gone, ctx, lambda p: True)
    why = Why.DRAINED if moving else Why.MISSING
    spread = Counter(p.node for p in staying)
    create, pending = place(ctx, template, rs.replicas - len(staying), spread, f"{rs.name}-", why)
    waiting = any(p.name not in gone for p in moving)
    return Part(create, restart, remove, keep, waiting, pending)


def _whole(pod: PodInfo, rs: DesiredDeployment) -> bool:
    """A pod of the current template has all its containers; one of an older template (whose
    container list is not known here) still has the sandbox that holds them."""
    if pod.template_hash == rs.template.template_hash:
        return is_complete(pod, rs.template)
    return pod.holder is not None if pod.infra is None else pod.infra.state == "running"


def _leaving(
    rs: DesiredDeployment, staying: list[PodInfo], moving: list[PodInfo], ctx: Context
) -> list[PodInfo]:
    """The drained node's pods that may go now: the not-ready at once (they serve nobody), the
    ready ones while the ready replicas left stay at least ``replicas``: their replacements
    are made elsewhere first, as a Deployment surges."""
    if not moving:
        return []
    reachable = [p for p in moving if ctx.reachable(p)]
    idle = [p for p in reachable if not ctx.ready(p)]
    serving = [p for p in reachable if ctx.ready(p)]
    ready = sum(1 for p in staying if ctx.ready(p)) + len(serving)
    allowed = max(0, ready - rs.replicas)
    return idle + sorted(serving, key=lambda p: _rank(p, ctx), reverse=True)[:allowed]


def _rank(pod: PodInfo, ctx: Context) -> tuple[int, float, str]:
    # Keep the ready and the oldest, as the ReplicaSet controller keeps them.
    return (0 if ctx.ready(pod) else 1, pod.created, pod.name)
