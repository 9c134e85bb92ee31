"""``gitops rollout`` verbs against a running ``gitops run``, a bare remote and a real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRemote, Images, git, start_gitops, stop_gitops
from tests.integration.test_rollout import images_running
from tests.integration.test_run import free_port, get, gitops, wait_for

NS = "rollcli"
HEADER = "# The web tier. Comments like this one survive commits made by gitops.\n"


def web_yaml(image: str, paused: bool = False) -> str:
    return (
        HEADER
        + f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {NS}
spec:
  replicas: 2
  paused: {str(paused).lower()}
  selector:
    matchLabels:
      app: web
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: {image}  # bumped by CI
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 1
"""
    )


@pytest.fixture
def served(
    remote: GitRemote, images: Images, instance: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    remote.write_text("ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n")
    remote.write_text("web.yaml", web_yaml(images["v1"]))
    remote.push("web v1")
    port = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    env = {
        **os.environ,
        "GITOPS_SERVER": f"http://127.0.0.1:{port}",
        "GITOPS_REPO": str(remote.bare),
    }
    try:
        wait_for(lambda: _complete(env), 60, 0.2)
        yield env
    finally:
        stop_gitops(proc)


def _complete(env: dict[str, str]) -> bool:
    try:
        data = get(env["GITOPS_SERVER"] + f"/api/v1/rollouts/{NS}/web")
    except OSError:
        return False
    return bool(data["rollouts"]) and data["rollouts"][0]["result"] == "Complete"


def wait_rollout(env: dict[str, str], commit: str) -> subprocess.CompletedProcess[str]:
    """What a CI job runs after pushing ``commit``: follow its rollout to the end."""
    return gitops(
        "rollout",
        "status",
        "deployment/web",
        "-n",
        NS,
        "--commit",
        commit,
        "--timeout",
        "60s",
        env=env,
    )


def rollout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return gitops("rollout", *args, "deployment/web", "-n", NS, env=env)


def test_status_history_undo_restart_pause_resume(
    served: dict[str, str], remote: GitRemote, images: Images, engine: Any, instance: str
) -> None:
    env = served
    first = git(remote.work, "rev-parse", "HEAD")
    remote.write_text("web.yaml", web_yaml(images["v2"]))
    second = remote.push("web v2")
    status = wait_rollout(env, second)
    assert status.returncode == 0, status.stderr
    assert 'deployment "web" successfully rolled out' in status.stderr
    assert "2/2 available" in status.stderr

    history = json.loads(rollout(env, "history", "-o", "json").stdout)
    assert [(r["revision"], r["commit"], r["result"]) for r in history] == [
        (2, second, "Complete"),
        (1, first, "Complete"),
    ]
    assert history[0]["subject"] == "web v2" and history[0]["author"].startswith("Test Author")
    table = rollout(env, "history")
    assert table.returncode == 0 and "REVISION" in table.stdout and second[:12] in table.stdout

    # undo: a commit restoring revision 1, pushed, then deployed like any commit
    dry = rollout(env, "undo")
    assert dry.returncode == 0 and "not pushed" in dry.stderr
    assert git(remote.bare, "rev-parse", "main") == second  # nothing pushed without --push
    undo = rollout(env, "undo", "--push", "-m", "Build: https://ci.example/job/42")
    assert undo.returncode == 0, undo.stderr
    third = git(remote.bare, "rev-parse", "main")
    message = git(remote.bare, "log", "-1", "--format=%B", third)
    assert message.startswith(f"Roll back deployment {NS}/web to {first[:12]}")
    assert first in message and second in message and "https://ci.example/job/42" in message
    restored = git(remote.bare, "show", f"{third}:web.yaml")
    assert restored.startswith(HEADER) and "# bumped by CI" in restored
    assert images["v1"] in restored and images["v2"] not in restored
    status = wait_rollout(env, third)
    assert status.returncode == 0, status.stderr
    wait_for(lambda: images_running(engine, instance, "web") == {images["v1"]}, 30)

    # restart: new pods, same version
    before = {p["name"] for p in get(env["GITOPS_SERVER"] + "/api/v1/pods")}
    assert rollout(env, "restart", "--push").returncode == 0
    restarted = git(remote.bare, "rev-parse", "main")
    assert "gitops.io/restartedAt" in git(remote.bare, "show", f"{restarted}:web.yaml")
    status = wait_rollout(env, restarted)
    assert status.returncode == 0, status.stderr
    after = {p["name"] for p in get(env["GITOPS_SERVER"] + "/api/v1/pods")}
    assert before.isdisjoint(after) and len(after) == 2

    # pause: a new image waits; resume: it rolls out
    assert rollout(env, "pause", "--push").returncode == 0
    git(remote.work, "pull", "-q", "origin", "main")
    text = (remote.work / "web.yaml").read_text()
    assert "paused: true" in text
    (remote.work / "web.yaml").write_text(text.replace(images["v1"], images["v2"]))
    paused_commit = remote.push("web v2 while paused")
    wait_for(lambda: get(env["GITOPS_SERVER"] + "/api/v1/status")["revision"] == paused_commit, 10)
    status = gitops("rollout", "status", "deployment/web", "-n", NS, "--no-watch", env=env)
    assert status.returncode == 1  # paused: not complete
    assert images_running(engine, instance, "web") == {images["v1"]}
    assert rollout(env, "resume", "--push").returncode == 0
    resumed = git(remote.bare, "rev-parse", "main")
    status = wait_rollout(env, resumed)
    assert status.returncode == 0, status.stderr
    assert images_running(engine, instance, "web") == {images["v2"]}


def test_sigkill_mid_rollout_then_restart_finishes_with_the_right_pods(
    remote: GitRemote, images: Images, engine: Any, instance: str, tmp_path: Path
) -> None:
    remote.write_text("ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n")
    slow = web_yaml(images["v1"]).replace(
        "  replicas: 2\n", "  replicas: 3\n  minReadySeconds: 2\n"
    )
    remote.write_text("web.yaml", slow)
    remote.push("web v1")
    port = free_port()
    env = {**os.environ, "GITOPS_SERVER": f"http://127.0.0.1:{port}"}
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "log")
    try:
        wait_for(lambda: _complete(env), 60, 0.2)
        remote.write_text("web.yaml", slow.replace(images["v1"], images["v2"]))
        remote.push("web v2")
        # kill it in the middle: old and new pods side by side
        wait_for(
            lambda: images_running(engine, instance, "web") == {images["v1"], images["v2"]},
            30,
            0.05,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "log")
        wait_for(
            lambda: images_running(engine, instance, "web") == {images["v2"]} and _complete(env),
            90,
            0.2,
        )
    finally:
        stop_gitops(proc)
    containers = engine.api.containers(
        all=True, filters={"label": f"io.gitops.instance={instance}"}
    )
    pods: dict[str, list[str]] = {}
    for c in containers:
        pods.setdefault(c["Labels"]["io.gitops.pod"], []).append(c["State"])
    assert len(pods) == 3, pods  # no duplicate, orphaned or lost pod
    # One container a pod, running: it holds its own network (probed from here, no pause).
    assert all(states == ["running"] for states in pods.values()), pods


