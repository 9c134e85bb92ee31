"""Services on a real engine: NodePort on 127.0.0.1, ready-only endpoints, zero downtime."""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import deployment, namespace
from tests.integration.test_run import free_port, get, wait_for

NS = "svc"


def service(name: str, node_port: int, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "type": "NodePort",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": node_port}],
        },
    }


def web(
    images: Images, version: str, name: str = "web", replicas: int = 3, app: str = "web"
) -> dict[str, Any]:
    doc = deployment(
        name=name,
        namespace=NS,
        image=images[version],
        replicas=replicas,
        container={
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        },
        strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    )
    doc["spec"]["selector"]["matchLabels"] = {"app": app, "tier": name}
    doc["spec"]["template"]["metadata"]["labels"] = {"app": app, "tier": name}
    return doc


def fetch(port: int, path: str = "/version") -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode().strip()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}")
        return body
    finally:
        conn.close()


@pytest.fixture
def node_port() -> int:
    return random.randint(31000, 32700)


@pytest.fixture
def running(remote: GitRemote, instance: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_gitops(proc)


def endpoints(api: str, name: str) -> list[Any]:
    try:
        rows = get(api + f"/api/v1/endpoints?namespace={NS}")
    except OSError:
        return []
    return next((r["endpoints"] for r in rows if r["name"] == name), [])


def test_zero_downtime_rolling_update_through_a_node_port(
    remote: GitRemote, images: Images, node_port: int, running: str, tmp_path: Path
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"), service("web", node_port, {"app": "web"}))
    remote.push("v1")
    wait_for(lambda: len(endpoints(running, "web")) == 3, 60, 0.2)
    v1, v2 = images["v1"].rsplit(":", 1)[1], images["v2"].rsplit(":", 1)[1]
    assert fetch(node_port) == v1
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + 150
        while (
            not stop.is_set() and len(seen) + len(failures) < 6000 and time.monotonic() < deadline
        ):
            try:
                seen.append(fetch(node_port))
            except OSError as exc:
                failures.append(repr(exc))

    worker = threading.Thread(target=client, daemon=True)
    worker.start()
    wait_for(lambda: len(seen) >= 200, 30)
    remote.write("web.yaml", web(images, "v2"), service("web", node_port, {"app": "web"}))
    remote.push("v2")
    wait_for(lambda: seen[-20:] == [v2] * 20 and len(seen) >= 2000, 150, 0.2)
    stop.set()
    worker.join(timeout=30)
    print(
        f"\nzero-downtime: {len(seen)} requests, {len(failures)} failed, v1 {seen.count(v1)}, v2 {seen.count(v2)}"
    )
    assert failures == [], failures[:5]
    assert len(seen) >= 2000
    assert seen[0] == v1 and seen[-1] == v2
    first_v2 = seen.index(v2)
    assert set(seen[:first_v2]) == {v1}  # the old version, then the new one


def test_not_ready_pods_get_no_traffic_and_an_empty_service_refuses_at_once(
    remote: GitRemote, images: Images, node_port: int, running: str
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write(
        "mixed.yaml",
        web(images, "v1", name="good", replicas=1, app="mixed"),
        web(images, "v2-unready", name="bad", replicas=2, app="mixed"),
        service("mixed", node_port, {"app": "mixed"}),
        service("nobody", node_port + 1 if node_port < 32767 else node_port - 1, {"app": "nobody"}),
    )
    remote.push("mixed readiness")
    wait_for(lambda: len(endpoints(running, "mixed")) == 1, 60, 0.2)
    pods = {p["name"]: p for p in get(running + "/api/v1/pods")}
    assert sum(1 for name in pods if name.startswith("bad-")) == 2  # running, but not ready
    assert all(p["status"] == "NotReady" for name, p in pods.items() if name.startswith("bad-"))
    v1 = images["v1"].rsplit(":", 1)[1]
    answers = {fetch(node_port) for _ in range(60)}
    assert answers == {v1}  # every request went to the one ready pod
    empty_port = node_port + 1 if node_port < 32767 else node_port - 1
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", empty_port), timeout=5).close()
    assert time.monotonic() - started < 1.0  # refused at once, not left hanging


def hostname(port: int) -> str:
    body = fetch(port, "/cgi-bin/env")
    return next(
        line.split(": ", 1)[1] for line in body.splitlines() if line.startswith("hostname: ")
    )


def test_round_robin_and_client_ip_affinity(
    remote: GitRemote, images: Images, node_port: int, running: str
) -> None:
    sticky_port = node_port + 1 if node_port < 32767 else node_port - 1
    sticky = service("sticky", sticky_port, {"app": "web"})
    sticky["spec"]["sessionAffinity"] = "ClientIP"
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"), service("web", node_port, {"app": "web"}), sticky)
    remote.push("two services over one deployment")
    wait_for(
        lambda: len(endpoints(running, "web")) == 3 and len(endpoints(running, "sticky")) == 3,
        60,
        0.2,
    )
    spread = [hostname(node_port) for _ in range(30)]
    assert len(set(spread)) == 3 and all(spread.count(h) == 10 for h in set(spread))  # round-robin
    stuck = {hostname(sticky_port) for _ in range(30)}
    assert len(stuck) == 1  # one client address, one pod


def test_pods_reach_a_service_by_name(
    remote: GitRemote, images: Images, node_port: int, running: str, engine: Any, instance: str
) -> None:
    remote.write("ns.yaml", namespace(NS))
    client = deployment(name="client", namespace=NS, image=images["v1"], replicas=1)
    remote.write("web.yaml", web(images, "v1"), service("web", node_port, {"app": "web"}), client)
    remote.push("web, its service and a client")
    wait_for(lambda: len(endpoints(running, "web")) == 3, 60, 0.2)
    [pod] = [
        c
        for c in engine.containers.list(
            filters={"label": [f"io.gitops.instance={instance}", "io.gitops.deployment=client"]}
        )
        if c.labels.get("io.gitops.container") == "web"
    ]
    v1 = images["v1"].rsplit(":", 1)[1]
    for name in ("web", f"web.{NS}", f"web.{NS}.svc"):
        result = pod.exec_run(["wget", "-qO-", f"http://{name}/version"])
        assert (result.exit_code, result.output.decode().strip()) == (0, v1), name
    hosts = set()
    for _ in range(30):  # balanced over the pods behind it
        body = pod.exec_run(["wget", "-qO-", "http://web/cgi-bin/env"]).output.decode()
        hosts |= {
            line.split(": ", 1)[1] for line in body.splitlines() if line.startswith("hostname: ")
        }
    assert len(hosts) >= 2, hosts
