"""Lifecycle hooks on a real engine: a postStart exec runs before the pod counts as started,
a failing one kills its container (the kubelet's FailedPostStartHook), and a preStop httpGet
reaches the app before it is sent SIGTERM."""

from __future__ import annotations

import threading
from typing import Any

import docker

from gitops.model.labels import L_CONTAINER, L_DEPLOYMENT
from tests.conftest import GitRemote, Images, containers_of, converge, wait_until
from tests.helpers import deployment, namespace

NS = "hooks"


def _app(c: Any) -> bool:
    return bool(c.labels[L_CONTAINER] == "web")


def test_post_start_and_pre_stop_hooks_run(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    hooked = deployment(
        "hooked",
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={
            # -vv: busybox httpd logs each request's path, which shows the preStop GET arrived
            "command": ["httpd", "-f", "-vv", "-p", "8080", "-h", "/www"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "lifecycle": {
                "postStart": {"exec": {"command": ["sh", "-c", "echo up > /www/post-start"]}},
                "preStop": {"httpGet": {"path": "/version", "port": "http"}},
            },
        },
        pod={"terminationGracePeriodSeconds": 5},
    )
    failing = deployment(
        "failing",
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={"lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}}},
    )
    remote.write("ns.yaml", namespace(NS))
    remote.write("apps.yaml", hooked, failing)
    remote.push("hooks")
    rec = make_reconciler()
    converge(rec)
    by_name = {c.labels[L_DEPLOYMENT]: c for c in containers_of(engine, instance) if _app(c)}
    app = by_name["hooked"]
    assert app.exec_run(["cat", "/www/post-start"]).output == b"up\n"

    # The failed hook's container was killed, as the kubelet kills it.
    broken = engine.containers.get(by_name["failing"].id)
    assert broken.attrs["State"]["Status"] == "exited", broken.attrs["State"]
    assert broken.attrs["State"]["ExitCode"] == 137

    # Deleting the deployment stops its pod: preStop's GET first, then SIGTERM.
    seen: list[bytes] = []
    stream = app.logs(stream=True, follow=True, stdout=True, stderr=True)
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    remote.write("apps.yaml", failing)
    remote.push("hooked goes")
    converge(rec)
    wait_until(lambda: not reader.is_alive(), 10)
    log = b"".join(seen).decode()
    assert "url:/version" in log, log
