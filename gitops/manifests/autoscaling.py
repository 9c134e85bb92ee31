"""The HorizontalPodAutoscaler as a manifest: ``autoscaling/v2``, and ``autoscaling/v1``
(``targetCPUUtilizationPercentage``) read as the v2 it stands for, as the API server converts
it.

Stage: manifests. Shapes and single-field rules only; which targets and metrics gitops can
serve is checked with the rest of the commit (``gitops.manifests.checks``), and the arithmetic
is ``gitops.decide.autoscale``. Defaults are Kubernetes': one replica at least, and CPU at 80 %
of the requests when no metric is named.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from gitops.manifests import model as m
from gitops.manifests.entries import Entry, Issue, Manifests
from gitops.manifests.fields import INT32_MAX, Positive, Quantity, Spec
from gitops.manifests.model import Resource
from gitops.manifests.pod import LabelSelector
from gitops.manifests.quantity import parse_quantity

DEFAULT_CPU_PERCENT = 80  # what Kubernetes aims at when an autoscaler names no metric
TARGETS = ("Deployment", "StatefulSet")  # the kinds whose replicas gitops lets one scale


class CrossVersionObjectReference(Spec):
    api_version: str | None = None
    kind: str
    name: str


class MetricTarget(Spec):
    type: Literal["Utilization", "Value", "AverageValue"]
    value: Quantity | None = None
    average_value: Quantity | None = None
    average_utilization: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None


class MetricIdentifier(Spec):
    name: str
    selector: LabelSelector | None = None


class ResourceMetricSource(Spec):
    name: str
    target: MetricTarget


class ContainerResourceMetricSource(Spec):
    name: str
    container: str
    target: MetricTarget


class PodsMetricSource(Spec):
    metric: MetricIdentifier
    target: MetricTarget


class ObjectMetricSource(Spec):
    described_object: CrossVersionObjectReference
    metric: MetricIdentifier
    target: MetricTarget


class ExternalMetricSource(Spec):
    metric: MetricIdentifier
    target: MetricTarget


class MetricSpec(Spec):
    type: Literal["Resource", "ContainerResource", "Pods", "Object", "External"]
    resource: ResourceMetricSource | None = None
    container_resource: ContainerResourceMetricSource | None = None
    pods: PodsMetricSource | None = None
    object: ObjectMetricSource | None = None
    external: ExternalMetricSource | None = None

    @property
    def target(self) -> MetricTarget | None:
        source = self.source
        return source.target if source is not None else None

    @property
    def source(self) -> Any:
        """The source its ``type`` names (None when that field is missing)."""
        return {
            "Resource": self.resource, "ContainerResource": self.container_resource,
            "Pods": self.pods, "Object": self.object, "External": self.external,
        }[self.type]  # fmt: skip


class HPAScalingPolicy(Spec):
    type: Literal["Pods", "Percent"]
    value: Positive
    period_seconds: Annotated[int, Field(ge=1, le=1800)]


class HPAScalingRules(Spec):
    stabilization_window_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[HPAScalingPolicy] | None = None


class HorizontalPodAutoscalerBehavior(Spec):
    scale_up: HPAScalingRules | None = None
    scale_down: HPAScalingRules | None = None


class HorizontalPodAutoscalerSpec(Spec):
    scale_target_ref: CrossVersionObjectReference
    min_replicas: Positive = 1
    max_replicas: Positive
    metrics: list[MetricSpec] = Field(default_factory=list)
    behavior: HorizontalPodAutoscalerBehavior | None = None

    @property
    def measured(self) -> list[MetricSpec]:
        """Its metrics, or Kubernetes' default: CPU at 80 % of the requests."""
        if self.metrics:
            return self.metrics
        target = MetricTarget(type="Utilization", average_utilization=DEFAULT_CPU_PERCENT)
        cpu = ResourceMetricSource(name="cpu", target=target)
        return [MetricSpec(type="Resource", resource=cpu)]


class HorizontalPodAutoscaler(Resource):
    """Scales a Deployment or StatefulSet of the same namespace on its pods' load; while it
    does, it owns the target's ``replicas`` (``gitops.decide.scaling``)."""

    api_version: Literal["autoscaling/v2", "autoscaling/v1"]
    kind: Literal["HorizontalPodAutoscaler"]
    spec: HorizontalPodAutoscalerSpec

    @model_validator(mode="before")
    @classmethod
    def _from_v1(cls, data: Any) -> Any:
        """``autoscaling/v1``'s one CPU target, as the v2 metric it converts to."""
        if not isinstance(data, dict) or data.get("apiVersion") != "autoscaling/v1":
            return data
        spec = data.get("spec")
        if not isinstance(spec, dict) or "targetCPUUtilizationPercentage" not in spec:
            return data
        spec = dict(spec)
        percent = spec.pop("targetCPUUtilizationPercentage")
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": percent}}}]  # fmt: skip
        return {**data, "spec": spec}


RESOURCES = ("cpu", "memory")  # what the engines' stats measure
_TARGET_FIELDS = {"Utilization": "averageUtilization", "AverageValue": "averageValue",
                  "Value": "value"}  # fmt: skip
