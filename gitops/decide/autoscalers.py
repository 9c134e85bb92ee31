"""One HorizontalPodAutoscaler's decision, from the manifest and a sample of the nodes.

Pure. In: an ``Autoscaler`` (read from the commit: ``autoscalers_of``), its target's current
scale, the target's live pods, their containers' usage (the engines' stats: millicores,
bytes), their readiness, and what the autoscaler remembers. Out: the next ``Scale``
(``gitops.decide.scaling``) and what each metric read, for status and ``get hpa``. The
arithmetic is ``gitops.decide.autoscale``; this module pairs pods with their samples and
requests, as the metrics-server and the HPA controller together do.

Gitops reads container CPU and memory, and, for a Pods or Object metric named
``requests-per-second`` (or ``http_requests``, as prometheus-adapter setups name it), the
request rate its own Service proxy sent each pod (``request_rates``: HTTP answers through an
Ingress, connections through a Service's port): a pod's own (Pods), a Service's or an
Ingress's pods' together (Object). An External metric is not read on a Docker host, and says
so in the autoscaler's conditions (Kubernetes without a metrics adapter does the same).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from gitops.decide import autoscale as calc
from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.endpoints import PortEndpoints
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
    failing,
)
from gitops.decide.status import ResourceStatus
from gitops.manifests import autoscaling as a
from gitops.manifests import model as m
from gitops.manifests.quantity import parse_quantity
from gitops.model.live import PodInfo
from gitops.model.verdicts import Health

Usage = Mapping[str, tuple[int, int]]  # container id -> (CPU millicores, working-set bytes)
TRAFFIC = ("requests-per-second", "requests_per_second", "http_requests",
           "http_requests_per_second")  # the metric names of the proxy's request rate  # fmt: skip


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


@dataclass(frozen=True)
class Sample:
    """A look at the nodes for the autoscalers: the pods, their usage, their readiness."""

    pods: Sequence[PodInfo]
    usage: Usage
    readiness: Mapping[str, PodReadiness]  # pod name -> ready, since when
    ready: Callable[[PodInfo], bool]  # as the reconciler judges a pod ready
    sampled: float  # when the usage was read
    leaving: frozenset[str] = frozenset()  # pods being removed
    rates: Mapping[str, float] | None = None  # pod name -> requests a second (None: not read)
    routed: Mapping[tuple[str, str, str], frozenset[str]] | None = None  # (Kind, ns, name) ->
    # the pods a Service or an Ingress sends to


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
    if metric.type in ("Pods", "Object"):
        return _traffic(metric, workload.namespace, pods, current, sample, now)
    if metric.type == "External":
        label = metric.source.metric.name if metric.source is not None else metric.type
        read = MetricRead(label, metric.type, target.type, "<unknown>", _target_text(target),
                          None, _goal(target))  # fmt: skip
        why = "gitops reads no external metrics: a Docker host has no external metrics API"
        return f"external metric {label}", calc.Proposal(current, 0, error=why), read
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


def _traffic(
    metric: a.MetricSpec, namespace: str, pods: Sequence[PodInfo], current: int, sample: Sample,
    now: float,
) -> tuple[str, calc.Proposal, MetricRead]:  # fmt: skip
    """A Pods or Object metric: the proxy's request rate, in milli-requests a second."""
    source, target = metric.source, metric.target
    assert source is not None and target is not None
    name = source.metric.name
    goal = _goal(target) or 0.0
    label = (f"pods metric {name}" if metric.type == "Pods" else
             f"{source.described_object.kind} metric {name}")  # fmt: skip

    def answer(proposal: calc.Proposal) -> tuple[str, calc.Proposal, MetricRead]:
        shown = f"{proposal.value / 1000:g}" if proposal.valid else "<unknown>"
        read = MetricRead(name, metric.type, target.type, shown, _target_text(target),
                          proposal.value if proposal.valid else None, goal)  # fmt: skip
        return label, proposal, read

    if name not in TRAFFIC:
        return answer(calc.Proposal(current, 0, error=f"gitops serves the metric "
                                    f"requests-per-second (its proxy's request rate), not "
                                    f"{name[:63]!r}"))  # fmt: skip
    rates = sample.rates
    if rates is None:
        return answer(calc.Proposal(current, 0, error="no request rate yet: it is the change "
                                    "between two samples of the proxy's counts"))  # fmt: skip
    if metric.type == "Pods":
        samples = [calc.PodSample(p.name, rates[p.name] * 1000 if p.name in rates else None,
                                  phase=_phase(p, sample), ready=sample.ready(p),
                                  started=p.created or None, sampled=sample.sampled)
                   for p in pods]  # fmt: skip
        return answer(calc.average(samples, goal, current, now))
    ref = source.described_object
    wanted = (ref.kind, namespace, ref.name)
    served = (sample.routed or {}).get(wanted)
    if served is None:
        return answer(calc.Proposal(current, 0, error=f"gitops reads the request rate of a "
                                    f"Service or an Ingress of the namespace, not {ref.kind} "
                                    f"{ref.name[:63]}"))  # fmt: skip
    value = sum(rates.get(p, 0.0) for p in served) * 1000
    if target.type == "AverageValue":
        return answer(calc.object_average(value, goal, current))
    ready = sum(1 for p in pods if sample.ready(p))
    return answer(calc.object_value(value, goal, current, ready))


def _phase(pod: PodInfo, sample: Sample) -> str:
    states = {c.state for c in pod.app_containers()}
    return (
        "Deleting" if pod.name in sample.leaving
        else "Running" if states == {"running"}
        else "Pending" if not states or states & {"created", "restarting", ""}
        else "Failed"
    )  # fmt: skip


def request_rates(
    before: Mapping[str, tuple[float, int]], totals: Mapping[str, int], now: float
) -> tuple[dict[str, float], dict[str, tuple[float, int]]]:
    """Requests a second per key (a pod's IP) between the last sample's counts and these, and
    the counts to keep for the next. A count that went down (a proxy worker replaced) counts
    from zero, as Prometheus' ``rate`` reads a reset."""
    rates = {}
    for key, total in totals.items():
        seen = before.get(key)
        if seen is not None and now > seen[0]:
            gained = total - seen[1] if total >= seen[1] else total
            rates[key] = gained / (now - seen[0])
    return rates, {k: (now, n) for k, n in totals.items()}


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
    phase = _phase(pod, sample)
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
    broken = failing(f.conditions)
    if broken is not None:
        return replace(r, health=Health.DEGRADED, message=f"{message}; {broken.message}",
                       reason=broken.reason)  # fmt: skip
    return replace(r, message=message)


def routed(
    desired: DesiredState, endpoints: Sequence[PortEndpoints]
) -> dict[tuple[str, str, str], frozenset[str]]:
    """The pods each Service sends to (its endpoints), and each Ingress (its backends')."""
    by_service: dict[tuple[str, str], set[str]] = {}
    for t in endpoints:
        by_service.setdefault((t.namespace, t.service), set()).update(e.pod for e in t.endpoints)
    out = {("Service", ns, name): frozenset(p) for (ns, name), p in by_service.items()}
    for e in desired.manifests.of(m.Ingress):
        spec = e.resource.spec
        backends = [spec.default_backend] if spec.default_backend else []
        backends += [p.backend for r in spec.rules if r.http for p in r.http.paths]
        pods: set[str] = set()
        for b in backends:
            if b is not None and b.service is not None:
                pods |= by_service.get((e.namespace, b.service.name), set())
        out[("Ingress", e.namespace, e.name)] = frozenset(pods)
    return out
