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


class Load:
    """A client sending requests through the NodePort in a thread (bounded in count and time)."""

    def __init__(self, port: int, limit: int = 8000, seconds: float = 180) -> None:
        self.port, self.seen, self.failures = port, list[str](), list[str]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limit, seconds), daemon=True)

    def _run(self, limit: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and len(self.seen) + len(self.failures) < limit:
            if time.monotonic() > deadline:
                break
            try:
                self.seen.append(fetch(self.port))
            except OSError as exc:
                self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        wait_for(lambda: len(self.seen) >= 200, 30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def deploy(remote: GitRemote, images: Images, node_port: int, version: str, **extra: Any) -> str:
    doc = web(images, version)
    doc["spec"].update(extra.pop("spec", {}))
    doc["spec"]["template"]["metadata"].update(extra.pop("template_meta", {}))
    remote.write("web.yaml", doc, service("web", node_port, {"app": "web"}))
    return remote.push(f"web {version}")


def test_zero_downtime_rolling_update_through_a_node_port(
    remote: GitRemote, images: Images, node_port: int, running: str
) -> None:
    remote.write("ns.yaml", namespace(NS))
    deploy(remote, images, node_port, "v1")
    wait_for(lambda: len(endpoints(running, "web")) == 3, 60, 0.2)
    v1, v2 = images["v1"].rsplit(":", 1)[1], images["v2"].rsplit(":", 1)[1]
    assert fetch(node_port) == v1
    with Load(node_port) as load:
        deploy(remote, images, node_port, "v2")
        wait_for(lambda: load.seen[-20:] == [v2] * 20 and len(load.seen) >= 2000, 150, 0.2)
    seen = load.seen
    print(f"\nrolling update: {len(seen)} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert len(seen) >= 2000
    assert seen[0] == v1 and seen[-1] == v2
    assert set(seen[: seen.index(v2)]) == {v1}  # the old version, then the new one


def test_zero_downtime_through_an_automatic_rollback_and_a_rolling_restart(
    remote: GitRemote, images: Images, node_port: int, running: str
) -> None:
    remote.write("ns.yaml", namespace(NS))
    deploy(remote, images, node_port, "v1", spec={"progressDeadlineSeconds": 4})
    wait_for(lambda: len(endpoints(running, "web")) == 3, 60, 0.2)
    v1 = images["v1"].rsplit(":", 1)[1]

    def rollouts() -> list[Any]:
        return list(get(running + f"/api/v1/rollouts/{NS}/web")["rollouts"])

    with Load(node_port) as load:
        bad = deploy(remote, images, node_port, "v2-unready", spec={"progressDeadlineSeconds": 4})
        wait_for(
            lambda: (
                any(r["commit"] == bad and r["result"] == "Failed" for r in rollouts())
                and rollouts()[0]["result"] == "Complete"
                and len(load.seen) >= 2000
            ),
            150,
            0.2,
        )
    print(f"\nautomatic rollback: {len(load.seen)} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert len(load.seen) >= 2000 and set(load.seen) == {v1}  # the unready version never served
    before = {p["name"] for p in get(running + "/api/v1/pods")}
    with Load(node_port) as load:
        restarted = deploy(
            remote,
            images,
            node_port,
            "v1",
            spec={"progressDeadlineSeconds": 4},
            template_meta={"annotations": {"gitops.io/restartedAt": "2026-11-22T00:00:00Z"}},
        )
        wait_for(
            lambda: (
                rollouts()[0]["commit"] == restarted
                and rollouts()[0]["result"] == "Complete"
                and len(load.seen) >= 2000
            ),
            150,
            0.2,
        )
    print(f"rolling restart: {len(load.seen)} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert len(load.seen) >= 2000 and set(load.seen) == {v1}
    after = {p["name"] for p in get(running + "/api/v1/pods") if p["deployment"] == "web"}
    assert before.isdisjoint(after) and len(after) == 3  # every pod was replaced


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
