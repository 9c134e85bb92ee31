"""ResourceQuota and LimitRange manifests: a LimitRange's defaults as Kubernetes applies them
(and in the pod template, so in its hash), its bounds checked on every container at commit
time, a quota's keys and scopes, and the commit's objects against its counts; each fault with
file, document and field."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.decide.desired import build_desired
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.manifests import pod as pm
from gitops.manifests.quotas import LimitRangeItem, defaulted
from tests.helpers import deployment, dump


def limit_range(**item: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": "demo"},
            "spec": {"limits": [{"type": "Container", **item}]}}  # fmt: skip


def quota(**hard: Any) -> dict[str, Any]:
    scopes = hard.pop("scopes", None)
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "q", "namespace": "demo"},
            "spec": {"hard": hard, **({"scopes": scopes} if scopes else {})}}  # fmt: skip


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "demo"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}  # fmt: skip


def errors(*docs: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifests({"app.yaml": dump(*docs)})
    return [str(e) for e in info.value.errors]


def test_defaults_as_kubernetes_fills_them() -> None:
    item = LimitRangeItem.model_validate(
        {"type": "Container", "default": {"cpu": "500m"}, "max": {"memory": "1Gi"},
         "min": {"cpu": "100m"}})  # fmt: skip
    none = defaulted(pm.ResourceRequirements(), [item])
    # a limit from default, else from max; a request from default(Request), else from min
    assert none.limits == {"cpu": "500m", "memory": "1Gi"}
    assert none.requests == {"cpu": "500m", "memory": "1Gi"}
    own = defaulted(pm.ResourceRequirements.model_validate({"limits": {"cpu": "200m"}}), [item])
    assert own.limits["cpu"] == "200m" and own.requests["cpu"] == "200m"  # its own limit first
    explicit = pm.ResourceRequirements.model_validate(
        {"limits": {"cpu": "1", "memory": "64Mi"}, "requests": {"cpu": "300m", "memory": "32Mi"}}
    )
    assert defaulted(explicit, [item]) is explicit  # nothing to fill


def test_a_default_is_in_the_template_and_its_hash() -> None:
    docs = [deployment(), limit_range(default={"cpu": "250m", "memory": "64Mi"},
                                      defaultRequest={"cpu": "100m"})]  # fmt: skip
    first = build_desired(parse_manifests({"a.yaml": dump(*docs)}), "c1").deployments[0]
    spec = first.template.containers[0]
    assert (spec.cpu_limit_millis, spec.memory_limit, spec.cpu_request_millis) == (
        250,
        64 << 20,
        100,
    )
    docs[1] = limit_range(default={"cpu": "300m", "memory": "64Mi"}, defaultRequest={"cpu": "100m"})
    second = build_desired(parse_manifests({"a.yaml": dump(*docs)}), "c2").deployments[0]
    assert second.template.template_hash != first.template.template_hash  # a changed default rolls


@pytest.mark.parametrize(
    ("container", "item", "field", "says"),
    [
        ({"resources": {"limits": {"cpu": "2"}}}, {"max": {"cpu": "1"}},
         "resources.limits.cpu", "maximum cpu usage per Container is 1, but limit is 2"),
        ({}, {"max": {"memory": "1Gi"}, "default": {"memory": "2Gi"}},
         "", ""),  # the LimitRange itself is wrong: see the next test
        ({"resources": {"requests": {"memory": "16Mi"}, "limits": {"memory": "32Mi"}}},
         {"min": {"memory": "64Mi"}}, "resources.requests.memory",
         "minimum memory usage per Container is 64Mi, but request is 16Mi"),
        ({"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}},
         {"maxLimitRequestRatio": {"cpu": "4"}}, "resources.limits.cpu",
         "cpu max limit to request ratio per Container is 4, but provided ratio is 10"),
    ],
)  # fmt: skip
def test_bounds_are_checked_on_every_container_naming_the_limit_range(
    container: dict[str, Any], item: dict[str, Any], field: str, says: str
) -> None:
    found = errors(deployment(container=container), limit_range(**item))
    if not field:
        assert any("LimitRange/lr: spec.limits[0].default.memory: must be at most max" in e
                   for e in found), found  # fmt: skip
        return
    assert any(e.startswith(f"app.yaml:0: Deployment/web: spec.template.spec.containers[0].{field}")
               and says in e and "LimitRange lr, app.yaml:1" in e for e in found), found  # fmt: skip


def test_a_quotas_object_counts_hold_over_the_commit() -> None:
    found = errors(quota(services="1"), service("a"), service("b"))
    assert any(e.startswith("app.yaml:0: ResourceQuota/q: spec.hard.services: exceeded quota: q, "
                            "requested: services=2") and "Service b, app.yaml:2" in e
               for e in found), found  # fmt: skip
    assert errors(quota(**{"count/deployments.apps": "0"}), deployment())
    parse_manifests({"ok.yaml": dump(quota(services="2", pods="1"), service("a"), service("b"))})


@pytest.mark.parametrize(
    ("doc", "field", "says"),
    [
        (quota(**{"nvidia.com/gpu": "1"}), "spec.hard.nvidia.com/gpu", "gitops counts"),
        (quota(pods="2", scopes=["Terminating"]), "spec.scopes[0]", "BestEffort and NotBestEffort"),
        (limit_range(min={"cpu": "2"}, max={"cpu": "1"}), "spec.limits[0].min.cpu", "at most max"),
    ],
)  # fmt: skip
def test_each_fault_names_file_document_and_field(
    doc: dict[str, Any], field: str, says: str
) -> None:
    found = errors(doc)
    assert any(f": {field}: " in e and says in e for e in found), found


def test_a_pod_and_a_claim_limit_range_bound_their_sums_and_sizes() -> None:
    two = deployment(container={"resources": {"limits": {"cpu": "600m"}}})
    two["spec"]["template"]["spec"]["containers"].append(
        {"name": "side", "image": "reg/web:v1", "resources": {"limits": {"cpu": "600m"}}}
    )
    pod_range = {"apiVersion": "v1", "kind": "LimitRange",
                 "metadata": {"name": "pods", "namespace": "demo"},
                 "spec": {"limits": [{"type": "Pod", "max": {"cpu": "1"}}]}}  # fmt: skip
    found = errors(two, pod_range)
    assert any("spec.template.spec.containers: resources.limits.cpu: maximum cpu usage per Pod "
               "is 1, but limit is 1.2" in e for e in found), found  # fmt: skip
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": "demo"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "10Gi"}}}}  # fmt: skip
    claim_range = {"apiVersion": "v1", "kind": "LimitRange",
                   "metadata": {"name": "claims", "namespace": "demo"},
                   "spec": {"limits": [{"type": "PersistentVolumeClaim",
                                        "max": {"storage": "5Gi"}}]}}  # fmt: skip
    found = errors(claim, claim_range)
    assert any("PersistentVolumeClaim/data: spec.resources.requests.storage: maximum storage "
               "usage per PersistentVolumeClaim is 5Gi, but request is 10Gi" in e
               for e in found), found  # fmt: skip


def test_a_statefulsets_claims_count_against_the_quota_for_each_replica() -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "demo"},
           "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "db", "image": "reg/db:v1"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}]}}  # fmt: skip
    found = errors(quota(**{"requests.storage": "2Gi", "persistentvolumeclaims": "2"}), sts)
    assert any(
        "spec.hard.requests.storage: exceeded quota: q, requested: requests.storage=3221225472" in e
        and "StatefulSet db" in e
        for e in found
    ), found
    assert any("spec.hard.persistentvolumeclaims: exceeded quota: q, requested: "
               "persistentvolumeclaims=3" in e for e in found), found  # fmt: skip
