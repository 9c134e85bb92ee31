"""hostPort on a real engine: a pod's container port published on the node, at the address
given, whichever container holds the pod's network (a lone container, or the pause container
of a pod of two); a second pod asking for the same port is Pending with the reason."""

from __future__ import annotations

from typing import Any

import docker

from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, converge
from tests.helpers import deployment, namespace
from tests.integration.test_run import free_port
from tests.integration.test_services import fetch

NS = "hostports"


def published(name: str, image: str, port: int, sidecar: bool = False) -> dict[str, Any]:
    extra = [{"name": "side", "image": image, "command": ["sleep", "3600"]}] if sidecar else []
    doc = deployment(
        name, namespace=NS, image=image, replicas=1,
        container={"ports": [{"containerPort": 8080, "hostPort": port, "hostIP": "127.0.0.1"}]},
        pod={"terminationGracePeriodSeconds": 1},
    )  # fmt: skip
    doc["spec"]["template"]["spec"]["containers"] += extra
    return doc


def test_a_host_port_publishes_the_pods_port_on_the_node(
    remote: GitRemote, images: Images, engine: docker.DockerClient, make_reconciler: Any
) -> None:
    lone, paired = free_port(), free_port()
    remote.write("ns.yaml", namespace(NS))
    remote.write("apps.yaml", published("lone", images["v1"], lone),
                 published("paired", images["v1"], paired, sidecar=True),
                 published("second", images["v1"], lone))  # fmt: skip
    remote.push("two pods on host ports, and a third wanting a taken one")
    status = converge(make_reconciler()).status
    by = {r.name: r for r in status.resources if r.kind == "Deployment"}
    assert by["lone"].health == Health.HEALTHY and by["paired"].health == Health.HEALTHY
    version = images["v1"].rsplit(":", 1)[1]
    assert fetch(lone) == version and fetch(paired) == version
    said = by["second"].message
    assert "didn't have free ports for the requested pod ports" in said, said
