"""How many replicas a HorizontalPodAutoscaler asks for, from its metrics: Kubernetes' replica
calculator (``pkg/controller/podautoscaler/replica_calculator.go``), on plain data.

Pure. In: the autoscaler's spec (``Autoscaler``), the target's current scale and, per metric,
the samples of its pods (``PodSample``) or an object's value. Out: a ``Proposal`` per metric,
and the largest of them (``propose``); ``gitops.decide.scaling`` then stabilizes it and limits
its rate. As Kubernetes counts them:

- ``desired = ceil(current * metric / target)``, unchanged within the tolerance (10 %);
- a Resource utilization is of the pods' requests, summed over their containers;
- pods being deleted or failed are left out; for CPU, pods not ready yet (or sampled before
  their readiness settled) are left out too, and a pending one always;
- a pod with no sample counts, when the rest would scale down, as using the target (100 % of
  its request at least), and when the rest would scale up, as using nothing; with unready pods
  on a scale up, those count as using nothing. A result that would then change direction, or
  fall within the tolerance, keeps the current count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

TOLERANCE = 0.1
CPU_INITIALIZATION = 300.0  # seconds after a pod starts when its CPU samples may be skewed
READINESS_DELAY = 30.0  # seconds after a start within which a first unreadiness is ignored
SAMPLE_WINDOW = 1.0  # seconds a sample spans (the engine's stats: one second)


@dataclass(frozen=True)
class PodSample:
    """One pod of the target, as the metric sees it. Values, requests and targets are in
    milli-units as Kubernetes counts them (CPU in millicores, memory in thousandths of a byte),
    and averages are whole milli-units."""

    name: str
    value: float | None  # the metric's value for this pod (None: no sample)
    request: float | None = None  # its containers' summed request (None: one sets none)
    phase: str = "Running"  # Running, Pending, Failed, or Deleting (being removed)
    ready: bool | None = True  # its Ready condition, None before it has one
    started: float | None = 0.0  # when it started
    ready_changed: float = 0.0  # when its Ready condition last changed
    sampled: float = 0.0  # when its sample was taken


@dataclass(frozen=True)
class Proposal:
    """What one metric asks for: ``replicas``, with the value it read (a utilization in percent
    of the requests for a Resource Utilization target, else the average or object value)."""

    replicas: int
    value: float
    utilization: int | None = None
    error: str = ""  # why the metric gave no proposal (``replicas`` is then meaningless)

    @property
    def valid(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class _Groups:
    ready: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def _group(pods: Sequence[PodSample], cpu: bool, now: float) -> _Groups:
    ready, unready, missing, ignored = 0, set(), set(), set()
    for p in pods:
        if p.phase in ("Deleting", "Failed"):
            ignored.add(p.name)
        elif p.phase == "Pending":
            unready.add(p.name)
        elif p.value is None:
            missing.add(p.name)
        elif cpu and _cpu_unready(p, now):
            unready.add(p.name)
        else:
            ready += 1
    return _Groups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _cpu_unready(p: PodSample, now: float) -> bool:
    if p.ready is None or p.started is None:
        return True
    if p.started + CPU_INITIALIZATION > now:  # still starting: skip unready or stale samples
        return not p.ready or p.sampled < p.ready_changed + SAMPLE_WINDOW
    # Long started: skip it only if it is unready and has never been ready.
    return not p.ready and p.started + READINESS_DELAY > p.ready_changed


def utilization(
    pods: Sequence[PodSample], target_percent: int, current: int, now: float, cpu: bool = True
) -> Proposal:
    """A Resource (or ContainerResource) metric with an ``Utilization`` target."""
    groups = _group(pods, cpu, now)
    left_out = groups.ignored | groups.unready
    counted = {p.name: p for p in pods if p.name not in left_out and p.value is not None}
    if not counted:
        return Proposal(current, 0.0, error="no metrics for any ready pod")
    lacking = [p.name for p in pods if p.name not in groups.ignored and not p.request]
    if lacking:
        return Proposal(current, 0.0, error=f"missing request for pod {sorted(lacking)[0]}")
    values = {n: float(p.value or 0.0) for n, p in counted.items()}
    requests = {p.name: float(p.request or 0.0) for p in pods}

    def ratio(vals: dict[str, float]) -> tuple[float, int]:
        used = int(sum(vals.values()) * 100 // sum(requests[n] for n in vals))  # whole percent
        return used / target_percent, used

    usage, percent = ratio(values)
    raw = Proposal(current, sum(values.values()) // len(values), percent)
    scale_up_with_unready = bool(groups.unready) and usage > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - usage) <= TOLERANCE:
            return raw
        return Proposal(math.ceil(usage * groups.ready), raw.value, percent)
    fallback = max(100, target_percent)  # a missing pod, on a scale down: at its target at least
    for name in groups.missing:
        if usage < 1.0:
            values[name] = requests[name] * fallback / 100
        elif usage > 1.0:
            values[name] = 0.0
    if scale_up_with_unready:
        values.update(dict.fromkeys(groups.unready, 0.0))
    new_usage, _ = ratio(values)
    return _settled(usage, new_usage, len(values), current, raw)


def average(
    pods: Sequence[PodSample], target: float, current: int, now: float, cpu: bool = False
) -> Proposal:
    """An ``AverageValue`` target over the pods: a Resource's (cpu, memory) or a Pods metric."""
    groups = _group(pods, cpu, now)
    left_out = groups.ignored | groups.unready
    values = {
        p.name: float(p.value) for p in pods if p.name not in left_out and p.value is not None
    }
    if not values:
        return Proposal(current, 0.0, error="no metrics for any ready pod")
    mean = sum(values.values()) // len(values)
    usage = mean / target
    raw = Proposal(current, mean)
    scale_up_with_unready = bool(groups.unready) and usage > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - usage) <= TOLERANCE:
            return raw
        return Proposal(math.ceil(usage * groups.ready), mean)
    for name in groups.missing:
        if usage < 1.0:
            values[name] = target
        elif usage > 1.0:
            values[name] = 0.0
    if scale_up_with_unready:
        values.update(dict.fromkeys(groups.unready, 0.0))
    new_usage = (sum(values.values()) // len(values)) / target
    return _settled(usage, new_usage, len(values), current, raw)


def _settled(usage: float, new_usage: float, counted: int, current: int, raw: Proposal) -> Proposal:
    """After the missing and unready pods were given their fallback values: the current count
    when the change is within the tolerance or would change direction."""
    if abs(1.0 - new_usage) <= TOLERANCE or (usage < 1.0 < new_usage) or (usage > 1.0 > new_usage):
        return raw
    replicas = math.ceil(new_usage * counted)
    if (new_usage < 1.0 and replicas > current) or (new_usage > 1.0 and replicas < current):
        return raw
    return Proposal(replicas, raw.value, raw.utilization)


def object_value(value: float, target: float, current: int, ready: int) -> Proposal:
    """An Object metric with a ``Value`` target: its value over the target, times the ready
    pods."""
    if target <= 0:
        return Proposal(current, value, error="the target value is not positive")
    usage = value / target
    if current == 0:
        return Proposal(math.ceil(usage), value)
    if abs(1.0 - usage) <= TOLERANCE:
        return Proposal(current, value)
    return Proposal(math.ceil(usage * ready), value)


def object_average(value: float, target: float, current: int) -> Proposal:
    """An Object metric with an ``AverageValue`` target: its value shared by the replicas."""
    if target <= 0 or current <= 0:
        return Proposal(current, value, error="the target value is not positive")
    usage = value / (target * current)
    per_pod = math.ceil(value / current)
    if abs(1.0 - usage) <= TOLERANCE:
        return Proposal(current, per_pod)
    return Proposal(math.ceil(value / target), per_pod)


@dataclass(frozen=True)
class Proposed:
    """The metrics' joint proposal: the largest valid one, and the metric that made it."""

    replicas: int
    metric: str  # its name as Kubernetes' events say it ("cpu resource utilization ...")
    errors: tuple[str, ...]  # each invalid metric's reason
    invalid: bool  # every metric invalid: no scaling


def propose(proposals: Sequence[tuple[str, Proposal]], current: int) -> Proposed:
    """The largest proposal; when some metric is invalid and the rest would scale down, the
    current count (a metric that cannot be read must not let the others shrink the target)."""
    errors = tuple(f"{name}: {p.error}" for name, p in proposals if not p.valid)
    valid = [(name, p) for name, p in proposals if p.valid]
    if not valid:
        return Proposed(current, "", errors, True)
    name, best = max(valid, key=lambda x: x[1].replicas)
    if errors and best.replicas < current:
        return Proposed(current, name, errors, False)
    return Proposed(best.replicas, name, errors, False)
