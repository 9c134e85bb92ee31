"""ResourceQuota and LimitRange on the real engine, through ``gitops run``: a namespace quota
of 2 pods holds a third replica Pending with Kubernetes' message (``get pods``, status, a
FailedCreate event), raising the quota in git places it; a LimitRange's defaults are in the
containers' Docker limits; a container over its ``max`` is a rejected commit naming file,
document and field, while what runs keeps running; ``describe namespace`` shows used against
hard."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import docker
import pytest

from gitops.model.labels import L_INSTANCE
from tests.conftest import GitRemote, Images
from tests.helpers import deployment, namespace
from tests.integration.test_run import get, wait_for
from tests.integration.test_services import running  # noqa: F401

NS = "quotatest"


def quota(pods: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "pods", "namespace": NS}, "spec": {"hard": {"pods": str(pods)}}}  # fmt: skip


def limits(**item: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults", "namespace": NS},
            "spec": {"limits": [{"type": "Container", **item}]}}  # fmt: skip


DEFAULTS = limits(default={"cpu": "250m", "memory": "64Mi"}, defaultRequest={"cpu": "100m"},
                  max={"cpu": "1", "memory": "256Mi"})  # fmt: skip


def web(images: Images, **container: Any) -> dict[str, Any]:
    return deployment(namespace=NS, image=images["v1"], replicas=3, container=container)


@pytest.fixture
def api(remote: GitRemote, images: Images, running: str) -> str:  # noqa: F811
    remote.write("ns.yaml", namespace(NS), quota(2), DEFAULTS)
    remote.write("web.yaml", web(images))
    remote.push("web under a quota of 2 pods")
    return running


def _pods(api: str) -> list[dict[str, Any]]:
    try:
        return list(get(api + f"/api/v1/pods?namespace={NS}"))
    except OSError:
        return []


def _running(api: str) -> int:
    return sum(1 for p in _pods(api) if p.get("ready") == "1/1")


def test_a_quota_holds_the_third_pod_until_raised_and_limit_range_defaults_reach_docker(
    api: str, remote: GitRemote, images: Images, instance: str, engine: docker.DockerClient
) -> None:
    wait_for(lambda: _running(api) == 2, 90, 0.3)
    held = [p for p in _pods(api) if p.get("status") == "Pending"]
    assert held and 'exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2' in (
        held[0]["message"]), held  # fmt: skip
    status = get(api + "/api/v1/status")
    [dep] = [r for r in status["resources"] if r["kind"] == "Deployment"]
    assert "is forbidden: exceeded quota: pods" in dep["message"], dep
    events = get(api + f"/api/v1/events?namespace={NS}")["items"]
    assert any(e["reason"] == "FailedCreate" and e["message"].startswith("Error creating: pods")
               for e in events), events  # fmt: skip

    # The LimitRange's defaults are the containers' own limits, as Docker holds them.
    apps = [c for c in engine.containers.list(filters={"label": f"{L_INSTANCE}={instance}"})
            if c.labels.get("io.gitops.container") == "web"]  # fmt: skip
    assert apps
    for c in apps:
        host = c.attrs["HostConfig"]
        assert (host["NanoCpus"], host["Memory"]) == (250_000_000, 64 << 20), host

    shown = subprocess.run(
        [sys.executable, "-m", "gitops", "describe", "namespace", NS, "--server", api],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    described = shown.stdout
    assert "Resource Quotas" in described and "Resource Limits" in described, described
    assert any(line.split() == ["pods", "2", "2"] for line in described.splitlines()), described

    remote.write("ns.yaml", namespace(NS), quota(3), DEFAULTS)  # raised in git: placed
    remote.push("raise the quota to 3")
    wait_for(lambda: _running(api) == 3, 90, 0.3)
    assert not [p for p in _pods(api) if p.get("status") == "Pending"]

    # Over the LimitRange's max: the commit is refused naming file, document and field, and
    # the three pods of the last valid commit keep running.
    remote.write("web.yaml", web(images, resources={"limits": {"cpu": "2"}}))
    bad = remote.push("a container over the max")
    wait_for(lambda: get(api + "/api/v1/status").get("revision") == bad, 60, 0.3)
    status = get(api + "/api/v1/status")
    assert status["result"] != "Succeeded" or status["applied"] != bad
    wanted = ("web.yaml:0: Deployment/web: spec.template.spec.containers[0].resources.limits.cpu: "
              "maximum cpu usage per Container is 1, but limit is 2")  # fmt: skip
    assert any(wanted in e for e in status["errors"]), status["errors"]
    assert _running(api) == 3
