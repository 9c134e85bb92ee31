"""``gitops run`` as users run it: a process, a push into a watched bare repository, the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import deployment, namespace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gitops(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops", *args], capture_output=True, text=True, timeout=120, **kw
    )


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout`` (bounded polling)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def server(
    remote: GitRemote, images: Images, instance: str, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    remote.write("ns.yaml", namespace("runtest"))
    remote.write("web.yaml", deployment(namespace="runtest", image=images["v1"], replicas=2))
    remote.push("v1")
    port = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _status(url).get("result") == "Succeeded", 60, 0.2)
        yield url, proc
    finally:
        stop_gitops(proc)


def _status(url: str) -> dict[str, Any]:
    try:
        return dict(get(url + "/api/v1/status"))
    except OSError:
        return {}


def test_push_is_picked_up_within_a_second_and_served_by_the_api(
    server: tuple[str, subprocess.Popen[bytes]], remote: GitRemote, images: Images
) -> None:
    url, proc = server
    assert get(url + "/healthz") == {"status": "ok"}
    ready = get(url + "/readyz")
    assert ready["ready"] is True and ready["nodes"] == {"local": "Ready"}
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "web", "namespace": "runtest"},
    }
    app = deployment(
        namespace="runtest", image=images["v2"], replicas=2, pod={"serviceAccountName": "web"}
    )
    remote.write("web.yaml", app, account)
    pushed = time.monotonic()
    sha = remote.push("v2")
    took = wait_for(lambda: _status(url).get("revision") == sha, 5)
    assert time.monotonic() - pushed < 3 and took < 3  # watch-triggered; the poll is 60 s away
    wait_for(
        lambda: (
            [r["health"] for r in _status(url)["resources"] if r["kind"] == "Deployment"]
            == ["Healthy"]
            and all(p["commit"] == sha for p in get(url + "/api/v1/pods"))
        ),
        60,
        0.2,
    )
    env = {**os.environ, "GITOPS_SERVER": url}
    listed = json.loads(gitops("get", "pods", "-n", "runtest", "-o", "json", env=env).stdout)
    pods = listed["items"]  # a Kubernetes List, as kubectl prints it
    assert len(pods) == 2 and {p["status"]["phase"] for p in pods} == {"Running"}
    assert {p["metadata"]["annotations"]["gitops.io/commit"] for p in pods} == {sha}
    table = gitops("get", "deployments", "-o", "wide", env=env)
    assert table.returncode == 0
    assert "web" in table.stdout and "2/2" in table.stdout and "Synced" in table.stdout
    assert images["v2"] in table.stdout
    history = json.loads(gitops("history", "-o", "json", env=env).stdout)
    assert history[0]["revision"] == sha and history[0]["result"] == "Succeeded"
    status = gitops("status", env=env)
    assert status.returncode == 0
    assert (
        "Warning: web.yaml:0: Deployment/web: spec.template.spec.serviceAccountName: ignored"
        in status.stdout
    )
    every = gitops("get", "all", "-n", "runtest", env=env)
    assert every.returncode == 0
    [skipped] = [line for line in every.stdout.splitlines() if "serviceaccount/web" in line]
    assert "Skipped" in skipped and "no Kubernetes API server" in skipped
    assert proc.poll() is None


def test_bad_commit_is_reported_by_status_and_the_process_keeps_serving(
    server: tuple[str, subprocess.Popen[bytes]], remote: GitRemote
) -> None:
    url, proc = server
    remote.write_text("web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web\n")
    sha = remote.push("broken")
    wait_for(lambda: _status(url).get("revision") == sha, 5)
    env = {**os.environ, "GITOPS_SERVER": url}
    status = gitops("status", env=env)
    assert status.returncode == 1
    assert "web.yaml:0: YAML syntax error" in status.stdout
    assert proc.poll() is None
    pods = get(url + "/api/v1/pods")
    assert len(pods) == 2


def test_cli_exit_codes_and_help(
    tmp_path: Path, remote: GitRemote, images: Images, instance: str
) -> None:
    for verb in ("run", "sync", "diff", "validate", "get", "status", "history"):
        out = gitops(verb, "--help")
        assert out.returncode == 0 and "usage: gitops " + verb in out.stdout
    repo_root = Path(__file__).resolve().parents[2]
    assert gitops("validate", str(repo_root / "example-repo")).returncode == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: Bad}\nspec: {ports: [{port: 0}]}\n"
    )
    out = gitops("validate", str(bad))
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "x.yaml:0: Service/Bad: metadata.name: invalid name 'Bad': a DNS-1123 label must consist "
        "of lower case alphanumeric characters or '-', start and end with an alphanumeric "
        "character, at most 63 characters",
        "x.yaml:0: Service/Bad: spec.ports[0].port: port 0 is out of range 1-65535",
    ]
    assert json.loads(gitops("validate", str(bad), "-o", "json").stdout)["valid"] is False
    # diff: 1 with differences, then sync, then 0
    remote.write("ns.yaml", namespace("difftest"))
    remote.write("web.yaml", deployment(namespace="difftest", image=images["v1"], replicas=1))
    remote.push("v1")
    common = [
        "--repo",
        str(remote.bare),
        "--state-dir",
        str(tmp_path / "s"),
        "--instance",
        instance,
    ]
    diff = gitops("diff", *common)
    assert diff.returncode == 1 and "+ pod difftest/web-" in diff.stdout
    sync = gitops("sync", *common, "-o", "json")
    assert sync.returncode == 0, sync.stderr
    assert json.loads(sync.stdout)["result"] == "Succeeded"
    assert gitops("diff", *common).returncode == 0
    missing = gitops(
        "diff",
        "--repo",
        str(tmp_path / "nope.git"),
        "--state-dir",
        str(tmp_path / "s2"),
        "--instance",
        instance,
    )
    assert missing.returncode == 2 and "cannot fetch" in missing.stderr
    assert gitops("get", "pods", "--server", "http://127.0.0.1:9").returncode == 2


def test_container_killed_out_of_band_is_repaired_without_waiting_for_the_poll(
    server: tuple[str, subprocess.Popen[bytes]], engine: Any, instance: str
) -> None:
    url, _ = server
    from tests.conftest import containers_of

    victim = next(c for c in containers_of(engine, instance, infra=False) if c.status == "running")
    victim.kill()
    gone = victim.id
    # the poll is 60 s away: only the engine's event stream can bring it back this soon
    wait_for(
        lambda: (
            sum(1 for p in get(url + "/api/v1/pods") if p["status"] == "Running") == 2
            and any(
                c.id == gone and c.status == "running"
                for c in containers_of(engine, instance, infra=False)
            )
        ),
        20,
        0.2,
    )
