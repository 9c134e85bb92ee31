"""The Deployment planner: desired replicas and their template, live pods -> its part of the
plan, with Kubernetes' rolling update (``rollout.py``, beside it) deciding each step.

Pure. Broken pods (a container missing, a pause container gone) are replaced, and those on a
node with a NoExecute taint they do not tolerate are evicted at once (as the taint manager
evicts them, no rolling rule or budget holding it back); a paused
rollout neither creates nor removes, but crashed containers still restart; a silent node's
pods are counted, not touched; new pods are placed by the scheduler, spread over nodes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from gitops.decide.actions import Remove, Why
from gitops.decide.desired import DesiredDeployment
from gitops.decide.workloads.base import Context, Part, is_complete, place, restarts
from gitops.decide.workloads.rollout import Step, step
from gitops.model.live import ContainerInfo, PodInfo


def plan(dep: DesiredDeployment, pods: list[PodInfo], ctx: Context) -> Part:
    template = dep.template
    # Membership by identity: the lists hold the same objects, and a list's ``in`` compares
    # whole values, quadratic in a workload's replicas.
    tainted = [p for p in pods if ctx.tainted(p, template)]
    left_out = {id(p) for p in tainted}
    pods = [p for p in pods if id(p) not in left_out]
    # A drained node's pods are replaced like outdated ones: surge elsewhere, then remove.
    current = [p for p in pods if p.template_hash == template.template_hash and not ctx.drained(p)]
    now_ids = {id(p) for p in current}
    old = [p for p in pods if id(p) not in now_ids]
    broken = [p for p in current if not is_complete(p, template) and ctx.reachable(p)]
    broken_ids = {id(p) for p in broken}
    current = [p for p in current if id(p) not in broken_ids]
    current_ids = {id(p) for p in current}
    remove = [Remove(p, Why.BROKEN) for p in broken] + [Remove(p, Why.TAINTED) for p in tainted]
    # A paused rollout neither creates nor removes; crashed pods still restart.
    decided = (
        Step(0, (), bool(old)) if dep.paused else step(dep, current, old, ctx.readiness, ctx.now)
    )
    # A silent node's pods are counted but not touched until it answers or is evicted.
    # A drained node's pod goes as a voluntary disruption: PodDisruptionBudgets may hold it.
    remove += [
        Remove(p, Why.DRAINED if ctx.drained(p) else why)
        for p, why in decided.remove
        if ctx.reachable(p)
    ]
    gone = {r.pod.name for r in remove}
    restart, keep = restarts(current + old, gone, ctx, lambda p: id(p) in current_ids)
    spread = Counter(p.node for p in current if p.name not in gone)
    why = Why.OUTDATED if old else Why.MISSING
    prefix = f"{dep.name}-{template.template_hash}-"
    create, pending = place(ctx, template, decided.create, spread, prefix, why)
    return Part(create, restart, remove, keep, decided.waiting, pending)


Reason = Callable[[PodInfo, ContainerInfo], str]


def stuck(
    dep: DesiredDeployment, pods: list[PodInfo], failure: str, reason: Callable[[str], str]
) -> str:
    """Why the deployment's new pods do not become available: its failure to apply, else the
    first container of a new pod that is not running or whose probe says why (``reason``:
    container id -> the prober's last reason). "" when none says."""

    def why(pod: PodInfo, c: ContainerInfo) -> str:
        init = pod.initializing
        if init is not None:
            inits = pod.init_containers()
            done = inits.index(init)
            name = init.meta.container or init.name
            return f"pod {pod.name}: Init:{done}/{len(inits)}: init container {name} {init.status}"
        if c.state != "running":
            return f"pod {pod.name}: container {c.meta.container or c.name} {c.status}"
        said = reason(c.id)
        return f"pod {pod.name}: {said}" if said else ""

    return failure or _new_pods_first(dep, pods, why)


def failed_pod(
    dep: DesiredDeployment,
    pods: list[PodInfo],
    failure: str,
    failed: Callable[[str], str],
    words: Callable[[PodInfo, ContainerInfo], str] = lambda pod, c: "",
) -> str:
    """Why a pod of the new template has failed for good, as Swarm counts a failed task: its
    image could not be had (``failure``), a container exited (quoting ``words``, its last log
    lines), or its startup or readiness probe failed ``failureThreshold`` times in a row
    (``failed``: container id -> why). "" when none has."""

    def why(pod: PodInfo, c: ContainerInfo) -> str:
        init = pod.initializing
        if init is not None and init.state in ("exited", "dead"):
            return (
                f"pod {pod.name}: init container {init.meta.container or init.name} {init.status}"
            )
        name = c.meta.container or c.name
        if c.state in ("exited", "dead"):
            said = words(pod, c)  # the engine's "... 2 seconds ago" would age in a record
            how = c.status if c.exit_code is None else f"Exited ({c.exit_code})"
            return f"pod {pod.name}: container {name} {how}" + (f": {said}" if said else "")
        said = failed(c.id)
        return f"pod {pod.name}: container {name}: {said}" if said else ""

    return failure or _new_pods_first(dep, pods, why)


def _new_pods_first(dep: DesiredDeployment, pods: list[PodInfo], why: Reason) -> str:
    for pod in pods:
        if pod.template_hash == dep.template.template_hash:
            for c in pod.app_containers():
                found = why(pod, c)
                if found:
                    return found
    return ""
