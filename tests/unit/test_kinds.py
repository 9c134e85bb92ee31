"""The kinds a repository written for Kubernetes holds: run, Skipped with the reason (and still
checked against Kubernetes' schema), or refused with what to do; fields accepted but ignored
come back as warnings, never silence."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.errors import ManifestError
from gitops.manifests import Policy, parse_manifests
from gitops.manifests import model as m
from tests.helpers import config_map, deployment, dump


def _errors(files: dict[str, bytes], policy: Policy | None = None) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifests(files, policy=policy)
    return [str(e) for e in info.value.errors]


SA = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "web", "namespace": "demo"},
}
ROLE: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "system:aggregated-metrics-reader"},
    "rules": [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get"]}],
}


def test_kinds_without_meaning_here_are_skipped_with_the_reason() -> None:
    manifests = parse_manifests({"a.yaml": dump(SA, ROLE, deployment(namespace="demo"))})
    skipped = {e.display: e for e in manifests.of(m.Skipped)}
    assert set(skipped) == {"ServiceAccount/web", "ClusterRole/system:aggregated-metrics-reader"}
    assert "no Kubernetes API server" in skipped["ServiceAccount/web"].resource.reason
    assert skipped["ServiceAccount/web"].namespace == "demo"
    assert skipped["ClusterRole/system:aggregated-metrics-reader"].namespace == ""  # cluster-wide
    assert len(manifests.of(m.Deployment)) == 1


def test_kinds_gitops_will_run_later_are_skipped_as_not_yet() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "reg/web:v1"}]},
    }
    (entry,) = parse_manifests({"i.yaml": dump(pod)}).of(m.Skipped)
    assert entry.resource.reason == "gitops does not run Pod yet"


def test_a_skipped_kind_is_still_checked_against_kubernetes_schema() -> None:
    bad = {
        **ROLE,
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": "get", "verb": ["x"]}],
    }
    sa = {**SA, "automountServiceAccountToken": "yes", "secretz": []}
    errors = _errors({"r.yaml": dump(bad, sa)})
    assert errors == [
        "r.yaml:0: ClusterRole/system:aggregated-metrics-reader: rules[0].verb: unknown field",
        "r.yaml:0: ClusterRole/system:aggregated-metrics-reader: rules[0].verbs: must be of type array",
        "r.yaml:1: ServiceAccount/web: automountServiceAccountToken: must be of type boolean",
        "r.yaml:1: ServiceAccount/web: secretz: unknown field",
    ]


def test_schema_messages_never_quote_the_document() -> None:
    sa = {**SA, "metadata": {"name": "web", "labels": {"a": ["hunter2-secret"]}}}
    errors = _errors({"r.yaml": dump(sa)})
    assert errors and not any("hunter2" in e for e in errors)


def test_a_kind_kubernetes_does_not_have_is_an_error_with_a_near_miss() -> None:
    doc = deployment()
    doc["kind"] = "Deploymnet"
    (error,) = _errors({"d.yaml": dump(doc)})
    assert error.endswith("kind: Kubernetes has no kind 'Deploymnet'; did you mean 'Deployment'?")
    doc["kind"] = "Frobnicator"
    (error,) = _errors({"d.yaml": dump(doc)})
    assert error.endswith("kind: Kubernetes has no kind 'Frobnicator'")


def test_a_removed_api_version_names_the_served_one() -> None:
    doc = deployment()
    doc["apiVersion"] = "extensions/v1beta1"
    (error,) = _errors({"d.yaml": dump(doc)})
    assert error.endswith("apiVersion: Deployment is served as 'apps/v1', not 'extensions/v1beta1'")
    hpa = {
        "apiVersion": "autoscaling/v9",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"},
    }
    (error,) = _errors({"h.yaml": dump(hpa)})
    assert "served as 'autoscaling/v1' or 'autoscaling/v2'" in error


def test_custom_resources_are_errors_unless_their_group_is_skipped() -> None:
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "web"},
        "spec": {"endpoints": [{"port": "http"}]},
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
    }
    errors = _errors({"c.yaml": dump(monitor, route)})
    assert len(errors) == 2
    assert "ServiceMonitor (monitoring.coreos.com/v1) is a custom resource" in errors[0]
    assert "list 'monitoring.coreos.com' in skipApiGroups" in errors[0]
    assert "HTTPRoute (gateway.networking.k8s.io/v1) is a custom resource" in errors[1]
    policy = Policy(
        skip_api_groups=frozenset({"monitoring.coreos.com", "gateway.networking.k8s.io"})
    )
    manifests = parse_manifests({"c.yaml": dump(monitor, route)}, policy=policy)
    reasons = [e.resource.reason for e in manifests.of(m.Skipped)]
    assert reasons == [
        "custom resource of API group monitoring.coreos.com, which is skipped",
        "custom resource of API group gateway.networking.k8s.io, which is skipped",
    ]


def test_a_list_is_unwrapped_as_kubectl_unwraps_it() -> None:
    listed = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [deployment(namespace="demo"), config_map("cfg")],
    }
    manifests = parse_manifests({"l.yaml": dump(listed)})
    assert sorted(e.display for e in manifests.entries) == ["ConfigMap/cfg", "Deployment/web"]
    assert _errors({"l.yaml": dump({"apiVersion": "v1", "kind": "List", "items": {"a": 1}})}) == [
        "l.yaml:0: List: items: must be a list of resources"
    ]


def test_what_kubectl_create_dry_run_writes_is_accepted() -> None:
    doc = deployment(namespace="demo")
    doc["metadata"]["creationTimestamp"] = None
    doc["spec"]["template"]["metadata"]["creationTimestamp"] = None
    doc["status"] = {}
    doc["spec"]["template"]["spec"]["containers"][0]["resources"] = {}
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "creationTimestamp": None},
        "data": None,
    }
    manifests = parse_manifests({"d.yaml": dump(doc, cm)})
    assert len(manifests.entries) == 2 and manifests.warnings == ()


def test_fields_that_mean_nothing_here_are_warnings_once_each() -> None:
    doc = deployment(namespace="demo")
    pod = doc["spec"]["template"]["spec"]
    pod.update(
        serviceAccountName="web",
        automountServiceAccountToken=False,
        enableServiceLinks=False,
        priorityClassName="high",
    )
    pod["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    doc["metadata"]["uid"] = "1234"
    doc["status"] = {"replicas": 3}
    manifests = parse_manifests({"d.yaml": dump(doc)})
    warnings = [str(w) for w in manifests.warnings]
    prefix = "d.yaml:0: Deployment/web: "
    assert warnings == [
        prefix + "metadata.uid: ignored: set by a Kubernetes API server, not by git",
        prefix + "status: ignored: status is observed by gitops, not read from git",
        prefix + "spec.template.spec.serviceAccountName: ignored: a Docker host has no "
        "Kubernetes API server, so no service accounts",
        prefix + "spec.template.spec.automountServiceAccountToken: ignored: a Docker host has no "
        "Kubernetes API server, so no token is mounted",
        prefix + "spec.template.spec.enableServiceLinks: ignored: gitops sets no "
        "{SVC}_SERVICE_HOST variables; Services resolve by name",
        prefix + "spec.template.spec.priorityClassName: ignored: gitops does not preempt pods",
        prefix + "spec.template.spec.containers[0].terminationMessagePath: ignored: the reason a "
        "container ended comes from its exit code and its logs",
    ]


def test_generate_name_cannot_be_applied() -> None:
    doc = deployment(namespace="demo")
    doc["metadata"]["generateName"] = "web-"
    del doc["metadata"]["name"]
    (error,) = _errors({"d.yaml": dump(doc)})
    assert "metadata.name: required field is missing: generateName cannot be applied" in error
