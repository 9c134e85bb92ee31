"""Extended resources on a real engine: ``nvidia.com/gpu`` becomes a Docker device request for
GPUs the node's configuration declares (this machine has no GPU and no nvidia driver, so the
engine's refusal of that request is what shows it was made), and is Pending on a node that
declares none; ``ephemeral-storage`` is bounded where the storage driver can and said so where
it cannot (this engine: overlay2 on extfs), the pod running either way."""

from __future__ import annotations

import logging
from typing import Any

import docker
import pytest

from gitops.config.settings import NodeConfig
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, converge
from tests.helpers import deployment, namespace

NS = "resources"


def _gpu(images: Images, name: str = "trainer") -> dict[str, Any]:
    return deployment(
        name,
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={"resources": {"limits": {"nvidia.com/gpu": 1}}},
    )


def test_a_gpu_limit_is_a_device_request_on_a_node_that_has_gpus(
    remote: GitRemote, images: Images, make_reconciler: Any
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("gpu.yaml", _gpu(images))
    remote.push("a GPU workload")
    status = converge(make_reconciler(nodes=(NodeConfig("local", gpus=1),))).status
    [res] = [r for r in status.resources if r.name == "trainer"]
    assert res.health == Health.DEGRADED
    # The engine was asked for GPU 0 by the nvidia driver, and said it has no such driver.
    assert 'could not select device driver "nvidia"' in res.message, res.message
    assert "[[gpu]]" in res.message


def test_a_gpu_workload_is_pending_on_nodes_without_gpus(
    remote: GitRemote, images: Images, make_reconciler: Any
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("gpu.yaml", _gpu(images))
    remote.push("a GPU workload, no GPU node")
    status = converge(make_reconciler()).status
    [res] = [r for r in status.resources if r.name == "trainer"]
    assert "Pending: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu." in res.message


def test_an_ephemeral_storage_limit_is_said_to_be_unenforced_where_the_driver_cannot(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    info = engine.info()
    backing = dict(tuple(x) for x in info["DriverStatus"] if len(x) == 2)
    if info["Driver"] == "overlay2" and backing.get("Backing Filesystem") == "xfs":
        pytest.skip("this engine can bound a writable layer; the warning is for others")
    doc = deployment(
        "scratchy",
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={"resources": {"limits": {"ephemeral-storage": "1Gi"}}},
    )
    remote.write("ns.yaml", namespace(NS))
    remote.write("app.yaml", doc)
    remote.push("an ephemeral-storage limit")
    with caplog.at_level(logging.WARNING, logger="gitops.nodes.docker"):
        status = converge(make_reconciler()).status
    [res] = [r for r in status.resources if r.name == "scratchy"]
    assert res.health == Health.HEALTHY, res.message
    said = [r.getMessage() for r in caplog.records if "ephemeral-storage" in r.getMessage()]
    assert len(said) == 1 and f"storage driver {info['Driver']}" in said[0], said
    [app] = [c for c in containers_of(engine, instance, infra=False)]
    assert not app.attrs["HostConfig"].get("StorageOpt")
