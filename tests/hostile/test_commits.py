"""Hostile commits: every file a commit can hold gives a valid set or field errors, never an
exception. Each case that once ended ``gitops run`` or slipped through is kept here."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.decide.actions import counter_suffix
from gitops.decide.desired import build_desired
from gitops.decide.plan import make_plan
from gitops.errors import FieldError, ManifestError
from gitops.manifests import parse_manifests
from gitops.manifests.files import MAX_FILE_BYTES, read_directory
from gitops.manifests.load import MAX_DEPTH
from gitops.model.live import LiveState
from tests.helpers import deployment, dump, secret

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "demo"},
    "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]},
}


def errors_of(files: dict[str, bytes], problems: tuple[FieldError, ...] = ()) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifests(files, problems)
    return [str(e) for e in info.value.errors]


def with_app(text: bytes | str) -> dict[str, bytes]:
    """A hostile file next to a valid app, as a commit would hold it."""
    data = text.encode() if isinstance(text, str) else text
    return {"app.yaml": dump(deployment()), "z.yaml": data}


def limits(memory: Any) -> dict[str, Any]:
    return deployment(container={"resources": {"limits": {"memory": memory}}})


# -- what once ended the process -------------------------------------------------------------
def test_a_secret_that_is_not_base64_and_is_referenced() -> None:
    bad = secret("s")
    bad["data"] = {"k": "abc"}
    env = {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    files = {"s.yaml": dump(bad), "d.yaml": dump(deployment(container=env))}
    assert errors_of(files) == ["s.yaml:0: Secret/s: data.k: value is not valid base64"]


def test_base64_folded_over_lines_is_read_as_the_api_server_reads_it() -> None:
    good = secret("s")
    text = base64.encodebytes(b"x" * 100).decode()  # 76 columns and a newline, as openssl does
    good["data"] = {"k": text}
    parse_manifests({"s.yaml": dump(good)})
    good["data"] = {"k": text.replace("\n", " ")}  # a space is no line break
    with pytest.raises(ManifestError):
        parse_manifests({"s.yaml": dump(good)})


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 3000, 200_000])
def test_deep_nesting(depth: int) -> None:
    [error] = errors_of(with_app("a: " + "[" * depth + "]" * depth))
    assert error.startswith("z.yaml:0: YAML") and "nesting" in error


def test_deep_block_nesting() -> None:
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  " * 106 + "x: 1\n"
    [error] = errors_of(with_app(text))
    assert f"nesting deeper than {MAX_DEPTH} levels" in error


def test_an_alias_bomb_is_refused_before_it_is_built() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    [error] = errors_of(with_app("\n".join(lines)))
    assert "once its aliases are expanded" in error


def test_an_alias_inside_the_value_it_names() -> None:
    [error] = errors_of(
        with_app("apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: x, labels: *m}\n")
    )
    assert "an alias refers to the value it is part of" in error


def test_a_list_as_a_mapping_key() -> None:
    assert errors_of(with_app("{[a, b]: c}")) == [
        "z.yaml:0: YAML syntax error: line 1 column 2: a mapping key must be a scalar"
    ]


@pytest.mark.parametrize("memory", ["1e9999999", "1e5000", 10**30, "9" * 5000])
def test_quantities_beyond_int64(memory: Any) -> None:
    [error] = errors_of({"d.yaml": dump(limits(memory))})
    assert "resources.limits.memory" in error and "2^63-1" in error


def test_an_integer_of_thousands_of_digits() -> None:
    [error] = errors_of(with_app("replicas: " + "9" * 5000))
    assert error == "z.yaml:0: YAML syntax error: line 1 column 11: integer too large"


# -- what got through ------------------------------------------------------------------------
@pytest.mark.parametrize("replicas", [3_000_000_000, 2**31])
def test_replicas_beyond_int32(replicas: int) -> None:
    [error] = errors_of({"d.yaml": dump(deployment(replicas=replicas))})
    assert "spec.replicas: Input should be less than or equal to 2147483647" in error


def test_a_large_but_valid_replica_count_is_a_valid_commit() -> None:
    manifests = parse_manifests({"d.yaml": dump(deployment(replicas=100_000))})
    assert manifests.entries[0].resource.spec.replicas == 100_000


@pytest.mark.parametrize(
    ("kind", "doc"),
    [
        ("Service", {**SERVICE, "metadata": {"name": "web\n", "namespace": "demo"}}),
        ("Deployment", deployment(name="web\n")),
        ("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a\n"}}),
    ],
)
def test_names_with_a_trailing_newline(kind: str, doc: dict[str, Any]) -> None:
    errors = errors_of({"x.yaml": dump(doc)})
    assert any("metadata.name: invalid name" in e for e in errors), errors


def test_label_values_and_ports_names_use_fullmatch() -> None:
    doc = deployment(container={"ports": [{"containerPort": 80, "name": "http\n"}]})
    doc["spec"]["template"]["metadata"]["labels"]["tier"] = "a\n"
    errors = errors_of({"x.yaml": dump(doc)})
    assert any("invalid label value" in e for e in errors)
    assert any("ports[0].name: invalid port name" in e for e in errors)


@pytest.mark.parametrize(
    ("path", "why"),
    [("../../etc/passwd", "'..'"), ("/etc/passwd", "relative"), ("a/../../b", "'..'"), ("", "")],
)
def test_volume_item_paths_stay_inside_the_volume(path: str, why: str) -> None:
    doc = deployment(
        pod={
            "volumes": [
                {"name": "c", "configMap": {"name": "c", "items": [{"key": "k", "path": path}]}}
            ]
        }
    )
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "demo"},
        "data": {"k": "v"},
    }
    errors = errors_of({"d.yaml": dump(doc), "c.yaml": dump(cm)})
    assert any("volumes[0].configMap.items[0].path" in e and why in e for e in errors), errors


def test_a_yaml_error_never_quotes_the_document() -> None:
    text = (
        'apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  password: "hunter2\\q"\n'
    )
    errors = errors_of(with_app(text))
    assert errors and not any("hunter2" in e for e in errors)
    errors = errors_of(with_app("token: !!python/name:hunter2 x\n"))
    assert errors and not any("hunter2" in e for e in errors)
    assert all("line " in e for e in errors)


def test_a_probe_header_cannot_smuggle_a_line() -> None:
    probe = {
        "httpGet": {
            "port": 80,
            "path": "/ok",
            "httpHeaders": [{"name": "X", "value": "a\r\nHost: evil"}],
        }
    }
    errors = errors_of({"d.yaml": dump(deployment(container={"readinessProbe": probe}))})
    assert any("httpHeaders[0].value" in e for e in errors)


def test_a_service_target_port_out_of_range() -> None:
    svc = {**SERVICE, "spec": {**SERVICE["spec"], "ports": [{"port": 80, "targetPort": 70000}]}}
    assert errors_of({"s.yaml": dump(svc)}) == [
        "s.yaml:0: Service/web: spec.ports[0].targetPort: port 70000 is out of range 1-65535"
    ]


def test_every_error_in_one_run() -> None:
    """A field error no longer hides the checks that relate fields: the probe's port name
    and the nodePort used twice are reported with it."""
    dep = deployment(
        container={"readinessProbe": {"httpGet": {"port": "http"}}, "colour": "blue"},
    )
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "nmae": "x"}]
    one = {**SERVICE, "spec": {**SERVICE["spec"], "ports": [{"port": 80, "nodePort": 30080}]}}
    two = {
        **one,
        "metadata": {"name": "api", "namespace": "demo"},
        "spec": {**one["spec"], "sessionAffinty": "None"},
    }
    errors = errors_of({"d.yaml": dump(dep), "s.yaml": dump(one, two)})
    c0 = "d.yaml:0: Deployment/web: spec.template.spec.containers[0]"
    assert errors == [
        f"{c0}.colour: unknown field",
        f"{c0}.ports[0].nmae: unknown field",
        f"{c0}.readinessProbe.httpGet.port: no container port named 'http'",
        "s.yaml:1: Service/api: spec.ports[0].nodePort: 30080 is already allocated to Service "
        "demo/web (s.yaml:0)",
        "s.yaml:1: Service/api: spec.sessionAffinty: unknown field",
    ]


def test_a_missing_required_field_does_not_hide_the_others() -> None:
    dep = deployment(container={"readinessProbe": {"httpGet": {"port": "http"}}})
    del dep["spec"]["template"]["spec"]["containers"][0]["image"]
    errors = errors_of({"d.yaml": dump(dep)})
    c0 = "d.yaml:0: Deployment/web: spec.template.spec.containers[0]"
    assert errors == [
        f"{c0}.image: required field is missing",
        f"{c0}.readinessProbe.httpGet.port: no container port named 'http'",
    ]


# -- files -----------------------------------------------------------------------------------
def test_oversized_files_and_symlinks_are_errors_not_a_silent_prune(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_bytes(dump(deployment()))
    (tmp_path / "big.yaml").write_bytes(b"# " + b"x" * MAX_FILE_BYTES)
    (tmp_path / "link.yaml").symlink_to(tmp_path / "app.yaml")
    (tmp_path / "README.md").symlink_to("/etc/passwd")  # not a manifest: not read, no error
    found = read_directory(tmp_path)
    assert sorted(found.files) == ["app.yaml"]
    assert errors_of(dict(found.files), found.problems) == [
        f"big.yaml:0: file is {MAX_FILE_BYTES + 2} bytes, over the limit of {MAX_FILE_BYTES} bytes",
        "link.yaml:0: file is a symbolic link; gitops does not follow links (commit the file "
        "itself, or leave it out with .gitopsignore or --exclude)",
    ]


# -- what the YAML of real repositories needs ------------------------------------------------
def test_trailing_tabs_as_kubectl_reads_them() -> None:
    text = dump(SERVICE).decode().replace("kind: Service\n", "kind: Service\t\n")
    assert parse_manifests({"s.yaml": text.encode()}).entries[0].name == "web"


def test_merge_keys_as_kubectl_reads_them() -> None:
    text = """
