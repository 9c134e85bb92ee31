"""The downward API on a real engine: environment variables from the pod's own fields
(``fieldRef``) and its resources (``resourceFieldRef``), the ones only the node knows included:
its name, its node, the node's address as its pods reach it, and the pod's own address."""

from __future__ import annotations

from typing import Any

import docker

from gitops.model.labels import L_CONTAINER
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, converge
from tests.helpers import deployment, namespace

NS = "downward"


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_pod_fields_and_resources_become_environment_variables(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    doc = deployment(
        "fields",
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={
            "command": ["sh", "-c", "exec sleep 3600"],
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
            "env": [
                _field("POD_NAME", "metadata.name"),
                _field("POD_NAMESPACE", "metadata.namespace"),
                _field("APP", "metadata.labels['app']"),
                _field("NODE", "spec.nodeName"),
                _field("HOST_IP", "status.hostIP"),
                _field("POD_IP", "status.podIP"),
                _field("SA", "spec.serviceAccountName"),
                {
                    "name": "CPU_MILLIS",
                    "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}},
                },
                {
                    "name": "MEM_MI",
                    "valueFrom": {
                        "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}
                    },
                },
                {"name": "CORES", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
            ],
        },
        pod={"serviceAccountName": "reporter"},
    )
    remote.write("ns.yaml", namespace(NS))
    remote.write("fields.yaml", doc)
    remote.push("downward api")
    status = converge(make_reconciler()).status
    [res] = [r for r in status.resources if r.name == "fields"]
    assert res.health == Health.HEALTHY, res.message
    cs = containers_of(engine, instance)
    [app] = [c for c in cs if c.labels[L_CONTAINER] == "web"]
    [pause] = [c for c in cs if c.labels[L_CONTAINER] == "POD"]  # podIP: a pause holds it
    env = dict(line.split("=", 1) for line in app.exec_run(["env"]).output.decode().splitlines())
    network = next(iter(pause.attrs["NetworkSettings"]["Networks"].values()))
    assert env["POD_NAME"] == app.labels["io.gitops.pod"]
    assert (env["POD_NAMESPACE"], env["APP"], env["NODE"], env["SA"]) == (
        NS,
        "fields",
        "local",
        "reporter",
    )
    assert env["POD_IP"] == network["IPAddress"]
    assert env["HOST_IP"] == network["Gateway"]
    assert (env["CPU_MILLIS"], env["MEM_MI"], env["CORES"]) == ("500", "64", "1")
