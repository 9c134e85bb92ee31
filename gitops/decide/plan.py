"""Plan stage: desired vs live -> an immutable ``Plan`` in buckets. Deciding only, no doing.

Pure. In: ``DesiredState``, ``LiveState``, the node names and a pod-name source (injected, so
tests are deterministic). Out: ``Plan`` with ``create``, ``restart``, ``remove`` and ``keep``
buckets plus network changes. ``gitops diff`` and ``--dry-run`` print it; ``gitops.act.apply``
carries it out.

How many pods of a changed template to create and which old ones to remove in one pass is
``gitops.decide.rollout``'s decision (maxSurge, maxUnavailable, minReadySeconds, Recreate); a
pass that changed something asks for a quick follow-up pass, so a rollout proceeds as pods
become ready.
"""

from __future__ import annotations

import math
import random
import string
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.rollout import PodReadiness, Step, Why, step
from gitops.decide.schedule import NodeView, Scheduler, Unschedulable
from gitops.model.labels import INFRA_NAME
from gitops.model.live import LiveState, PodInfo
from gitops.model.templates import PodTemplate

NameSource = Callable[[], str]
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet: no vowels, no lookalikes


def random_suffix(length: int = 5) -> NameSource:
    rng = random.SystemRandom()
    return lambda: "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(length))


def counter_suffix() -> NameSource:
    """Deterministic names for tests and dry runs."""
    n = iter(range(10**9))
    return lambda: "".join(string.ascii_lowercase[int(d)] for d in f"{next(n):05d}")


@dataclass(frozen=True)
class Create:
    template: PodTemplate
    pod: str
    node: str
    why: str


@dataclass(frozen=True)
class Remove:
    pod: PodInfo
    why: str


@dataclass(frozen=True)
class Restart:
    pod: PodInfo
    container_ids: tuple[str, ...]
    why: str
    running: tuple[str, ...] = ()  # of those, the ones still running (failed liveness): stop first


