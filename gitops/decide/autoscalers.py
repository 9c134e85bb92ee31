"""One HorizontalPodAutoscaler's decision, from the manifest and a sample of the nodes.

Pure. In: an ``Autoscaler`` (read from the commit: ``autoscalers_of``), its target's current
scale, the target's live pods, their containers' usage (the engines' stats: millicores,
bytes), their readiness, and what the autoscaler remembers. Out: the next ``Scale``
(``gitops.decide.scaling``) and what each metric read, for status and ``get hpa``. The
arithmetic is ``gitops.decide.autoscale``; this module pairs pods with their samples and
requests, as the metrics-server and the HPA controller together do.

Gitops reads container CPU and memory; a Pods or Object metric and an External one are not
read yet, and say so in the autoscaler's conditions (Kubernetes without a metrics adapter does
the same).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from gitops.decide import autoscale as calc
from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.health import PodReadiness
from gitops.decide.scaling import (
    SCALE_DOWN,
    SCALE_UP,
    Condition,
    Memory,
    Policy,
    Rules,
    Scale,
    decide,
)
from gitops.decide.status import ResourceStatus
from gitops.manifests import autoscaling as a
from gitops.manifests.quantity import parse_quantity
from gitops.model.live import PodInfo
from gitops.model.verdicts import Health

Usage = Mapping[str, tuple[int, int]]  # container id -> (CPU millicores, working-set bytes)


@dataclass(frozen=True)
class Autoscaler:
    namespace: str
    name: str
    target_kind: str
    target: str
    low: int  # minReplicas
    high: int  # maxReplicas
    metrics: tuple[a.MetricSpec, ...]
    up: Rules
    down: Rules
    origin: str  # file:doc, for messages

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def target_key(self) -> tuple[str, str]:
        return (self.namespace, self.target)


@dataclass(frozen=True)
class MetricRead:
    """One metric as status shows it: ``current``/``target`` (kubectl's TARGETS)."""

    name: str  # cpu, memory, or the metric's name
    type: str  # Resource, ContainerResource, Pods, Object, External
    target_type: str  # Utilization, AverageValue, Value
    current: str  # "45%", "120m", "<unknown>"
    target: str  # "50%", "500m"
    value: float | None  # the current value as a number (percent, or milli-units)
    goal: float | None = None  # the target as a number, alike


@dataclass(frozen=True)
class Found:
    """What an autoscaler found at its last sample (Kubernetes' HPA status)."""

    current: int  # the target's scale it read
    desired: int  # the scale it decided
    metrics: tuple[MetricRead, ...]
    conditions: tuple[Condition, ...]
    sampled: float
    last_scale: float = 0.0  # when it last changed the scale (0: never)
    reason: str = ""  # why, as its SuccessfulRescale event says


def autoscalers_of(desired: DesiredState) -> tuple[Autoscaler, ...]:
    out = []
    for entry in desired.manifests.of(a.HorizontalPodAutoscaler):
        spec = entry.resource.spec
        behavior = spec.behavior
        out.append(Autoscaler(
            entry.namespace, entry.name, spec.scale_target_ref.kind, spec.scale_target_ref.name,
            spec.min_replicas, spec.max_replicas, tuple(spec.measured),
            _rules(behavior.scale_up if behavior else None, SCALE_UP),
            _rules(behavior.scale_down if behavior else None, SCALE_DOWN),
            f"{entry.path}:{entry.doc}",
        ))  # fmt: skip
    return tuple(out)


def _rules(given: a.HPAScalingRules | None, default: Rules) -> Rules:
    """Kubernetes' defaulting: what a direction does not say, its default says."""
    if given is None:
        return default
    window = given.stabilization_window_seconds
    policies = tuple(Policy(p.type, p.value, p.period_seconds) for p in given.policies or ())
    return Rules(default.window if window is None else window, given.select_policy,
                 policies or default.policies)  # fmt: skip


def owned(desired: DesiredState) -> dict[tuple[str, str], str]:
    """The workloads whose replicas an autoscaler owns: (namespace, name) -> its name."""
    return {s.target_key: s.name for s in autoscalers_of(desired)
            if desired.deployment(*s.target_key) is not None}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """A look at the nodes for the autoscalers: the pods, their usage, their readiness."""

    pods: Sequence[PodInfo]
    usage: Usage
    readiness: Mapping[str, PodReadiness]  # pod name -> ready, since when
    ready: Callable[[PodInfo], bool]  # as the reconciler judges a pod ready
    sampled: float  # when the usage was read
    leaving: frozenset[str] = frozenset()  # pods being removed


def evaluate(
    scaler: Autoscaler,
    workload: DesiredDeployment,
    current: int,
    sample: Sample,
    memory: Memory,
    now: float,
    quota: tuple[int, str] | None = None,
) -> tuple[Scale, tuple[MetricRead, ...]]:
    """``quota``: how many pods of the target its namespace's quota allows (``quota.room``)."""
    pods = [p for p in sample.pods
            if (p.namespace, p.deployment) == scaler.target_key]  # fmt: skip
    proposals, reads = [], []
    for metric in scaler.metrics:
        name, proposal, read = _one(metric, workload, pods, current, sample, now)
        proposals.append((name, proposal))
        reads.append(read)
    proposed = calc.propose(proposals, current) if pods else None
    return decide(proposed, current, scaler.low, scaler.high, scaler.up, scaler.down, memory,
                  now, quota), tuple(reads)  # fmt: skip


def _one(
    metric: a.MetricSpec,
    workload: DesiredDeployment,
    pods: Sequence[PodInfo],
    current: int,
    sample: Sample,
    now: float,
) -> tuple[str, calc.Proposal, MetricRead]:
    target = metric.target
    assert target is not None  # checked at validation
    if metric.type not in ("Resource", "ContainerResource"):
        label = metric.source.metric.name if metric.source is not None else metric.type
        why = (f"gitops does not read {metric.type} metrics"
               + (" (no external metrics on a Docker host)" if metric.type == "External"
                  else " yet"))  # fmt: skip
        shown = _target_text(target)
        read = MetricRead(label, metric.type, target.type, "<unknown>", shown, None, _goal(target))
        return f"{metric.type.lower()} metric {label}", calc.Proposal(current, 0, error=why), read
    source = metric.resource or metric.container_resource
    assert source is not None
    resource, container = source.name, getattr(source, "container", None)
    cpu = resource == "cpu"
    samples = [_pod_sample(p, workload, resource, container, sample) for p in pods]
    kind = "container resource" if container else "resource"
    if target.type == "Utilization":
        percent = int(target.average_utilization or 0)
        proposal = calc.utilization(samples, percent, current, now, cpu)
        name = f"{resource} {kind} utilization (percentage of request)"
        shown = f"{proposal.utilization}%" if proposal.valid else "<unknown>"
        read = MetricRead(resource, metric.type, target.type, shown, f"{percent}%",
                          proposal.utilization if proposal.valid else None, percent)  # fmt: skip
        return name, proposal, read
    goal = _goal(target) or 0.0  # milli-units
    proposal = calc.average(samples, goal, current, now, cpu)
    shown = _milli(proposal.value, cpu) if proposal.valid else "<unknown>"
    read = MetricRead(resource, metric.type, target.type, shown, _milli(goal, cpu),
                      proposal.value if proposal.valid else None, goal)  # fmt: skip
    return f"{resource} {kind}", proposal, read


def _pod_sample(
    pod: PodInfo, workload: DesiredDeployment, resource: str, container: str | None,
    sample: Sample,
) -> calc.PodSample:  # fmt: skip
    apps = [c for c in pod.app_containers() if container is None or c.meta.container == container]
    specs = {c.name: c for c in workload.template.containers}
    value: float | None = 0.0
    for c in apps:
        used = sample.usage.get(c.id)
        if used is None:
            value = None
            break
        value = (value or 0.0) + (used[0] if resource == "cpu" else used[1] * 1000)
    requests = []
    for c in apps:
        spec = specs.get(c.meta.container)
        got = None if spec is None else (
            spec.cpu_request_millis if resource == "cpu" else
            (spec.memory_request * 1000 if spec.memory_request is not None else None))  # fmt: skip
        requests.append(got)
    request = None if not requests or None in requests else float(sum(r or 0 for r in requests))
    states = {c.state for c in pod.app_containers()}
    phase = (
        "Deleting" if pod.name in sample.leaving
        else "Running" if states == {"running"}
        else "Pending" if not states or states & {"created", "restarting", ""}
        else "Failed"
    )  # fmt: skip
    known = sample.readiness.get(pod.name)
    ready = sample.ready(pod)
    return calc.PodSample(
        pod.name, value if apps else None, request, phase, ready, pod.created or None,
        known.since if known is not None and known.ready == ready else pod.created,
        sample.sampled,
    )  # fmt: skip


def _milli(value: float, cpu: bool) -> str:
    """A milli-unit value as kubectl shows it: CPU in millicores, memory in bytes (Mi, Ki)."""
    if cpu:
        return f"{round(value)}m"
    size = value / 1000
    for unit, factor in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.0f}{unit}"
    return f"{size:.0f}"


