"""imagePullSecrets on plain data: registry Secrets read as the kubelet reads them, the first
Secret naming the image's registry wins, a Secret that is no registry Secret is refused at
commit time without quoting it, and the in-memory node refuses a private image without them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gitops.decide.desired import build_desired
from gitops.decide.pullauth import credentials, registry_of
from gitops.errors import ImagePullError, ManifestError
from gitops.manifests import parse_manifests
from gitops.model.templates import RegistryAuth
from gitops.nodes.memory import MemoryNode
from tests.helpers import deployment, dump


def _registry_secret(
    name: str, auths: dict[str, Any], kind: str = "kubernetes.io/dockerconfigjson"
) -> dict[str, Any]:
    body = json.dumps({"auths": auths}).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": {"name": name, "namespace": "demo"},
        "data": {".dockerconfigjson": base64.b64encode(body).decode()},
    }


def _app(image: str, *secrets: str) -> dict[str, Any]:
    return deployment(
        namespace="demo", image=image, pod={"imagePullSecrets": [{"name": s} for s in secrets]}
    )


def test_registries_as_images_name_them() -> None:
    assert registry_of("nginx") == "docker.io"
    assert registry_of("library/nginx:1") == "docker.io"
    assert registry_of("ghcr.io/org/app:v1") == "ghcr.io"
    assert registry_of("127.0.0.1:5001/app") == "127.0.0.1:5001"
    assert registry_of("localhost/app") == "localhost"


def test_the_first_secret_naming_the_registry_wins() -> None:
    hub = _registry_secret(
        "hub", {"https://index.docker.io/v1/": {"username": "u1", "password": "p1"}}
    )
    auth = base64.b64encode(b"u2:p:2").decode()
    ghcr = _registry_secret("ghcr", {"ghcr.io": {"auth": auth}})
    files = {"a.yaml": dump(hub, ghcr, _app("ghcr.io/org/app:v1", "hub", "ghcr"))}
    manifests = parse_manifests(files)
    template = build_desired(manifests, "c").deployments[0].template
    assert template.pull_secrets == ("hub", "ghcr")
    found = credentials(manifests, template, "ghcr.io/org/app:v1")
    assert found == RegistryAuth("ghcr.io", "u2", "p:2") and "p:2" not in repr(found)
    assert credentials(manifests, template, "nginx:1") == RegistryAuth("docker.io", "u1", "p1")
    assert credentials(manifests, template, "quay.io/x/y") is None


def test_a_pull_secret_that_is_missing_or_no_registry_secret_is_refused_unquoted() -> None:
    opaque = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "opaque", "namespace": "demo"},
        "stringData": {"token": "hunter2-value"},
    }
    broken = _registry_secret("broken", {})
    broken["data"][".dockerconfigjson"] = base64.b64encode(b"{hunter2-not-json").decode()
    files = {
        "a.yaml": dump(opaque, broken, _app("ghcr.io/org/app:v1", "missing", "opaque", "broken"))
    }
    with pytest.raises(ManifestError) as info:
        parse_manifests(files)
    errors = [str(e) for e in info.value.errors]
    assert [e.split(": ", 3)[-1] for e in errors] == [
        "Secret 'missing' not found in namespace 'demo'",
        "Secret 'opaque' is of type 'Opaque', not kubernetes.io/dockerconfigjson",
        "Secret 'broken' .dockerconfigjson is not valid JSON",
    ]
    assert not any("hunter2" in e for e in errors)


def test_the_memory_node_pulls_a_private_image_only_with_its_credentials() -> None:
    node = MemoryNode("n1", registry={"reg.example/app:v1"})
    node.private["reg.example/app:v1"] = ("u", "p")
    with pytest.raises(ImagePullError, match="unauthorized"):
        node.pull("reg.example/app:v1")
    with pytest.raises(ImagePullError, match="unauthorized"):
        node.pull("reg.example/app:v1", RegistryAuth("reg.example", "u", "wrong"))
    node.pull("reg.example/app:v1", RegistryAuth("reg.example", "u", "p"))
    assert node.has_image("reg.example/app:v1")
