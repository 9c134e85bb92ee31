"""The dashboard's shared look is told by the engine, not aged: through ``gitops run`` on the
real dockerd, a container paused and unpaused out of band (no pass runs for it: the poll is a
minute away and a pause needs no repair) shows on the map as soon as the engine's event stream
says so, well before the ``WATCHED_MAX_AGE`` a look would otherwise serve, and the page's event
stream says ``change`` for it. Until then, with every engine's stream open and nothing moving,
the pages read one look for longer than ``MAX_AGE``."""

from __future__ import annotations

import http.client
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from gitops.serve.dashboard.looks import MAX_AGE, WATCHED_MAX_AGE
from tests.conftest import GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import deployment, namespace
from tests.integration.test_run import free_port, get, wait_for

NS = "toldtest"
ROW = re.compile(r'<tr data-workload="toldtest/web">(.*?)</tr>', re.S)


@pytest.fixture
def api(remote: GitRemote, images: Images, instance: str, tmp_path: Path) -> Iterator[str]:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", deployment(namespace=NS, image=images["v1"], replicas=1))
    remote.push("v1")
    port = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _cells(url) == ["ready"], 90, 0.3)
        yield url
    finally:
        stop_gitops(proc)


def _map(url: str) -> str:
    try:
        with urllib.request.urlopen(url + "/ui/map", timeout=10) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def _cells(url: str) -> list[str]:
    """The readiness of each pod in the Deployment's row of the map."""
    row = ROW.search(_map(url))
    return re.findall(r'class="pod (ready|unready)', row.group(1)) if row else []


def _seen(url: str) -> float:
    """How old the look the map was drawn from is, in seconds ("as seen 3.5s ago")."""
    found = re.search(r'data-test="seen">as seen ([\d.]+)(m?s) ago', _map(url))
    assert found, "the map says when its look was taken"
    return float(found.group(1)) / (1000 if found.group(2) == "ms" else 1)


def _changes(url: str, stop: threading.Event, seen: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)
    conn.request("GET", "/ui/stream")
    resp = conn.getresponse()
    while not stop.is_set():
        line = resp.readline()
        if not line:
            return
        if line.startswith(b"event: change"):
            seen.append(time.monotonic())


def test_a_container_paused_out_of_band_shows_at_once_not_when_the_look_expires(
    api: str, engine: docker.DockerClient
) -> None:
    [pod] = [p for p in get(api + f"/api/v1/pods?namespace={NS}") if "containers" in p]
    container = engine.containers.get(pod["containers"][0]["id"])
    stop, changes = threading.Event(), list[float]()
    reader = threading.Thread(target=_changes, args=(api, stop, changes), daemon=True)
    reader.start()
    try:
        time.sleep(0.5)  # the page's stream is open
        assert _cells(api) == ["ready"]  # a look taken now serves the pages while nothing moves
        time.sleep(MAX_AGE + 1.5)
        assert _seen(api) >= MAX_AGE + 1, "every engine's stream is open: the look is trusted"
        asked = time.monotonic()
        container.pause()
        shown = wait_for(lambda: _cells(api) == ["unready"], WATCHED_MAX_AGE / 3, 0.1)
        assert any(t >= asked for t in changes), "the event stream said no change"
        container.unpause()
        wait_for(lambda: _cells(api) == ["ready"], WATCHED_MAX_AGE / 3, 0.1)
        print(f"paused shown after {shown:.2f} s")
    finally:
        stop.set()
        container.reload()
        if container.status == "paused":
            container.unpause()
