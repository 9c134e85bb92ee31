"""From the metrics' proposal to the autoscaler's next scale: Kubernetes' ``behavior``
(stabilization windows, scaling policies, ``selectPolicy``), ``minReplicas``/``maxReplicas``,
and the conditions and reason it reports (``pkg/controller/podautoscaler/horizontal.go``).

Pure. In: the proposal (``gitops.decide.autoscale.propose``), the current scale, the spec's
bounds and behavior, and what the autoscaler remembers (``Memory``: its recent
recommendations and scale changes). Out: a ``Scale``: the replicas, the conditions, the new
memory. The clock is the caller's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from gitops.decide.autoscale import Proposed

PODS, PERCENT = "Pods", "Percent"
MAX, MIN, DISABLED = "Max", "Min", "Disabled"


@dataclass(frozen=True)
class Policy:
    type: str  # Pods or Percent
    value: int
    period: int  # seconds


@dataclass(frozen=True)
class Rules:
    """One direction's ``HPAScalingRules``."""

    window: int  # stabilizationWindowSeconds
    select: str = MAX
    policies: tuple[Policy, ...] = ()


# Kubernetes' defaults: up at once, by 4 pods or double (whichever is more) every 15 s; down
# after 300 s of lower recommendations, to any count every 15 s.
SCALE_UP = Rules(0, MAX, (Policy(PERCENT, 100, 15), Policy(PODS, 4, 15)))
SCALE_DOWN = Rules(300, MAX, (Policy(PERCENT, 100, 15),))


@dataclass(frozen=True)
class Memory:
    """What an autoscaler remembers between decisions (Kubernetes keeps it in the controller):
    each recommendation with its time, and each scale change (+ up, - down) with its time."""

    recommendations: tuple[tuple[float, int], ...] = ()
    changes: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class Condition:
    type: str  # AbleToScale, ScalingActive, ScalingLimited
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Scale:
    replicas: int
    reason: str  # the rescale's reason as its event says it ("" when the scale holds)
    conditions: tuple[Condition, ...]
    memory: Memory = field(default_factory=Memory)


def failing(conditions: tuple[Condition, ...]) -> Condition | None:
    """The condition saying no scale could be computed (ScalingActive false, not because the
    target was scaled to zero), if one does."""
    return next((c for c in conditions if c.type == "ScalingActive" and not c.status
                 and c.reason != "ScalingDisabled"), None)  # fmt: skip


def decide(
    proposed: Proposed | None,
    current: int,
    low: int,
    high: int,
    up: Rules,
    down: Rules,
    memory: Memory,
    now: float,
    quota: tuple[int, str] | None = None,
) -> Scale:
    """The next scale. ``proposed`` None: the metrics were not read (the target has no pods
    yet). ``low``/``high``: minReplicas/maxReplicas. ``quota``: how many pods of the target
    its namespace's ResourceQuota allows, and its name: a scale up stops there."""
    if current == 0 and low != 0:
        return Scale(0, "", (
            Condition("ScalingActive", False, "ScalingDisabled",
                      "scaling is disabled since the replica count of the target is zero"),
        ), memory)  # fmt: skip
    if current > high:
        return _clamped(high, current, memory, "Current number of replicas above Spec.MaxReplicas")
    if current < low:
        return _clamped(low, current, memory, "Current number of replicas below Spec.MinReplicas")
    if proposed is None or proposed.invalid:
        why = "; ".join(proposed.errors) if proposed else "no metrics were read yet"
        return Scale(current, "", (
            Condition("AbleToScale", True, "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale"),
            Condition("ScalingActive", False, "FailedGetResourceMetric",
                      f"the HPA was unable to compute the replica count: {why}"),
        ), memory)  # fmt: skip
    memory = _forget(memory, now, max(up.window, down.window), up, down)
    stabilized, stable_reason, stable_message, memory = _stabilize(
        proposed.replicas, current, up, down, memory, now
    )
    replicas, limit_reason, limit_message = _rate_limited(stabilized, current, low, high, up, down,
                                                          memory, now)  # fmt: skip
    able = (
        Condition("AbleToScale", True, stable_reason, stable_message)
        if stabilized != proposed.replicas
        else Condition("AbleToScale", True, "ReadyForNewScale",
                       "recommended size matches current size")
    )  # fmt: skip
    active = Condition("ScalingActive", True, "ValidMetricFound",
                       f"the HPA was able to successfully calculate a replica count from "
                       f"{proposed.metric}")  # fmt: skip
    limited = Condition("ScalingLimited", replicas != stabilized, limit_reason, limit_message)
    if quota is not None and replicas > current and replicas > quota[0]:
        replicas = max(current, quota[0])
        limited = Condition("ScalingLimited", True, "QuotaExceeded",
                            f"the desired replica count is more than the ResourceQuota "
                            f"{quota[1]} allows ({quota[0]})")  # fmt: skip
    reason = ""
    if replicas != current:
        reason = f"{proposed.metric} above target" if replicas > current else (
            "All metrics below target")  # fmt: skip
        memory = replace(memory, changes=(*memory.changes, (now, replicas - current)))
    return Scale(replicas, reason, (able, active, limited), memory)


