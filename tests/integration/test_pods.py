"""Pods of several containers on a real engine: one network namespace, shared emptyDir, init
containers, and a network that outlives a container's restart (the pause container model)."""

from __future__ import annotations

from typing import Any

import docker

from gitops.model.labels import L_CONTAINER
from tests.conftest import GitRemote, Images, containers_of, converge, reconciling, wait_until
from tests.helpers import deployment, namespace

NS = "pods"


def two_container_pod(images: Images) -> dict[str, Any]:
    return deployment(
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={"volumeMounts": [{"name": "shared", "mountPath": "/shared"}]},
        pod={
            "initContainers": [
                {
                    "name": "first",
                    "image": images["v1"],
                    "command": ["sh", "-c", "echo first >> /shared/order"],
                    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                },
                {
                    "name": "second",
                    "image": images["v1"],
                    "command": ["sh", "-c", "echo second >> /shared/order"],
                    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                },
            ],
            "containers": [
                {
                    "name": "web",
                    "image": images["v1"],
                    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                },
                {
                    "name": "sidecar",
                    "image": images["v1"],
                    # writes into the shared volume, then serves nothing: it only talks to web
                    "command": ["sh", "-c", "echo from-sidecar > /shared/note; exec sleep 3600"],
                    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                },
            ],
            "volumes": [{"name": "shared", "emptyDir": {}}],
        },
    )


def by_name(engine: docker.DockerClient, instance: str) -> dict[str, Any]:
    return {c.labels[L_CONTAINER]: c for c in containers_of(engine, instance)}


def test_containers_share_localhost_and_an_empty_dir_after_init_containers_ran_in_order(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", two_container_pod(images))
    remote.push("pod of two")
    rec = make_reconciler()
    converge(rec)
    cs = by_name(engine, instance)
    assert {"first", "second", "web", "sidecar", "POD"} <= set(cs)
    sidecar = cs["sidecar"]
    assert sidecar.exec_run(["cat", "/shared/order"]).output.decode().split() == ["first", "second"]
    wait_until(
        lambda: cs["web"].exec_run(["cat", "/shared/note"]).output.strip() == b"from-sidecar", 10
    )
    # the sidecar reaches the web container on localhost: one network namespace
    page = (
        sidecar.exec_run(["wget", "-qO-", "http://127.0.0.1:8080/version"]).output.decode().strip()
    )
    assert page == images["v1"].rsplit(":", 1)[1]
    # a restarted container comes back into the same namespace (the pause container holds it)
    cs["web"].kill()
    with reconciling(rec):
        wait_until(lambda: by_name(engine, instance)["web"].status == "running", 30)
    wait_until(
        lambda: sidecar.exec_run(["wget", "-qO-", "http://127.0.0.1:8080/version"]).exit_code == 0,
        10,
    )
    assert by_name(engine, instance)["web"].id == cs["web"].id  # restarted, not replaced
