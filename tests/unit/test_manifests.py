from __future__ import annotations

from pathlib import Path

import pytest

from gitops.errors import ManifestError
from gitops.manifests import model as m
from gitops.manifests import parse_manifests
from tests.helpers import config_map, deployment, dump, namespace, secret

EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"


def errors_of(files: dict[str, bytes]) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifests(files)
    return [str(e) for e in info.value.errors]


def test_example_repo_is_valid() -> None:
    files = {str(p.relative_to(EXAMPLE)): p.read_bytes() for p in EXAMPLE.rglob("*.yaml")}
    manifests = parse_manifests(files)
    kinds = sorted(e.resource.kind for e in manifests.entries)
    assert kinds == ["ConfigMap", "Deployment", "Namespace", "Service", "Service", "StatefulSet"]
    dep = manifests.of(m.Deployment)[0]
    assert dep.namespace == "demo" and dep.resource.spec.replicas == 3


def test_defaults_follow_kubernetes() -> None:
    doc = deployment(namespace="x")
    del doc["metadata"]["namespace"]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 80}}
    entry = parse_manifests({"a.yaml": dump(doc)}).of(m.Deployment)[0]
    assert entry.namespace == "default"
    spec = entry.resource.spec
    assert spec.progress_deadline_seconds == 600
    assert spec.strategy.type == "RollingUpdate"
    probe = spec.template.spec.containers[0].readiness_probe
    assert probe is not None
    assert (probe.period_seconds, probe.timeout_seconds, probe.failure_threshold) == (10, 1, 3)
    assert spec.template.spec.termination_grace_period_seconds == 30


def test_error_format_names_file_document_resource_and_field() -> None:
    bad = deployment(container={"bogus": 1})
    errors = errors_of({"apps/web.yaml": dump(namespace("demo"), bad)})
    assert errors == [
        "apps/web.yaml:1: Deployment/web: spec.template.spec.containers[0].bogus: unknown field"
    ]


def test_every_error_of_a_commit_is_reported_at_once() -> None:
    wrong_type = deployment(name="a", replicas="3")  # type: ignore[arg-type]
    bad_quantity = deployment(name="b", container={"resources": {"limits": {"memory": "12Zi"}}})
    bad_name = deployment(name="Bad_Name", container={"image": 7})
    mismatch = deployment(name="c")
    mismatch["spec"]["selector"]["matchLabels"] = {"app": "other"}
    dup = deployment(name="d")
    files = {
        "one.yaml": dump(wrong_type, bad_quantity),
        "two.yaml": dump(bad_name, mismatch, dup, dup),
        "three.yaml": b"kind: Deployment\napiVersion: apps/v1\nmetadata: {name: x\n",
        "four.yaml": dump(
            {"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "p"}}
        ),
    }
    errors = errors_of(files)
    text = "\n".join(errors)
    assert "one.yaml:0: Deployment/a: spec.replicas: Input should be a valid integer" in text
    assert (
        "one.yaml:1: Deployment/b: spec.template.spec.containers[0].resources.limits.memory:"
        in text
    )
    assert "two.yaml:0: Deployment/Bad_Name: metadata.name: invalid name 'Bad_Name'" in text
    assert (
        "two.yaml:0: Deployment/Bad_Name: spec.template.spec.containers[0].image: Input should be a valid string"
        in text
    )
    assert (
        "two.yaml:1: Deployment/c: spec.selector.matchLabels: selector app=other does not match"
        in text
    )
    assert (
        "two.yaml:3: Deployment/d: metadata.name: duplicate Deployment demo/d, first defined at two.yaml:2"
        in text
    )
    assert "three.yaml:0: YAML syntax error: line" in text
    assert (
        "four.yaml:0: Deploymnet/p: kind: Kubernetes has no kind 'Deploymnet'; did you mean "
        "'Deployment'?" in text
    )
    assert len(errors) == 8


def test_references_to_config_maps_and_secrets_are_checked() -> None:
    dep = deployment(
        container={
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "missing"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}},
                {
                    "name": "C",
                    "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
                },
            ],
            "volumeMounts": [{"name": "undeclared", "mountPath": "/x"}],
        }
    )
    errors = errors_of({"a.yaml": dump(config_map("cfg", k="v"), dep)})
    assert errors == [
        "a.yaml:1: Deployment/web: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef: "
        "key 'missing' not found in ConfigMap 'cfg'",
        "a.yaml:1: Deployment/web: spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef: "
        "Secret 'nope' not found in namespace 'demo'",
        "a.yaml:1: Deployment/web: spec.template.spec.containers[0].volumeMounts[0].name: "
        "volume 'undeclared' is not defined in spec.template.spec.volumes",
    ]


def test_wrong_api_version_and_missing_kind() -> None:
    doc = deployment()
    doc["apiVersion"] = "extensions/v1beta1"
    errors = errors_of({"a.yaml": dump(doc, {"apiVersion": "v1", "metadata": {"name": "x"}})})
    assert errors == [
        "a.yaml:0: Deployment/web: apiVersion: Deployment is served as 'apps/v1', not 'extensions/v1beta1'",
        "a.yaml:1: ?/x: kind: required field is missing",
    ]


def test_secret_data_and_string_data() -> None:
    sec = secret("s", token="plain")
    sec["data"] = {"b64": "aGVsbG8="}
    manifests = parse_manifests({"s.yaml": dump(sec)})
    from gitops.manifests import config_data

    assert config_data(manifests.of(m.Secret)[0].resource) == {"b64": b"hello", "token": b"plain"}
    sec["data"] = {"b64": "not base64!"}
    assert errors_of({"s.yaml": dump(sec)}) == [
        "s.yaml:0: Secret/s: data.b64: value is not valid base64"
    ]


def test_duplicate_yaml_keys_are_rejected() -> None:
    text = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n"
    [error] = errors_of({"ns.yaml": text})
    assert "ns.yaml:0: YAML syntax error: line 5" in error and "'name' already defined" in error


def test_non_manifest_files_and_empty_documents_are_ignored() -> None:
    files = {"README.md": b"# hi", "ns.yaml": b"---\n" + dump(namespace("a")) + b"---\n"}
    manifests = parse_manifests(files)
    assert [e.name for e in manifests.entries] == ["a"]


def test_limits_below_requests_and_probe_port_names() -> None:
    dep = deployment(
        container={
            "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "500m"}},
            "readinessProbe": {"httpGet": {"port": "http", "path": "/"}},
        }
    )
    assert errors_of({"a.yaml": dump(dep)}) == [
        "a.yaml:0: Deployment/web: spec.template.spec.containers[0].readinessProbe.httpGet.port: "
        "no container port named 'http'",
        "a.yaml:0: Deployment/web: spec.template.spec.containers[0].resources.requests.cpu: "
        "must be less than or equal to cpu limit 500m",
    ]
