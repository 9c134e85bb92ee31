"""HorizontalPodAutoscaler manifests: v2 read as Kubernetes defines it, v1 read as the v2 it
converts to, and each fault named with file, document and field."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.manifests.autoscaling import HorizontalPodAutoscaler
from tests.helpers import deployment, dump


def hpa(name: str = "web", target: str = "web", **spec: Any) -> dict[str, Any]:
    api = spec.pop("api", "autoscaling/v2")
    ref = spec.pop("ref", {"apiVersion": "apps/v1", "kind": "Deployment", "name": target})
    return {
        "apiVersion": api,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"scaleTargetRef": ref, "maxReplicas": 5, **spec},
    }


def cpu(percent: int) -> dict[str, Any]:
    return {"type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                   "averageUtilization": percent}}}  # fmt: skip


def read(*docs: dict[str, Any]) -> HorizontalPodAutoscaler:
    manifests = parse_manifests({"app.yaml": dump(deployment(), *docs)})
    (entry,) = manifests.of(HorizontalPodAutoscaler)
    return entry.resource


def errors(*docs: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifests({"app.yaml": dump(deployment(), *docs)})
    return [str(e) for e in info.value.errors]


def test_v2_is_read_with_kubernetes_defaults() -> None:
    scaler = read(hpa())
    assert scaler.spec.min_replicas == 1 and scaler.spec.max_replicas == 5
    [metric] = scaler.spec.measured  # no metric named: CPU at 80 % of the requests
    assert metric.resource is not None and metric.resource.name == "cpu"
    assert metric.resource.target.average_utilization == 80


def test_v1_is_read_as_the_v2_it_converts_to() -> None:
    doc = hpa(api="autoscaling/v1", targetCPUUtilizationPercentage=60, minReplicas=2)
    [metric] = read(doc).spec.measured
    assert metric.resource is not None and metric.resource.target.average_utilization == 60


def test_behavior_and_several_metrics() -> None:
    pods = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "requests-per-second"},
            "target": {"type": "AverageValue", "averageValue": "10"},
        },
    }
    behavior = {
        "scaleDown": {
            "stabilizationWindowSeconds": 60,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}],
        }
    }
    scaler = read(hpa(metrics=[cpu(50), pods], behavior=behavior))  # fmt: skip
    down = scaler.spec.behavior.scale_down  # type: ignore[union-attr]
    assert len(scaler.spec.metrics) == 2 and down is not None and down.select_policy == "Min"


@pytest.mark.parametrize(
    ("doc", "field", "says"),
    [
        (hpa(ref={"kind": "DaemonSet", "name": "web"}), "spec.scaleTargetRef.kind",
         "a Deployment or a StatefulSet"),
        (hpa(target="nope"), "spec.scaleTargetRef.name", "no Deployment 'nope'"),
        (hpa(ref={"apiVersion": "apps/v2", "kind": "Deployment", "name": "web"}),
         "spec.scaleTargetRef.apiVersion", "apps/v1"),
        (hpa(minReplicas=9), "spec.minReplicas", "at most maxReplicas (5)"),
        (hpa(metrics=[{"type": "Resource"}]), "spec.metrics[0].resource", "required"),
        (hpa(metrics=[{"type": "Resource", "resource": {"name": "nvidia.com/gpu", "target": {
            "type": "Utilization", "averageUtilization": 5}}}]),
         "spec.metrics[0].resource.name", "cpu and memory"),
        (hpa(metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization"}}}]),
         "spec.metrics[0].resource.target.averageUtilization", "required"),
        (hpa(metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Value", "value": "1"}}}]),
         "spec.metrics[0].resource.target.type", "Utilization or AverageValue"),
        (hpa(metrics=[{"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {
            "type": "AverageValue", "averageValue": "0"}}}]),
         "spec.metrics[0].pods.target.averageValue", "must be positive"),
        (hpa(metrics=[{"type": "ContainerResource", "containerResource": {
            "name": "cpu", "container": "sidecar", "target": {
                "type": "Utilization", "averageUtilization": 50}}}]),
         "spec.metrics[0].containerResource.container", "no container 'sidecar'"),
        (hpa(maxReplicas=0), "spec.maxReplicas", ""),
        (hpa(behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 1,
                                                 "periodSeconds": 4000}]}}),
         "spec.behavior.scaleUp.policies[0].periodSeconds", ""),
    ],
)  # fmt: skip
def test_each_fault_names_file_document_and_field(
    doc: dict[str, Any], field: str, says: str
) -> None:
    found = errors(doc)
    assert any(e.startswith("app.yaml:1: HorizontalPodAutoscaler/web: " + field)
               and says in e for e in found), found  # fmt: skip


def test_two_autoscalers_of_one_workload_are_refused_naming_both() -> None:
    found = errors(hpa("a"), hpa("b"))
    assert any("app.yaml:2: HorizontalPodAutoscaler/b: spec.scaleTargetRef" in e
               and "already scaled by HorizontalPodAutoscaler a (app.yaml:1)" in e
               for e in found), found  # fmt: skip