def test_a_revert_after_an_automatic_rollback_is_judged_on_its_own(
    served: dict[str, str], remote: GitRemote, images: Images
) -> None:
    """v2 fails and is rolled back to v1 by itself; `rollout undo --push` (a commit asking for
    v1) is then a healthy commit, for `sync --wait` and `rollout status --commit` alike, and so
    is a later commit that leaves the template alone. `rollout status` right after a push
    follows the new rollout, not the verdict of the one before."""
    env = served
    fast = web_yaml(images["v2-unready"]).replace(
        f"  namespace: {NS}\n",
        f"  namespace: {NS}\n  annotations:\n    gitops.io/fail-fast: 'true'\n",
    )
    remote.write_text("web.yaml", fast)
    bad = remote.push("web v2, never ready")
    failed = wait_rollout(env, bad)
    assert failed.returncode == 1 and "rolled back" in failed.stderr, failed.stderr
    undo = rollout(env, "undo", "--push")
    assert undo.returncode == 0, undo.stderr
    undone = git(remote.bare, "rev-parse", "main")
    status = wait_rollout(env, undone)
    assert status.returncode == 0 and "successfully rolled out" in status.stderr, status.stderr
    waited = gitops("sync", "--wait", "--revision", undone, "--timeout", "60s", env=env)
    assert waited.returncode == 0, waited.stderr
    # a later commit that leaves the deployment's template alone: still healthy
    git(remote.work, "pull", "-q", "origin", "main")
    remote.write_text("README.md", "docs only\n")
    later = remote.push("docs")
    assert wait_rollout(env, later).returncode == 0
    assert (
        gitops("sync", "--wait", "--revision", later, "--timeout", "60s", env=env).returncode == 0
    )
    # right after a push, without --commit: the new rollout is followed (the newest record
    # is still the rollback, which would say "rolled back")
    remote.write_text("web.yaml", web_yaml(images["v2"]))
    good = remote.push("web v2, ready")
    now = gitops("rollout", "status", "deployment/web", "-n", NS, "--timeout", "60s", env=env)
    assert now.returncode == 0 and f"({good[:12]})" in now.stderr, now.stderr
