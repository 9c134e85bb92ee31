"""Events of real passes on the in-memory node, and the event API and ``gitops get events``
over real sockets: what a pass did is recorded with its object, repeats fold, a watch sees
new ones as they happen."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gitops.nodes.memory import MemoryNode
from gitops.reconciler import Reconciler
from tests.conftest import GitRemote, converge
from tests.helpers import deployment
from tests.hostile.test_front_door import IMAGE, api_of, make


@pytest.fixture
def served(remote: GitRemote, tmp_path: Path) -> Iterator[tuple[str, Reconciler, MemoryNode]]:
    remote.write("web.yaml", deployment(image=IMAGE, replicas=2))
    remote.push("web")
    node = MemoryNode("local", {IMAGE})
    reconciler = make(remote, tmp_path, node)
    reconciler.settings = replace(reconciler.settings, api_token="t")
    converge(reconciler)
    with api_of(reconciler) as (url, _):
        yield url, reconciler, node


def reasons(reconciler: Reconciler, kind: str = "") -> list[tuple[str, str]]:
    assert reconciler.events is not None
    return [(e.ref, e.reason) for e in reconciler.events.list("demo", kind)]


def test_a_pass_records_what_it_did_with_its_object(
    served: tuple[str, Reconciler, MemoryNode], remote: GitRemote
) -> None:
    _, reconciler, node = served
    pods = sorted(p.name for p in reconciler.look().pods)
    seen = reasons(reconciler)
    assert ("deployment/web", "RolloutStarted") in seen
    assert ("deployment/web", "RolloutComplete") in seen
    for pod in pods:
        order = [seen.index((f"pod/{pod}", why)) for why in ("Scheduled", "Created", "Started")]
        assert order == sorted(order)
        assert (f"pod/{pod}", "Pulled") in seen
    assert reconciler.events is not None
    pulls = [e for e in reconciler.events.list("demo", "Pod") if e.reason == "Pulling"]
    assert pulls and f'Pulling image "{IMAGE}"' == pulls[0].message  # the first pass pulled it
    remote.write("web.yaml", deployment(image=IMAGE, replicas=3))
    remote.push("scale up")
    converge(reconciler)
    assert ("deployment/web", "ScalingUp") in reasons(reconciler, "Deployment")
    assert reconciler.events is not None
    [up] = [e for e in reconciler.events.list("demo", "Deployment") if e.reason == "ScalingUp"]
    assert up.message == "Scaled up to 3 replica(s) from 2"
    crashed = reconciler.look().pods[0]
    node.crash(crashed.app_containers()[0].id, 1)
    converge(reconciler)
    assert reconciler.events is not None
    [backoff] = [e for e in reconciler.events.list("demo", "Pod") if e.reason == "BackOff"]
    assert backoff.name == crashed.name and backoff.type == "Warning"
    assert "Back-off restarting failed container web" in backoff.message
    remote.write("web.yaml", deployment(image=IMAGE, replicas=1))
    remote.push("scale down")
    converge(reconciler)
    seen = reasons(reconciler)
    assert ("deployment/web", "ScalingDown") in seen
    assert sum(1 for ref, why in seen if why == "Killing") == 2


def gitops(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops", "get", "events", *args, "--server",
                           server], capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_event_api_lists_filters_and_watches(
    served: tuple[str, Reconciler, MemoryNode], remote: GitRemote
) -> None:
    server, reconciler, _ = served
    table = gitops(server, "-n", "demo")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("Scheduled" in r and "pod/web-" in r and "Successfully assigned" in r for r in rows)
    listed = json.loads(gitops(server, "--for", "deployment/web", "-o", "json").stdout)
    assert listed["kind"] == "EventList" and listed["items"]
    assert {e["involvedObject"]["name"] for e in listed["items"]} == {"web"}
    bad = gitops(server, "--for", "nonsense")
    assert bad.returncode == 2 and "expected KIND/NAME" in bad.stderr

    # A watch from now on: the next event comes as a line, typed as Kubernetes types it.
    host, port = server.removeprefix("http://").split(":")
    rv = listed["metadata"]["resourceVersion"]
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET /api/v1/events?watch=true&resourceVersion={rv}&namespace=demo "
                  "HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # fmt: skip
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        remote.write("web.yaml", deployment(image=IMAGE, replicas=3))
        remote.push("scale up")
        converge(reconciler)
        got = b""
        deadline = time.monotonic() + 10
        while b"ScalingUp" not in got and time.monotonic() < deadline:
            got += s.recv(65536)
    lines = [json.loads(x) for x in got.split(b"\r\n") if x.startswith(b"{")]
    assert any(x["type"] == "ADDED" and x["object"]["reason"] == "ScalingUp" for x in lines)


def test_get_pods_watch_prints_pods_as_they_come(
    served: tuple[str, Reconciler, MemoryNode], remote: GitRemote
) -> None:
    server, reconciler, _ = served
    watcher = subprocess.Popen(
        [sys.executable, "-m", "gitops", "get", "pods", "-n", "demo", "-w", "--server", server],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        first = [watcher.stdout.readline() for _ in range(2)]
        assert all(line.startswith("demo   web-") for line in first)
        remote.write("web.yaml", deployment(image=IMAGE, replicas=3))
        remote.push("scale up")
        converge(reconciler)
        third = watcher.stdout.readline()
        assert third.startswith("demo   web-") and third not in first
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
