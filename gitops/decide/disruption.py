"""PodDisruptionBudgets: how many of the pods they select a voluntary disruption may take now,
and which of a drain's removals must wait for it.

Pure. The arithmetic is Kubernetes' disruption controller's (``getExpectedPodCount``): an
integer ``minAvailable`` is the healthy pods wanted out of the selected pods; a percentage of
it, or ``maxUnavailable``, scales the selected pods' workloads' replicas (rounded up).
``disruptionsAllowed`` is the healthy pods less the wanted ones, never below 0. Eviction
follows the eviction API: a healthy pod goes only while every budget selecting it allows one
more disruption; an unhealthy one while its budgets have their healthy pods (policy
``IfHealthyBudget``) or always (``AlwaysAllow``). Only a drain is a voluntary disruption here:
a rollout, a scale-down and a lost node are not held back, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gitops.decide.affinity import matches
from gitops.decide.health import PodReadiness
from gitops.decide.placement import selector
from gitops.decide.workloads.rollout import scaled_value
from gitops.manifests import Manifests
from gitops.manifests import model as m
from gitops.model.live import PodInfo
from gitops.model.templates import Requirement


@dataclass(frozen=True)
class Budget:
    namespace: str
    name: str
    selector: tuple[Requirement, ...]
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    always_allow_unhealthy: bool = False

    def selects(self, pod: PodInfo) -> bool:
        return pod.namespace == self.namespace and matches(self.selector, pod.labels())


@dataclass(frozen=True)
class BudgetStatus:
    """As a PodDisruptionBudget's status says it."""

    current_healthy: int
    desired_healthy: int
    expected_pods: int
    disruptions_allowed: int

    def describe(self) -> str:
        return (
            f"{self.disruptions_allowed} disruption(s) allowed: {self.current_healthy} healthy "
            f"of {self.expected_pods} expected, {self.desired_healthy} wanted"
        )


def budgets(manifests: Manifests) -> tuple[Budget, ...]:
    return tuple(
        Budget(
            e.namespace,
            e.name,
            selector(e.resource.spec.selector),
            e.resource.spec.min_available,
            e.resource.spec.max_unavailable,
            e.resource.spec.unhealthy_pod_eviction_policy == "AlwaysAllow",
        )
        for e in manifests.of(m.PodDisruptionBudget)
    )


def _healthy(pod: PodInfo, readiness: Mapping[str, PodReadiness]) -> bool:
    r = readiness.get(pod.name)
    return r is not None and r.ready


def status(
    budget: Budget,
    pods: Iterable[PodInfo],
    readiness: Mapping[str, PodReadiness],
    scale: Mapping[tuple[str, str], int],
) -> BudgetStatus:
    """``scale``: each workload's desired replicas, by (namespace, name)."""
    mine = [p for p in pods if budget.selects(p)]
    healthy = sum(1 for p in mine if _healthy(p, readiness))
    # The selected pods' workloads' replicas: what a percentage, or maxUnavailable, is of.
    owners = {(p.namespace, p.deployment) for p in mine}
    expected_scale = sum(scale.get(o, 0) for o in owners)
    if budget.max_unavailable is not None:
        expected = expected_scale
        wanted = max(0, expected - scaled_value(budget.max_unavailable, expected, round_up=True))
    elif isinstance(budget.min_available, int):
        expected, wanted = len(mine), budget.min_available
    elif budget.min_available is not None:
        expected = expected_scale
        wanted = scaled_value(budget.min_available, expected, round_up=True)
    else:  # neither: as minAvailable 1, policy/v1beta1's default
        expected, wanted = len(mine), 1
    allowed = healthy - wanted if expected > 0 else 0
    return BudgetStatus(healthy, wanted, expected, max(0, allowed))


@dataclass(frozen=True)
class Blocked:
    """A drain's removal that must wait: the budget would be broken by it."""

    namespace: str
    pod: str
    deployment: str
    budget: str
    reason: str


def admit(
    removals: Sequence[PodInfo],
    all_budgets: Sequence[Budget],
    pods: Sequence[PodInfo],
    readiness: Mapping[str, PodReadiness],
    scale: Mapping[tuple[str, str], int],
) -> tuple[list[PodInfo], list[Blocked]]:
    """Which of a drain's ``removals`` may go now (the rest are ``Blocked``), taken in order,
    each admitted one using up a disruption of every budget that selects it."""
    left = {
        (b.namespace, b.name): status(b, pods, readiness, scale) for b in all_budgets
    }  # fmt: skip
    allowed = {k: s.disruptions_allowed for k, s in left.items()}
    admitted: list[PodInfo] = []
    blocked: list[Blocked] = []
    for pod in removals:
        mine = [b for b in all_budgets if b.selects(pod)]
        healthy = _healthy(pod, readiness)
        stop = next((b for b in mine if not _may_go(b, healthy, allowed, left)), None)
        if stop is None:
            admitted.append(pod)
            if healthy:
                for b in mine:
                    allowed[(b.namespace, b.name)] -= 1
            continue
        st = left[(stop.namespace, stop.name)]
        blocked.append(
            Blocked(
                pod.namespace,
                pod.name,
                pod.deployment,
                stop.name,
                f"Cannot evict pod as it would violate the pod's disruption budget "
                f"{stop.namespace}/{stop.name} ({st.describe()})",
            )
        )
    return admitted, blocked


def _may_go(
    b: Budget,
    healthy: bool,
    allowed: Mapping[tuple[str, str], int],
    left: Mapping[tuple[str, str], BudgetStatus],
) -> bool:
    key = (b.namespace, b.name)
    if healthy:
        return allowed[key] > 0
    st = left[key]
    return b.always_allow_unhealthy or st.current_healthy >= st.desired_healthy