def _clamped(replicas: int, current: int, memory: Memory, reason: str) -> Scale:
    limited = Condition("ScalingLimited", True, "TooManyReplicas" if replicas < current
                        else "TooFewReplicas", reason)  # fmt: skip
    return Scale(replicas, reason, (limited,), memory)


def _forget(memory: Memory, now: float, window: int, up: Rules, down: Rules) -> Memory:
    """Only what a window or a policy period still looks at is kept."""
    period = max((p.period for p in (*up.policies, *down.policies)), default=0)
    keep = max(window, period)
    return Memory(
        tuple(r for r in memory.recommendations if r[0] > now - keep - 1),
        tuple(c for c in memory.changes if c[0] > now - period - 1),
    )


def _stabilize(
    desired: int, current: int, up: Rules, down: Rules, memory: Memory, now: float
) -> tuple[int, str, str, Memory]:
    """Within the scale-up window the lowest recommendation, within the scale-down window the
    highest: the scale moves only as far as every recent recommendation agrees."""
    up_rec, down_rec = desired, desired
    for when, rec in memory.recommendations:
        if when > now - up.window:
            up_rec = min(up_rec, rec)
        if when > now - down.window:
            down_rec = max(down_rec, rec)
    stabilized = min(max(current, up_rec), down_rec)
    memory = replace(memory, recommendations=(*memory.recommendations, (now, desired)))
    if desired >= current:
        return stabilized, "ScaleUpStabilized", (
            "recent recommendations were lower than current one, applying the lowest recent "
            "recommendation"), memory  # fmt: skip
    return stabilized, "ScaleDownStabilized", (
        "recent recommendations were higher than current one, applying the highest recent "
        "recommendation"), memory  # fmt: skip


def _rate_limited(
    desired: int, current: int, low: int, high: int, up: Rules, down: Rules, memory: Memory,
    now: float,
) -> tuple[int, str, str]:  # fmt: skip
    if desired > current:
        limit = max(current, _up_limit(current, up, memory, now))
        if high > limit:
            allowed, reason, message = (
                limit,
                "ScaleUpLimit",
                ("the desired replica count is increasing faster than the maximum scale rate"),
            )
        else:
            allowed, reason, message = (
                high,
                "TooManyReplicas",
                ("the desired replica count is more than the maximum replica count"),
            )
        if desired > allowed:
            return allowed, reason, message
    elif desired < current:
        limit = min(current, _down_limit(current, down, memory, now))
        if low < limit:
            allowed, reason, message = (
                limit,
                "ScaleDownLimit",
                ("the desired replica count is decreasing faster than the maximum scale rate"),
            )
        else:
            allowed, reason, message = (
                low,
                "TooFewReplicas",
                ("the desired replica count is less than the minimum replica count"),
            )
        if desired < allowed:
            return allowed, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def _changed(memory: Memory, period: int, now: float) -> tuple[int, int]:
    """(replicas added, replicas removed) within the last ``period`` seconds."""
    recent = [c for when, c in memory.changes if when > now - period]
    return sum(c for c in recent if c > 0), -sum(c for c in recent if c < 0)


def _up_limit(current: int, rules: Rules, memory: Memory, now: float) -> int:
    if rules.select == DISABLED:
        return current
    proposals = []
    for p in rules.policies:
        added, removed = _changed(memory, p.period, now)
        start = current - added + removed  # the scale when the period began
        proposals.append(start + p.value if p.type == PODS
                         else math.ceil(start * (1 + p.value / 100)))  # fmt: skip
    if not proposals:
        return current
    return min(proposals) if rules.select == MIN else max(proposals)


def _down_limit(current: int, rules: Rules, memory: Memory, now: float) -> int:
    if rules.select == DISABLED:
        return current
    proposals = []
    for p in rules.policies:
        added, removed = _changed(memory, p.period, now)
        start = current - added + removed
        proposals.append(start - p.value if p.type == PODS
                         else int(start * (1 - p.value / 100)))  # fmt: skip
    if not proposals:
        return current
    return max(proposals) if rules.select == MIN else min(proposals)
