"""``gitops logs`` and the log API over real sockets, in front of a reconciler on the in-memory
node: the token is needed, bad parameters get Kubernetes' own words, a followed stream gets new
lines as they are written, and a client that leaves frees its stream."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gitops.nodes.memory import MemoryNode
from gitops.reconciler import Reconciler
from gitops.serve import streams
from tests.conftest import GitRemote
from tests.helpers import deployment
from tests.hostile.test_front_door import IMAGE, api_of, make

TOKEN = "t0ken"


@pytest.fixture
def served(remote: GitRemote, tmp_path: Path) -> Iterator[tuple[str, Reconciler, MemoryNode]]:
    remote.write("web.yaml", deployment(image=IMAGE, replicas=2))
    remote.push("web")
    node = MemoryNode("local", {IMAGE})
    reconciler = make(remote, tmp_path, node)
    reconciler.settings = replace(reconciler.settings, api_token=TOKEN)
    reconciler.reconcile("test")
    for i, pod in enumerate(sorted(reconciler.look().pods, key=lambda p: p.name)):
        node.output[pod.app_containers()[0].id] = f"hello from {i}\nsecond line {i}\n"
    with api_of(reconciler) as (url, _):
        yield url, reconciler, node


def call(server: str, path: str, token: str | None = TOKEN) -> tuple[int, str]:
    host, port = server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def names(reconciler: Reconciler) -> list[str]:
    return sorted(p.name for p in reconciler.look().pods)


def test_a_pods_log_needs_the_token_and_takes_kubernetes_parameters(
    served: tuple[str, Reconciler, MemoryNode],
) -> None:
    server, reconciler, _ = served
    first = names(reconciler)[0]
    path = f"/api/v1/namespaces/demo/pods/{first}/log"
    assert call(server, path, token=None)[0] == 401
    assert call(server, path, token="wrong")[0] == 401
    assert call(server, path) == (200, "hello from 0\nsecond line 0\n")
    assert call(server, path + "?tailLines=1") == (200, "second line 0\n")
    assert call(server, path + "?tailLines=-1")[1].count("\n") == 2
    assert call(server, path + "?limitBytes=5") == (200, "hello")
    code, text = call(server, path + "?timestamps=true&container=web")
    assert code == 200 and text.split(" ", 1)[0].endswith("Z") and "hello from 0" in text
    for bad, said in [
        ("?tailLines=x", "tailLines: expected an integer"),
        ("?follow=maybe", "follow: expected true or false"),
        ("?sinceTime=yesterday", "sinceTime:"),
        ("?sinceTime=2026-01-01T00:00:00Z&sinceSeconds=5", "at most one of"),
        ("?container=nope", f"container nope is not valid for pod {first}"),
        ("?previous=true", f'previous terminated container "web" in pod "{first}" not found'),
    ]:
        code, text = call(server, path + bad)
        assert code == 400 and said in json.loads(text)["error"], (bad, text)
    code, text = call(server, "/api/v1/namespaces/demo/pods/nope/log")
    assert code == 404 and json.loads(text)["error"] == 'pods "nope" not found'


def test_a_followed_log_streams_and_a_client_that_leaves_frees_its_stream(
    served: tuple[str, Reconciler, MemoryNode],
) -> None:
    server, reconciler, node = served
    pod = next(p for p in reconciler.look().pods if p.name == names(reconciler)[0])
    cid = pod.app_containers()[0].id
    host, port = server.removeprefix("http://").split(":")
    path = f"/api/v1/namespaces/demo/pods/{pod.name}/log?follow=true&tailLines=0"
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"

    def write() -> None:
        for i in range(3):
            time.sleep(0.2)
            node.output[cid] += f"tick {i}\n"
        time.sleep(0.2)
        node.crash(cid, 1)

    threading.Thread(target=write, daemon=True).start()
    started = time.monotonic()
    got = [resp.readline().decode() for _ in range(3)]
    assert got == ["tick 0\n", "tick 1\n", "tick 2\n"] and time.monotonic() - started > 0.4
    assert resp.read() == b""  # the container stopped: the stream ends
    conn.close()

    # As many followers as the cap, then one too many; once they leave, room again.
    other = names(reconciler)[1]
    follow = f"GET /api/v1/namespaces/demo/pods/{other}/log?follow=true HTTP/1.1\r\n"
    request = (follow + f"Host: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").encode()
    socks = []
    for _ in range(streams.MAX_STREAMS):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(request)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        socks.append(s)
    code, text = call(server, f"/api/v1/namespaces/demo/pods/{other}/log?follow=true")
    assert code == 429 and "try again later" in text
    assert call(server, "/api/v1/status")[0] == 200  # reads are still served meanwhile
    for s in socks:
        s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(request)
        answer = s.recv(4096)
        s.close()
        if answer.startswith(b"HTTP/1.1 200"):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the streams of clients that left were not freed")


def gitops(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITOPS_API_TOKEN": TOKEN}
    return subprocess.run([sys.executable, "-m", "gitops", "logs", *args, "--server", server],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


def test_the_logs_verb_reads_a_pod_a_workload_or_a_selector(
    served: tuple[str, Reconciler, MemoryNode],
) -> None:
    server, reconciler, _ = served
    first, second = names(reconciler)
    one = gitops(server, first, "--tail", "1")
    assert (one.returncode, one.stdout) == (0, "second line 0\n"), one.stderr
    every = gitops(server, "deployment/web", "-n", "demo")
    assert every.returncode == 0, every.stderr
    assert every.stdout.splitlines() == [
        f"[pod/{first}/web] hello from 0", f"[pod/{first}/web] second line 0",
        f"[pod/{second}/web] hello from 1", f"[pod/{second}/web] second line 1",
    ]  # fmt: skip
    chosen = gitops(server, "-l", "app=web,tier notin (db)", "-o", "json", "--tail", "1")
    rows = [json.loads(line) for line in chosen.stdout.splitlines()]
    assert [(r["pod"], r["message"]) for r in rows] == [(first, "second line 0"),
                                                       (second, "second line 1")]  # fmt: skip
    assert all(r["time"].endswith("Z") and r["node"] == "local" for r in rows)
    for args, said in [
        (("nope",), "no pods found for nope"),
        (("cronjob/x",), "expected POD or KIND/NAME"),
        (("-l", "app in ("), "-l:"),
        ((), "name a POD"),
    ]:
        bad = gitops(server, *args)
        assert bad.returncode == 2 and said in bad.stderr and "Traceback" not in bad.stderr
    without = subprocess.run(
        [sys.executable, "-m", "gitops", "logs", first, "--server", server],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "GITOPS_API_TOKEN": "", "GITOPS_STATE_DIR": "/nonexistent"},
    )  # fmt: skip
    assert without.returncode == 1 and "need the token" in without.stderr
