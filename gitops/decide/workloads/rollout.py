"""Rollout step logic for one Deployment: how many pods to create and which to remove now.

Pure. In: the desired deployment, its live pods, and each pod's readiness (``PodReadiness``,
from the health stage) at ``now``. Out: ``Step`` (pods to create, pods to remove, and why).
The arithmetic is Kubernetes' deployment controller's, so a Deployment behaves as users know:

- RollingUpdate: at most ``replicas + maxSurge`` pods exist, and pods are removed only while at
  least ``replicas - maxUnavailable`` stay available (Ready for ``minReadySeconds``).
  ``maxSurge`` percentages round up, ``maxUnavailable`` percentages round down, and when both
  come to 0 ``maxUnavailable`` is 1 (``ResolveFenceposts``).
- Recreate: every old pod goes first; new pods are created once none is left.

Old pods that are not available are removed first: they serve nobody.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from gitops.decide.actions import Why
from gitops.decide.desired import DesiredDeployment
from gitops.decide.health import PodReadiness
from gitops.model.live import PodInfo
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Rollout


@dataclass(frozen=True)
class Step:
    create: int
    remove: tuple[tuple[PodInfo, str], ...]
    waiting: bool  # old pods remain that this step may not remove yet


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """An int, or a percentage of ``total`` rounded as Kubernetes rounds it."""
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def fenceposts(dep: DesiredDeployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as absolute pod counts."""
    surge = scaled_value(dep.max_surge, dep.replicas, round_up=True)
    unavailable = scaled_value(dep.max_unavailable, dep.replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _available(
    pod: PodInfo, readiness: Mapping[str, PodReadiness], dep: DesiredDeployment, now: float
) -> bool:
    r = readiness.get(pod.name)
    return r is not None and r.ready and now - r.since >= dep.min_ready_seconds


def settled(
    dep: DesiredDeployment,
    template_hash: str,
    pods: Iterable[PodInfo],
    readiness: Mapping[str, PodReadiness],
    now: float,
) -> bool:
    """Whether the pods of ``template_hash`` are at least ``replicas`` and all available: its
    rollout had completed, even if no pass recorded it before a newer template arrived."""
    mine = [p for p in pods if p.template_hash == template_hash]
    return len(mine) >= dep.replicas and all(_available(p, readiness, dep, now) for p in mine)


def _rank(pod: PodInfo, readiness: Mapping[str, PodReadiness]) -> tuple[int, float, str]:
    # Keep the ready and the oldest: they have proven themselves.
    r = readiness.get(pod.name)
    return (0 if r is not None and r.ready else 1, pod.created, pod.name)


def step(
    dep: DesiredDeployment,
    current: list[PodInfo],
    old: list[PodInfo],
    readiness: Mapping[str, PodReadiness],
    now: float,
) -> Step:
    """One step of a rollout. ``current`` are complete pods of the desired template."""

    def avail(p: PodInfo) -> bool:
        return _available(p, readiness, dep, now)

    remove: list[tuple[PodInfo, str]] = []
    replicas = dep.replicas
    current = sorted(current, key=lambda p: _rank(p, readiness))
    if len(current) > replicas:  # scaling down: drop the not-ready and the youngest first
        remove += [(p, Why.SURPLUS) for p in current[replicas:]]
        current = current[:replicas]
    if dep.strategy == "Recreate":
        if old:
            return Step(0, tuple(remove) + tuple((p, Why.OUTDATED) for p in old), False)
        return Step(replicas - len(current), tuple(remove), False)

    surge, unavailable = fenceposts(dep)
    total = len(current) + len(old)
    if not old:
        return Step(_room(dep, surge, total, len(current)), tuple(remove), False)

    min_available = replicas - unavailable
    new_unavailable = sum(1 for p in current if not avail(p))
    budget = total - min_available - new_unavailable  # Kubernetes' maxScaledDown
    old_sorted = sorted(old, key=lambda p: _rank(p, readiness), reverse=True)
    removed: list[PodInfo] = []
    for pod in old_sorted:  # unavailable old pods first: removing them costs no availability
        if budget <= 0:
            break
        if not avail(pod):
            removed.append(pod)
            remove.append((pod, Why.UNHEALTHY_OLD))
            budget -= 1
    available = sum(1 for p in current + old if avail(p) and p not in removed)
    can_remove = min(budget, available - min_available)
    for pod in old_sorted:
        if can_remove <= 0:
            break
        if pod not in removed and avail(pod):
            removed.append(pod)
            remove.append((pod, Why.OUTDATED))
            can_remove -= 1
    # A pod being stopped no longer counts, as Kubernetes does not count a terminating pod:
    # its replacement starts in the same pass instead of one pass later.
    create = _room(dep, surge, total - len(removed), len(current))
    return Step(create, tuple(remove), len(removed) < len(old))


def _room(dep: DesiredDeployment, surge: int, total: int, current: int) -> int:
    """New pods to create: up to ``replicas + maxSurge`` pods in all, ``replicas`` new ones."""
    return max(0, min(dep.replicas + surge - total, dep.replicas - current))


@dataclass(frozen=True)
class Counts:
    desired: int
    current: int
    updated: int
    available: int


# Why a rollout failed: the reason names in rollout records, events and status.
DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
NEW_POD_FAILED: Final = "NewPodFailed"


def assess(
    latest: RolloutRecord | None,
    template_hash: str,
    counts: Counts,
    last_progress: float,
    deadline: int,
    now: float,
    broken: str = "",
) -> tuple[str, str]:
    """What happens to the deployment's rollout record now (start, complete, fail or none),
    and for a failure its reason. ``broken``: why a pod of the new template has failed, given
    only for a fail-fast deployment; such a rollout fails at once instead of at its deadline."""
    if latest is None or latest.template_hash != template_hash:
        return "start", ""
    if latest.result != Rollout.PROGRESSING:
        return "none", ""
    done = counts.updated == counts.desired == counts.current and counts.available >= counts.desired
    if done:
        return "complete", ""
    if broken:
        return "fail", NEW_POD_FAILED
    if now - last_progress > deadline:
        return "fail", DEADLINE_EXCEEDED
    return "none", ""


class ProgressClock:
    """When each deployment's rollout last made progress (more pods updated or available).

    ``progressDeadlineSeconds`` counts from there, as in Kubernetes."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[str, tuple[int, int], float]] = {}

    def update(self, key: tuple[str, str], template_hash: str, counts: Counts, now: float) -> float:
        progress = (counts.updated, counts.available)
        before = self._seen.get(key)
        if before is None or before[0] != template_hash:
            self._seen[key] = (template_hash, progress, now)
            return now
        _, best, last = before
        if progress[0] > best[0] or progress[1] > best[1]:
            self._seen[key] = (
                template_hash,
                (max(progress[0], best[0]), max(progress[1], best[1])),
                now,
            )
            return now
        return last
