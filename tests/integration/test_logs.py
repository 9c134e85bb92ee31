"""Logs of real containers through ``gitops run``: a fail-fast rollout whose new image crashes
rolls back, and its crash message is then in ``gitops logs --previous``, in the rollout's
reason and in status; a container restarted in place keeps its previous instance's log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import deployment, namespace
from tests.integration.test_run import free_port, get, wait_for

NS = "logtest"
CRASH = "exec /app/server failed: No such file or directory"
TICKER = ["/bin/sh", "-c", 'echo "up on $(hostname)"; while true; do sleep 1; done']


def gitops(api: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops", *args, "--server", api],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())  # fmt: skip


def web(images: Images, command: list[str]) -> dict[str, Any]:
    doc = deployment(namespace=NS, image=images["v1"], replicas=1, container={"command": command})
    doc["metadata"]["annotations"] = {"gitops.io/fail-fast": "true"}
    return doc


@pytest.fixture
def api(remote: GitRemote, images: Images, instance: str, tmp_path: Path) -> Iterator[str]:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, TICKER))
    remote.push("v1")
    port = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _rollouts(url) and _rollouts(url)[0]["result"] == "Complete", 90, 0.3)
        yield url
    finally:
        stop_gitops(proc)


def _rollouts(api: str) -> list[dict[str, Any]]:
    try:
        return list(get(api + f"/api/v1/rollouts/{NS}/web")["rollouts"])
    except OSError:
        return []


def test_a_crashed_rollouts_message_is_in_logs_previous_and_its_reason(
    api: str, remote: GitRemote, images: Images
) -> None:
    remote.write(
        "web.yaml", web(images, ["/bin/sh", "-c", f"echo starting; echo '{CRASH}' >&2; exit 127"])
    )
    crash = remote.push("v2 crashes")
    wait_for(lambda: any(r["commit"] == crash and r["result"] == "Failed" for r in _rollouts(api))
             and _rollouts(api)[0]["result"] == "Complete", 90, 0.3)  # fmt: skip
    failed = next(r for r in _rollouts(api) if r["commit"] == crash)
    assert "Exited (127)" in failed["reason"] and CRASH in failed["reason"], failed["reason"]
    assert failed["rolled_back_to"]

    # The crashed pod is gone (the rollback replaced it); its log was kept.
    previous = gitops(api, "logs", "--previous", "deployment/web", "-n", NS)
    assert previous.returncode == 0, previous.stderr
    assert CRASH in previous.stdout and "starting" in previous.stdout
    assert "[pod/web-" in previous.stdout  # a workload's lines say their pod
    current = gitops(api, "logs", "deployment/web", "-n", NS)
    assert current.returncode == 0 and "up on " in current.stdout and CRASH not in current.stdout

    status = get(api + "/api/v1/status")
    [dep] = [r for r in status["resources"] if r["kind"] == "Deployment" and r["name"] == "web"]
    assert CRASH in dep["message"], dep["message"]
    described = gitops(api, "describe", "deployment/web", "-n", NS)
    assert described.returncode == 0 and CRASH in described.stdout, described.stdout
    assert "RolloutFailed" in described.stdout and "RolledBack" in described.stdout


def test_a_container_restarted_in_place_keeps_its_previous_instance(
    api: str, remote: GitRemote, images: Images, instance: str
) -> None:
    [pod] = [p for p in get(api + f"/api/v1/pods?namespace={NS}") if p["status"] == "Running"]
    engine = docker.from_env()
    try:
        [c] = [c for c in engine.containers.list(filters={"label": f"io.gitops.pod={pod['name']}"})
               if c.labels.get("io.gitops.infra") != "true"]  # fmt: skip
        c.kill()  # the reconciler restarts it in place, as the kubelet does
        wait_for(lambda: any(p["restarts"] for p in get(api + f"/api/v1/pods?namespace={NS}")),
                 60, 0.3)  # fmt: skip
        wait_for(lambda: gitops(api, "logs", pod["name"]).stdout.startswith("up on"), 30, 0.5)
    finally:
        engine.close()
    before = gitops(api, "logs", pod["name"], "--previous", "--timestamps")
    assert before.returncode == 0 and before.stdout.count("up on ") == 1, before
    now = gitops(api, "logs", pod["name"], "--timestamps")
    assert now.stdout.count("up on ") == 1 and now.stdout != before.stdout
