"""Events of a real rollout through ``gitops run``: in the order they happened, each new pod
Scheduled, Started, Unhealthy once (its readiness probe fails until it is up), the old ones
Killing, between RolloutStarted and RolloutComplete; ``get pods -w`` sees the new pods come
and the old ones go."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import deployment, namespace
from tests.integration.test_run import free_port, get, wait_for

NS = "eventtest"
# Ready a second after it starts: the first probe or two fail, then it serves.
SLOW = ["/bin/sh", "-c", "(sleep 1.5; echo ok > /www/ready) & exec httpd -f -p 8080 -h /www"]


def web(images: Images, version: str) -> dict[str, Any]:
    return deployment(
        namespace=NS, image=images[version], replicas=2,
        container={"command": SLOW, "ports": [{"name": "http", "containerPort": 8080}],
                   "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                      "periodSeconds": 1}},
        strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    )  # fmt: skip


@pytest.fixture
def api(remote: GitRemote, images: Images, instance: str, tmp_path: Path) -> Iterator[str]:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"))
    remote.push("v1")
    port = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _complete(url) == 1, 90, 0.3)
        yield url
    finally:
        stop_gitops(proc)


def _complete(api: str) -> int:
    try:
        rows = get(api + f"/api/v1/rollouts/{NS}/web")["rollouts"]
    except OSError:
        return 0
    return sum(r["result"] == "Complete" for r in rows)


def test_a_rollouts_events_in_order_and_get_pods_watch(
    api: str, remote: GitRemote, images: Images
) -> None:
    old = {p["name"] for p in get(api + f"/api/v1/pods?namespace={NS}")}
    rv = get(api + "/api/v1/events")["metadata"]["resourceVersion"]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "gitops", "get", "pods", "-n", NS, "-w", "--server", api],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    out = watcher.stdout
    assert out is not None
    threading.Thread(target=lambda: lines.extend(iter(out.readline, "")), daemon=True).start()
    try:
        wait_for(lambda: len(lines) >= 2, 30, 0.1)
        remote.write("web.yaml", web(images, "v2"))
        remote.push("v2")
        wait_for(lambda: _complete(api) == 2, 120, 0.3)
        new = {p["name"] for p in get(api + f"/api/v1/pods?namespace={NS}")} - old
        wait_for(lambda: all(any(n in line for line in lines) for n in new)
                 and all(any(o in line and "(gone)" in line for line in lines) for o in old),
                 30, 0.2)  # fmt: skip
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    items = get(api + f"/api/v1/events?namespace={NS}&resourceVersion={rv}")["items"]
    seq = [(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["reason"]) for e in items]

    def at(kind: str, name: str, reason: str) -> int:
        return next(i for i, x in enumerate(seq) if x == (kind, name, reason))

    started, complete = at("Deployment", "web", "RolloutStarted"), at("Deployment", "web",
                                                                       "RolloutComplete")  # fmt: skip
    assert len(new) == 2 and len(old) == 2, (new, old)
    for pod in new:
        assert started < at("Pod", pod, "Scheduled") < at("Pod", pod, "Started") < complete
        [unready] = [e for e in items if e["involvedObject"]["name"] == pod
                     and e["reason"] == "Unhealthy"]  # fmt: skip
        assert unready["type"] == "Warning" and "Readiness probe failed" in unready["message"]
    first_new = min(at("Pod", pod, "Scheduled") for pod in new)
    for pod in old:  # maxUnavailable 0: an old pod goes only once a new one came
        assert first_new < at("Pod", pod, "Killing") < complete