_TARGET_TYPES = {  # the target types each metric type takes, as Kubernetes' validation says
    "Resource": ("Utilization", "AverageValue"),
    "ContainerResource": ("Utilization", "AverageValue"),
    "Pods": ("AverageValue",),
    "Object": ("Value", "AverageValue"),
    "External": ("Value", "AverageValue"),
}
_SOURCE_FIELDS = {"Resource": "resource", "ContainerResource": "containerResource",
                  "Pods": "pods", "Object": "object", "External": "external"}  # fmt: skip


def target_of(
    entry: Entry[HorizontalPodAutoscaler], manifests: Manifests
) -> Entry[m.Deployment] | Entry[m.StatefulSet] | None:
    """The workload the autoscaler scales, when the commit has it."""
    ref = entry.resource.spec.scale_target_ref
    if ref.kind == "Deployment":
        return manifests.get(m.Deployment, entry.namespace, ref.name)
    if ref.kind == "StatefulSet":
        return manifests.get(m.StatefulSet, entry.namespace, ref.name)
    return None


def check(entry: Entry[HorizontalPodAutoscaler], manifests: Manifests, issue: Issue) -> None:
    """One autoscaler: its target, bounds and each metric's shape."""
    spec = entry.resource.spec
    ref = spec.scale_target_ref
    if ref.kind not in TARGETS:
        issue("spec.scaleTargetRef.kind", f"gitops scales a Deployment or a StatefulSet, not "
              f"{ref.kind[:63]!r}")  # fmt: skip
    elif ref.api_version not in (None, "apps/v1"):
        issue("spec.scaleTargetRef.apiVersion", f"a {ref.kind} is apps/v1, not "
              f"{ref.api_version[:63]!r}")  # fmt: skip
    else:
        target = target_of(entry, manifests)
        if target is None:
            issue("spec.scaleTargetRef.name", f"no {ref.kind} {ref.name[:63]!r} in namespace "
                  f"{entry.namespace} in this commit")  # fmt: skip
        else:
            _check_containers(spec, target, issue)
    if spec.min_replicas > spec.max_replicas:
        issue("spec.minReplicas", f"must be at most maxReplicas ({spec.max_replicas})")
    for i, metric in enumerate(spec.metrics):
        _check_metric(metric, f"spec.metrics[{i}]", issue)


def _check_metric(metric: MetricSpec, path: str, issue: Issue) -> None:
    field = _SOURCE_FIELDS[metric.type]
    source, target = metric.source, metric.target
    if source is None or target is None:
        issue(f"{path}.{field}", f"required for a metric of type {metric.type}")
        return
    if metric.type in ("Resource", "ContainerResource") and source.name not in RESOURCES:
        issue(f"{path}.{field}.name", f"gitops reads cpu and memory from the engines' stats, not "
              f"{source.name[:63]!r}")  # fmt: skip
    allowed = _TARGET_TYPES[metric.type]
    if target.type not in allowed:
        issue(f"{path}.{field}.target.type", f"a {metric.type} metric's target is "
              f"{' or '.join(allowed)}, not {target.type}")  # fmt: skip
        return
    wanted = _TARGET_FIELDS[target.type]
    value = {"averageUtilization": target.average_utilization,
             "averageValue": target.average_value, "value": target.value}  # fmt: skip
    if value[wanted] is None:
        issue(f"{path}.{field}.target.{wanted}", f"required for a target of type {target.type}")
    for other, given in value.items():
        if other != wanted and given is not None:
            issue(f"{path}.{field}.target.{other}", f"not allowed with a target of type "
                  f"{target.type} (it takes {wanted})")  # fmt: skip
    quantity = target.average_value if wanted == "averageValue" else target.value
    if wanted != "averageUtilization" and quantity is not None and parse_quantity(quantity) <= 0:
        issue(f"{path}.{field}.target.{wanted}", "must be positive")


def _check_containers(
    spec: HorizontalPodAutoscalerSpec,
    target: Entry[m.Deployment] | Entry[m.StatefulSet],
    issue: Issue,
) -> None:
    names = {c.name for c in target.resource.spec.template.spec.containers}
    for i, metric in enumerate(spec.metrics):
        source = metric.container_resource
        if metric.type == "ContainerResource" and source is not None and (
                source.container not in names):  # fmt: skip
            issue(f"spec.metrics[{i}].containerResource.container",
                  f"{target.resource.kind} {target.name} has no container "
                  f"{source.container[:63]!r}")  # fmt: skip


def conflicts(
    manifests: Manifests,
) -> Iterator[tuple[Entry[HorizontalPodAutoscaler], str, str]]:
    """(entry, field, message) for each autoscaler whose target an earlier one scales."""
    seen: dict[tuple[str, str, str], Entry[HorizontalPodAutoscaler]] = {}
    for entry in manifests.of(HorizontalPodAutoscaler):
        ref = entry.resource.spec.scale_target_ref
        first = seen.setdefault((entry.namespace, ref.kind, ref.name), entry)
        if first is not entry:
            yield (
                entry,
                "spec.scaleTargetRef",
                (
                    f"{ref.kind} {ref.name[:63]} is already scaled by HorizontalPodAutoscaler "
                    f"{first.name} ({first.path}:{first.doc}): one autoscaler a workload"
                ),
            )