def _goal(target: a.MetricTarget) -> float | None:
    """A target as a number: a percent, else milli-units."""
    if target.type == "Utilization":
        return float(target.average_utilization or 0)
    given = target.average_value if target.type == "AverageValue" else target.value
    return float(parse_quantity(given) * 1000) if given is not None else None


def _target_text(target: a.MetricTarget) -> str:
    if target.type == "Utilization":
        return f"{target.average_utilization}%"
    return str(target.average_value if target.type == "AverageValue" else target.value)


def with_status(
    resources: Sequence[ResourceStatus],
    desired: DesiredState,
    starting: Mapping[tuple[str, str], int],
    found: Mapping[tuple[str, str], Found],
) -> tuple[ResourceStatus, ...]:
    """Each autoscaler's status (Degraded while it cannot compute a scale, as Argo CD judges
    it), and its target's message saying whose its replicas are: the manifest's count is the
    starting point, not a drift. ``starting``: each workload's manifest count."""
    scalers = {s.key: s for s in autoscalers_of(desired)}
    targets = {s.target_key: s for s in scalers.values()}
    out = []
    for r in resources:
        key = (r.namespace, r.name)
        if r.kind == "HorizontalPodAutoscaler" and key in scalers:
            out.append(_scaler_status(r, scalers[key], found.get(key)))
        elif key in targets and r.kind == targets[key].target_kind:
            note = (f"replicas from HorizontalPodAutoscaler {targets[key].name} (the "
                    f"manifest's {starting.get(key, 0)} is its starting point)")  # fmt: skip
            out.append(replace(r, message=f"{r.message}; {note}" if r.message else note))
        else:
            out.append(r)
    return tuple(out)


def _scaler_status(r: ResourceStatus, s: Autoscaler, f: Found | None) -> ResourceStatus:
    if f is None:
        return replace(r, message=f"scales {s.target_kind}/{s.target} ({s.low} to {s.high}); "
                       "not sampled yet")  # fmt: skip
    targets = ", ".join(f"{m.name}: {m.current}/{m.target}" for m in f.metrics)
    message = f"{s.target_kind}/{s.target}: {f.desired} replica(s) ({s.low} to {s.high}); {targets}"
    broken = next((c for c in f.conditions if c.type == "ScalingActive" and not c.status
                   and c.reason != "ScalingDisabled"), None)  # fmt: skip
    if broken is not None:
        return replace(r, health=Health.DEGRADED, message=f"{message}; {broken.message}",
                       reason=broken.reason)  # fmt: skip
    return replace(r, message=message)