@dataclass(frozen=True)
class Pending:
    """Replicas no node can take now, and why (kube-scheduler's words)."""

    namespace: str
    deployment: str
    count: int
    reason: str


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

    def pending_for(self, namespace: str, deployment: str) -> Pending | None:
        return next(
            (p for p in self.pending if (p.namespace, p.deployment) == (namespace, deployment)),
            None,
        )

    @property
    def empty(self) -> bool:
        return not (
            self.create
            or self.restart
            or self.remove
            or self.networks_create
            or self.networks_remove
        )

    def touches(self, namespace: str, deployment: str) -> bool:
        key = (namespace, deployment)
        return (
            any((c.template.namespace, c.template.deployment) == key for c in self.create)
            or any((r.pod.namespace, r.pod.deployment) == key for r in self.remove)
            or any((r.pod.namespace, r.pod.deployment) == key for r in self.restart)
            or key in self.waiting
        )

    def without(self, namespace: str, deployment: str) -> Plan:
        """The same plan with one deployment's pod actions dropped (used when its image fails)."""
        key = (namespace, deployment)
        return Plan(
            commit=self.commit,
            create=tuple(
                c for c in self.create if (c.template.namespace, c.template.deployment) != key
            ),
            restart=tuple(r for r in self.restart if (r.pod.namespace, r.pod.deployment) != key),
            remove=tuple(
                r
                for r in self.remove
                if (r.pod.namespace, r.pod.deployment) != key or r.why == Why.PRUNED
            ),
            keep=self.keep,
            networks_create=self.networks_create,
            networks_remove=self.networks_remove,
            waiting=tuple(w for w in self.waiting if w != key),
            wake_at=self.wake_at,
            pending=self.pending,
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
        lines += [f"- network {ns} on {node}" for node, ns in self.networks_remove]
        lines += [
            f"! {p.count} pod(s) of {p.namespace}/{p.deployment} pending: {p.reason}"
            for p in self.pending
        ]
        return lines


def _is_complete(pod: PodInfo, template: PodTemplate) -> bool:
    """Every container there, and the pause container running: its containers cannot restart
    without the namespaces it holds, so a pod that lost it is replaced (a new sandbox). A lone
    container that holds its own network (no pause container) restarts by itself."""
    want = {c.name for c in template.all_containers()}
    have = {c.meta.container for c in pod.containers}
    if pod.infra is None:
        return want == have and pod.holder is not None
    return want | {INFRA_NAME} == have and pod.infra.state == "running"


@dataclass(frozen=True)
class _Deciding:
    """What every deployment's decision shares within one plan."""

    nodes: Mapping[str, NodeView]
    scheduler: Scheduler
    names: NameSource
    taken: set[str]
    readiness: Mapping[str, PodReadiness]
    now: float
    restarts: RestartPolicy

    def reachable(self, pod: PodInfo) -> bool:
        node = self.nodes.get(pod.node)
        return node is not None and node.ready

    def drained(self, pod: PodInfo) -> bool:
        node = self.nodes.get(pod.node)
        return node is not None and node.draining


def _plan_deployment(
    dep: DesiredDeployment, pods: list[PodInfo], ctx: _Deciding
) -> tuple[list[Create], list[Restart], list[Remove], list[PodInfo], bool, Pending | None]:
    template = dep.template
    # A drained node's pods are replaced like outdated ones: surge elsewhere, then remove.
    current = [p for p in pods if p.template_hash == template.template_hash and not ctx.drained(p)]
    old = [p for p in pods if p not in current]
    broken = [p for p in current if not _is_complete(p, template) and ctx.reachable(p)]
    current = [p for p in current if p not in broken]
    remove = [Remove(p, Why.BROKEN) for p in broken]
    # A paused rollout neither creates nor removes; crashed pods still restart.
    decided = (
        Step(0, (), bool(old)) if dep.paused else step(dep, current, old, ctx.readiness, ctx.now)
    )
    # A silent node's pods are counted but not touched until it answers or is evicted.
    remove += [Remove(p, why) for p, why in decided.remove if ctx.reachable(p)]
    gone = {r.pod.name for r in remove}
    restart: list[Restart] = []
    keep: list[PodInfo] = []
    for pod in current + old:
        if pod.name in gone:
            continue
        due = pod in current and ctx.reachable(pod)
        wanted = ctx.restarts.due(pod, ctx.now) if due else None
        if wanted is not None:
            restart.append(wanted)
        else:
            keep.append(pod)
    spread = Counter(p.node for p in current if p.name not in gone)
    create: list[Create] = []
    unplaced: Unschedulable | None = None
    for _ in range(decided.create):
        node = ctx.scheduler.place(template, spread)
        if isinstance(node, Unschedulable):
            unplaced = node
            break
        spread[node] += 1
        name = f"{dep.name}-{template.template_hash}-{ctx.names()}"
        while name in ctx.taken:  # a suffix may repeat; a pod name must not
            name = f"{dep.name}-{template.template_hash}-{ctx.names()}"
        ctx.taken.add(name)
        create.append(Create(template, name, node, Why.OUTDATED if old else Why.MISSING))
    pending = None
    if unplaced is not None:
        pending = Pending(dep.namespace, dep.name, decided.create - len(create), unplaced.reason)
    return create, restart, remove, keep, decided.waiting, pending


@dataclass(frozen=True)
class RestartPolicy:
    """Which containers to restart now: exited ones, and running ones that failed liveness or
    startup (``unhealthy``: id -> reason), each once its back-off (``not_before``) allows."""

    unhealthy: Mapping[str, str] = field(default_factory=dict)
    not_before: Mapping[str, float] = field(default_factory=dict)

    def pending(self, pod: PodInfo) -> list[tuple[str, bool, str]]:
        out = []
        for c in pod.app_containers():
            if c.state in ("exited", "created", "dead"):
                out.append((c.id, False, f"{Why.EXITED}: {c.status}"))
            elif c.state == "running" and c.id in self.unhealthy:
                out.append((c.id, True, self.unhealthy[c.id]))
        return out

    def due(self, pod: PodInfo, now: float) -> Restart | None:
        ready = [p for p in self.pending(pod) if self.not_before.get(p[0], now) <= now]
        if not ready:
            return None
        return Restart(
            pod,
            tuple(cid for cid, _, _ in ready),
            "; ".join(why for _, _, why in ready),
            tuple(cid for cid, running, _ in ready if running),
        )

    def next_wake(self, pods: Sequence[PodInfo], now: float) -> float | None:
        times = [
            self.not_before[cid]
            for pod in pods
            for cid, _, _ in self.pending(pod)
            if self.not_before.get(cid, now) > now
        ]
        return min(times, default=None)


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
) -> Plan:
    """``nodes``: names, or what the scheduler knows of each (readiness, cordon, drain,
    capacity, labels). ``evicted``: pods of a node that was lost and evicted; they are replaced,
    and removed when their node answers again."""
    views = {v.name: v for v in (NodeView(n) if isinstance(n, str) else n for n in nodes)}
    ready = sorted(n for n, v in views.items() if v.ready)
    stale = [p for p in live.pods if p.name in evicted]
    pods = [p for p in live.pods if p.name not in evicted]
    ctx = _Deciding(
        nodes=views,
        scheduler=Scheduler(list(views.values()), pods),
        names=names or random_suffix(),
        taken={p.name for p in live.pods},
        readiness=default_readiness(live) if readiness is None else readiness,
        now=now,
        restarts=restarts or RestartPolicy(),
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
    for dep in desired.deployments:
        c, rs, rm, k, wait, pend = _plan_deployment(dep, by_key.get(dep.key, []), ctx)
        create += c
        restart += rs
        remove += rm
        keep += k
        if wait:
            waiting.append(dep.key)
        if pend is not None:
            pending.append(pend)
    wanted = {d.key for d in desired.deployments}
    for key in sorted(by_key.keys() - wanted):
        doomed = by_key[key]
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
    return Plan(
        commit=desired.commit,
        create=tuple(create),
        restart=tuple(restart),
        remove=tuple(remove),
        keep=tuple(keep),
        networks_create=net_create,
        networks_remove=net_remove,
        waiting=tuple(waiting),
        wake_at=ctx.restarts.next_wake(keep, now),
        pending=tuple(pending),
    )
