"""ReplicaSet and ReplicationController on a real engine, as older examples (Kubernetes'
guestbook-go) write them: their replicas run, a lost one is made again, a changed template is
not rolled out but the pods made from then on use it."""

from __future__ import annotations

from typing import Any

import docker

from gitops.model.labels import L_CONTAINER, L_DEPLOYMENT, L_POD
from gitops.model.verdicts import Health, Sync
from tests.conftest import GitRemote, Images, containers_of, converge
from tests.helpers import namespace

NS = "legacy"


def controller(image: str, replicas: int) -> dict[str, Any]:
    return {
        "kind": "ReplicationController",
        "apiVersion": "v1",
        "metadata": {"name": "redis-master", "namespace": NS, "labels": {"app": "redis"}},
        "spec": {
            "replicas": replicas,
            "selector": {"app": "redis", "role": "master"},
            "template": {
                "metadata": {"labels": {"app": "redis", "role": "master"}},
                "spec": {
                    "containers": [
                        {
                            "name": "redis-master",
                            "image": image,
                            "command": ["sh", "-c", "exec sleep 3600"],
                            "ports": [{"name": "redis-server", "containerPort": 6379}],
                        }
                    ]
                },
            },
        },
    }


def replica_set(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "frontend", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"tier": "frontend"}},
            "template": {
                "metadata": {"labels": {"tier": "frontend"}},
                "spec": {"containers": [{"name": "php-redis", "image": image}]},
            },
        },
    }


def _pods(engine: docker.DockerClient, instance: str, owner: str) -> dict[str, str]:
    """pod name -> image of its app container."""
    return {
        c.labels[L_POD]: c.attrs["Config"]["Image"]
        for c in containers_of(engine, instance, infra=False)
        if c.labels[L_DEPLOYMENT] == owner and c.labels[L_CONTAINER] != "POD"
    }


def test_replica_sets_and_replication_controllers_run_heal_and_scale_without_rolling(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("redis.yaml", controller(images["v1"], 2))
    remote.write("frontend.yaml", replica_set(images["v1"]))
    remote.push("guestbook, the old way")
    rec = make_reconciler()
    status = converge(rec).status
    by_kind = {r.kind: r for r in status.resources if r.namespace == NS and r.kind != "Namespace"}
    assert set(by_kind) == {"ReplicationController", "ReplicaSet"}
    for r in by_kind.values():
        assert (r.health, r.sync) == (Health.HEALTHY, Sync.SYNCED), r.message
        assert r.replicas is not None and r.replicas["ready"] == 2
    first = _pods(engine, instance, "redis-master")
    assert len(first) == 2 and all(name.startswith("redis-master-") for name in first)

    # A replica lost (its containers removed behind gitops' back) is made again.
    victim = sorted(first)[0]
    for c in containers_of(engine, instance):
        if c.labels[L_POD] == victim:
            c.remove(force=True)
    converge(rec)
    healed = _pods(engine, instance, "redis-master")
    assert len(healed) == 2 and victim not in healed

    # A new image is not rolled out; a third replica, made after it, runs it.
    remote.write("redis.yaml", controller(images["v2"], 3))
    remote.push("redis v2, and one more")
    status = converge(rec).status
    [rc] = [r for r in status.resources if r.kind == "ReplicationController"]
    assert (rc.health, rc.sync) == (Health.HEALTHY, Sync.SYNCED), rc.message
    after = _pods(engine, instance, "redis-master")
    assert {n: after[n] for n in healed} == healed  # the old replicas untouched
    [new] = set(after) - set(healed)
    assert after[new] == images["v2"]
