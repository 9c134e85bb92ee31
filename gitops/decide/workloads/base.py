"""What every workload kind's planner shares: the context of one plan, the part of the plan a
planner returns, and the interface a planner has.

Pure. A planner takes one desired workload, its live pods and the shared ``Context``
(the scheduler, pod names in use, readiness, the clock, the restart policy) and returns its
``Part`` of the immutable ``Plan``; ``gitops.decide.plan`` gathers the parts. Deployment is
the first kind (``deployment.py``); StatefulSet, DaemonSet and Job are its siblings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from gitops.decide.actions import Create, NameSource, Pending, Remove, Restart, RestartPolicy
from gitops.decide.affinity import untolerated
from gitops.decide.batch import CronTimes
from gitops.decide.health import PodReadiness
from gitops.decide.schedule import NodeView, Scheduler, Unschedulable
from gitops.model.labels import INFRA_NAME, JobRecord
from gitops.model.live import PodInfo
from gitops.model.templates import PodTemplate


@dataclass(frozen=True)
class Context:
    """What every workload's decision shares within one plan."""

    nodes: Mapping[str, NodeView]
    scheduler: Scheduler
    names: NameSource
    taken: set[str]
    readiness: Mapping[str, PodReadiness]
    now: float
    restarts: RestartPolicy
    volumes: Mapping[tuple[str, str], str] = field(default_factory=dict)  # claim -> its node
    # Finished Jobs the nodes remember: (namespace, job, template hash) -> its record.
    records: Mapping[tuple[str, str, str], JobRecord] = field(default_factory=dict)
    # What each CronJob's schedule says now (``cronjob.CronTimes``), by (namespace, name).
    cron: Mapping[tuple[str, str], CronTimes] = field(default_factory=dict)

    def reachable(self, pod: PodInfo) -> bool:
        node = self.nodes.get(pod.node)
        return node is not None and node.ready

    def drained(self, pod: PodInfo) -> bool:
        """On a node being drained, and free to move: a pod whose claim's volume is on that
        node stays (it would start elsewhere on no data), and the drain says so."""
        node = self.nodes.get(pod.node)
        return node is not None and node.draining and not self.pinned(pod)

    def ready(self, pod: PodInfo) -> bool:
        """The pod passes its readiness now (as this plan's readiness says)."""
        r = self.readiness.get(pod.name)
        return r is not None and r.ready

    def pinned(self, pod: PodInfo) -> str:
        """The claim whose volume keeps the pod on its node, or ""."""
        return next((c for c in pod.claims if self.volumes.get((pod.namespace, c)) == pod.node), "")

    def tainted(self, pod: PodInfo, template: PodTemplate) -> bool:
        """The pod's node has a NoExecute taint the template does not tolerate: the taint
        manager evicts the pod now (no budget holds that back), and it is made elsewhere."""
        node = self.nodes.get(pod.node)
        if node is None or not node.taints or not self.reachable(pod):
            return False
        tolerations = template.placement.tolerations if template.placement else ()
        return bool(untolerated(node.taints, tolerations, {"NoExecute"}))


@dataclass(frozen=True)
class Part:
    """One workload's share of the plan."""

    create: list[Create] = field(default_factory=list)
    restart: list[Restart] = field(default_factory=list)
    remove: list[Remove] = field(default_factory=list)
    keep: list[PodInfo] = field(default_factory=list)
    waiting: bool = False  # mid-replacement: old pods remain that may not go yet
    pending: Pending | None = None  # replicas no node can take now
    drop_claims: tuple[str, ...] = ()  # claims a retention policy deletes now (their pods gone)
    wanted: int | None = None  # the replicas it wants, when only planning counts them (nodes)
    records: tuple[JobRecord, ...] = ()  # a Job's end, to remember on every node
    forget: tuple[JobRecord, ...] = ()  # ends to forget on every node (a CronJob's history)
    wake_at: float | None = None  # when to look again though nothing changes (a back-off, a TTL)


W_contra = TypeVar("W_contra", contravariant=True)


class Planner(Protocol[W_contra]):
    """One workload kind: its desired workload and live pods, to its part of the plan."""

    def __call__(self, workload: W_contra, pods: list[PodInfo], ctx: Context, /) -> Part: ...


def restarts(
    pods: Iterable[PodInfo], gone: set[str], ctx: Context, due: Callable[[PodInfo], bool]
) -> tuple[list[Restart], list[PodInfo]]:
    """Of the pods not ``gone``: those with a container whose restart is due now (``due``
    says which pods may restart at all), and the ones kept as they are."""
    restart: list[Restart] = []
    keep: list[PodInfo] = []
    for pod in pods:
        if pod.name in gone:
            continue
        wanted = ctx.restarts.due(pod, ctx.now) if due(pod) and ctx.reachable(pod) else None
        if wanted is not None:
            restart.append(wanted)
        else:
            keep.append(pod)
    return restart, keep


def place(
    ctx: Context,
    template: PodTemplate,
    count: int,
    spread: Counter[str],
    prefix: str,
    why: str,
    suffix: bool = True,
) -> tuple[list[Create], Pending | None]:
    """``count`` new pods of ``template`` named ``prefix`` + a random suffix (or ``prefix``
    itself: a StatefulSet's NAME-i), on the nodes the scheduler picks (``spread``: the
    workload's pods per node so far); the ones no node can take are ``Pending`` with the
    scheduler's reason."""
    create: list[Create] = []
    for _ in range(count):
        node = ctx.scheduler.place(template, spread)
        if isinstance(node, Unschedulable):
            left = count - len(create)
            return create, Pending(template.namespace, template.deployment, left, node.reason)
        spread[node] += 1
        name = new_name(ctx, prefix) if suffix else prefix
        ctx.taken.add(name)
        create.append(Create(template, name, node, why))
    return create, None


def new_name(ctx: Context, prefix: str) -> str:
    """``prefix`` + a random suffix no pod has (a suffix may repeat; a pod name must not),
    taken from now on."""
    name = f"{prefix}{ctx.names()}"
    while name in ctx.taken:
        name = f"{prefix}{ctx.names()}"
    ctx.taken.add(name)
    return name


def is_complete(pod: PodInfo, template: PodTemplate) -> bool:
    """Every container there, and the pause container running: its containers cannot restart
    without the namespaces it holds, so a pod that lost it is replaced (a new sandbox). A lone
    container that holds its own network (no pause container) restarts by itself."""
    want = {c.name for c in template.all_containers()}
    have = {c.meta.container for c in pod.containers}
    if pod.infra is None:
        return want == have and pod.holder is not None
    return want | {INFRA_NAME} == have and pod.infra.state == "running"
