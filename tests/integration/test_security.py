"""securityContext on a real engine: the user and groups a process runs as, a read-only root
with writable emptyDirs and readable projected files, no new privileges, capabilities, sysctls,
and runAsNonRoot checked against the image's user as the kubelet checks it."""

from __future__ import annotations

import io
from typing import Any

import docker

from gitops.model.labels import L_CONTAINER
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, converge
from tests.helpers import config_map, deployment, namespace

NS = "secure"
CAP_NET_BIND_SERVICE = 1 << 10


def _hardened(images: Images) -> dict[str, Any]:
    return deployment(
        "hard",
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={
            "command": ["sh", "-c", "exec sleep 3600"],
            "securityContext": {
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                "runAsGroup": 3000,
            },
            "volumeMounts": [
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "cfg", "mountPath": "/cfg"},
                {"name": "mem", "mountPath": "/mem"},
            ],
        },
        pod={
            "securityContext": {
                "runAsUser": 1000,
                "runAsGroup": 1000,  # the container's 3000 wins
                "runAsNonRoot": True,
                "fsGroup": 2000,
                "supplementalGroups": [4000],
                "sysctls": [{"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}],
            },
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o400}},
                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            ],
        },
    )


def _run(container: Any, *command: str) -> tuple[int, str]:
    result = container.exec_run(list(command))
    return result.exit_code, result.output.decode().strip()


def test_a_hardened_pod_runs_as_its_security_context_says(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("cfg.yaml", config_map("cfg", NS, key="value"))
    remote.write("hard.yaml", _hardened(images))
    remote.push("hardened")
    rec = make_reconciler()
    status = converge(rec).status
    [res] = [r for r in status.resources if r.name == "hard"]
    assert res.health == Health.HEALTHY, res.message
    [app] = [c for c in containers_of(engine, instance) if c.labels[L_CONTAINER] == "web"]
    assert _run(app, "id", "-u") == (0, "1000")
    assert _run(app, "id", "-g") == (0, "3000")
    assert {"2000", "4000"} <= set(_run(app, "id", "-G")[1].split())
    code, out = _run(app, "touch", "/forbidden")
    assert code != 0 and "Read-only file system" in out
    assert _run(app, "sh", "-c", "echo ok > /scratch/f && cat /scratch/f") == (0, "ok")
    assert _run(app, "cat", "/cfg/key") == (0, "value")
    # medium: Memory is a tmpfs of sizeLimit, writable by the pod's user too
    assert _run(app, "sh", "-c", "echo m > /mem/f && cat /mem/f") == (0, "m")
    mounts = _run(app, "cat", "/proc/mounts")[1].splitlines()
    [mem] = [line for line in mounts if " /mem " in line]
    assert mem.startswith("tmpfs /mem tmpfs") and "size=16384k" in mem
    assert _run(app, "stat", "-L", "-c", "%g %a", "/cfg/key") == (0, "2000 440")
    status_lines = dict(
        line.split(":\t", 1) for line in _run(app, "cat", "/proc/self/status")[1].splitlines()
    )
    assert status_lines["NoNewPrivs"].strip() == "1"
    assert int(status_lines["CapBnd"], 16) == CAP_NET_BIND_SERVICE
    assert _run(app, "cat", "/proc/sys/net/ipv4/ping_group_range")[1].split() == [
        "0",
        "2147483647",
    ]


def test_run_as_non_root_is_checked_against_the_image_user(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    nobody = f"{images['v1']}-nobody"
    engine.images.build(
        fileobj=io.BytesIO(f"FROM {images['v1']}\nUSER 65534\n".encode()), tag=nobody, rm=True
    )
    try:
        as_root = deployment(
            "rooted",
            namespace=NS,
            image=images["v1"],  # no USER: runs as root
            replicas=1,
            pod={"securityContext": {"runAsNonRoot": True}},
        )
        as_nobody = deployment(
            "nobody",
            namespace=NS,
            image=nobody,
            replicas=1,
            container={"command": ["sh", "-c", "exec sleep 3600"]},
            pod={"securityContext": {"runAsNonRoot": True}},
        )
        remote.write("ns.yaml", namespace(NS))
        remote.write("apps.yaml", as_root, as_nobody)
        remote.push("non-root")
        rec = make_reconciler()
        outcome = converge(rec)
        by_name = {r.name: r for r in outcome.status.resources}
        assert by_name["nobody"].health == Health.HEALTHY, by_name["nobody"].message
        assert by_name["rooted"].health != Health.HEALTHY
        assert "runAsNonRoot and image will run as root" in by_name["rooted"].message
        [failure] = outcome.applied.failures
        assert (failure.deployment, failure.reason) == ("rooted", "CreateContainerConfigError")
        [app] = [c for c in containers_of(engine, instance) if c.labels[L_CONTAINER] == "web"]
        assert _run(app, "id", "-u") == (0, "65534")
    finally:
        engine.images.remove(nobody, force=True)