x-labels: &labels {app: web, tier: front}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels:
        <<: {app: web, tier: front}
        tier: back
    spec:
      containers: [{name: web, image: reg/web:v1}]
"""
    files = {"d.yaml": text.split("---\n", 1)[1].encode()}
    dep = parse_manifests(files).entries[0].resource
    assert dep.spec.template.metadata.labels == {"app": "web", "tier": "back"}


def test_duplicate_keys_beside_a_merge_are_still_refused() -> None:
    text = "a: &a {x: 1}\nb:\n  <<: *a\n  y: 1\n  y: 2\n"
    [error] = errors_of(with_app(text))
    assert "mapping key 'y' already defined at line 4" in error


# -- fuzzing ---------------------------------------------------------------------------------
def _must_not_raise(files: dict[str, bytes]) -> None:
    """Load, validate and, when valid, build the desired state and a plan: the project's own
    errors are the only thing that may come out."""
    try:
        manifests = parse_manifests(files)
    except ManifestError as exc:
        for e in exc.errors:
            assert str(e).startswith(tuple(files))  # every error names its file
        return
    desired = build_desired(manifests, "c" * 40)
    make_plan(desired, LiveState((), {}, {}), ["n1"], counter_suffix())


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "1e5000", "500m", "http", "../x", "/x", "a\n", "Never"]),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _seeds() -> list[dict[str, Any]]:
    dep = deployment(
        container={
            "ports": [{"containerPort": 80, "name": "http"}],
            "readinessProbe": {"httpGet": {"port": "http", "path": "/"}},
            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "64Mi"}},
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "volumeMounts": [{"name": "c", "mountPath": "/c"}],
        },
        pod={
            "volumes": [
                {"name": "c", "secret": {"secretName": "s", "items": [{"key": "k", "path": "k"}]}}
            ]
        },
    )
    sec = secret("s", k="v")
    return [dep, sec, SERVICE]


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_fuzz_valid_manifests_with_one_value_replaced(data: Any) -> None:
    docs = [yaml.safe_load(yaml.safe_dump(d)) for d in _seeds()]
    for _ in range(data.draw(st.integers(1, 3))):
        doc = data.draw(st.sampled_from(docs))
        path = data.draw(st.sampled_from(_paths(doc)[1:]))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = data.draw(TREES)
    _must_not_raise({"a.yaml": dump(*docs)})


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None)
@given(TREES)
def test_fuzz_arbitrary_trees(tree: Any) -> None:
    _must_not_raise(
        {"a.yaml": yaml.safe_dump(tree).encode(), "b.json": yaml.safe_dump(tree).encode()}
    )


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "500")), deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(raw: bytes) -> None:
    _must_not_raise({"a.yaml": raw, "b.yaml": b"apiVersion: v1\nkind: Secret\n" + raw})


YAML_PIECES = st.sampled_from(
    ["a", ": ", "- ", "\n", "  ", "\t", "[", "]", "{", "}", ",", "&x ", "*x", "<<: ", "!!binary ",
     "? ", "'", '"', "|", ">", "#", "---\n", "...\n", "%YAML 1.1\n", "!", "9" * 70, "1e5000"]
)  # fmt: skip


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "500")), deadline=None)
@given(st.lists(YAML_PIECES, max_size=40))
def test_fuzz_yaml_syntax(pieces: list[str]) -> None:
    _must_not_raise({"a.yaml": "".join(pieces).encode()})


HPA: dict[str, Any] = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "namespace": "demo"},
    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
}


@pytest.mark.parametrize(
    "spec",
    [
        {"maxReplicas": 2**40},
        {"maxReplicas": "many"},
        {"scaleTargetRef": "web"},
        {"scaleTargetRef": {"kind": "Deployment"}},
        {"metrics": "cpu"},
        {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "AverageValue", "averageValue": "1e400"}}}]},
        {"metrics": [{"type": "Bogus"}]},
        {"behavior": {"scaleDown": {"stabilizationWindowSeconds": -1}}},
        {"behavior": {"scaleUp": {"selectPolicy": "Sometimes"}}},
        {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}},
    ],
)  # fmt: skip
def test_a_hostile_autoscaler_is_field_errors(spec: dict[str, Any]) -> None:
    doc = {**HPA, "spec": {**HPA["spec"], **spec}}
    found = errors_of({"app.yaml": dump(deployment(), doc)})
    assert found and all(
        e.startswith("app.yaml:1: HorizontalPodAutoscaler/web: spec") for e in found
    ), found


@pytest.mark.parametrize(
    "doc",
    [
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "demo"},
         "spec": {"hard": {"pods": "1e400"}}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "demo"},
         "spec": {"hard": ["pods"]}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "demo"},
         "spec": {"limits": [{"type": "Container", "max": {"cpu": "-1"}}]}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "demo"},
         "spec": {"limits": [{"type": "Node"}]}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "demo"},
         "spec": {}},
    ],
)  # fmt: skip
def test_hostile_quotas_and_limit_ranges_are_field_errors(doc: dict[str, Any]) -> None:
    found = errors_of({"app.yaml": dump(deployment(), doc)})
    assert found and all(e.startswith("app.yaml:1: ") for e in found), found
