"""imagePullSecrets on a real engine: an image in a registry that needs a login (the one
scripts/host-setup starts on 127.0.0.1:5001, htpasswd) is pulled with the credentials of a
``kubernetes.io/dockerconfigjson`` Secret; without them the pull fails as ImagePullBackOff; the
password appears in no status, log line or container label."""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from gitops.errors import Reason
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, converge
from tests.helpers import deployment, namespace

NS = "private"
REGISTRY = "127.0.0.1:5001"
USER = "gitops-test"
PASSWORD_FILE = (
    Path(os.environ.get("GITOPS_HOST_STATE", "/var/lib/gitops-host")) / "auth-registry" / "password"
)


@pytest.fixture(scope="module")
def private_image(engine: docker.DockerClient, images: Images) -> Iterator[tuple[str, str]]:
    """v1 of the test image, pushed to the registry that needs a login; (image, password)."""
    if not PASSWORD_FILE.exists():
        pytest.fail(f"no {PASSWORD_FILE}: run scripts/host-setup (it starts the login registry)")
    password = PASSWORD_FILE.read_text().strip()
    image = f"{REGISTRY}/gitops-test/private:{images.run}"
    engine.images.get(images["v1"]).tag(image)
    login = {"username": USER, "password": password}
    for line in engine.api.push(image, stream=True, decode=True, auth_config=login):
        assert "error" not in line, line
    engine.images.remove(image, force=True)  # the node must pull it
    yield image, password
    for found in engine.images.list():
        if image in found.tags:
            engine.images.remove(image, force=True)
    _delete_from_registry(image.split("/", 1)[1], password)


def _delete_from_registry(ref: str, password: str) -> None:
    """Remove the test's manifest from the login registry (its delete API is enabled)."""
    repo, _, tag = ref.rpartition(":")
    login = base64.b64encode(f"{USER}:{password}".encode()).decode()
    headers = {
        "Authorization": f"Basic {login}",
        "Accept": "application/vnd.docker.distribution.manifest.v2+json",
    }
    base = f"http://{REGISTRY}/v2/{repo}/manifests/"
    head = urllib.request.Request(base + tag, method="HEAD", headers=headers)
    with urllib.request.urlopen(head, timeout=10) as resp:
        digest = resp.headers["Docker-Content-Digest"]
    delete = urllib.request.Request(base + digest, method="DELETE", headers=headers)
    urllib.request.urlopen(delete, timeout=10).close()


def _secret(password: str) -> dict[str, Any]:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    config = json.dumps({"auths": {REGISTRY: {"auth": auth}}})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": NS},
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }


def test_a_private_image_is_pulled_with_the_pods_pull_secret(
    remote: GitRemote,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
    private_image: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    image, password = private_image
    without = deployment("anonymous", namespace=NS, image=image, replicas=1)
    remote.write("ns.yaml", namespace(NS))
    remote.write("app.yaml", without)
    remote.push("a private image, no credentials")
    rec = make_reconciler()
    outcome = converge(rec, passes=2)
    [failure] = outcome.applied.failures
    assert failure.reason == Reason.IMAGE_PULL_FAILED
    with_secret = deployment(
        "anonymous",
        namespace=NS,
        image=image,
        replicas=1,
        pod={"imagePullSecrets": [{"name": "regcred"}]},
    )
    remote.write("app.yaml", with_secret, _secret(password))
    remote.push("with its pull secret")
    rec.pulls.clear(f"local/{image}")  # the back-off of the failed pull, not under test here
    status = converge(rec).status
    [res] = [r for r in status.resources if r.name == "anonymous"]
    assert res.health == Health.HEALTHY, res.message
    [app] = containers_of(engine, instance, infra=False)
    assert image in app.image.tags
    shown = json.dumps(status.to_dict(), default=str) + caplog.text
    labels = json.dumps([c.labels for c in containers_of(engine, instance)])
    assert password not in shown and password not in labels
