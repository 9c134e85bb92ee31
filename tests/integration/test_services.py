"""Services on a real engine: NodePort on 127.0.0.1, ready-only endpoints, zero downtime."""

from __future__ import annotations

import http.client
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from gitops.model.labels import L_INFRA, L_POD
from gitops.traffic.balancer import default_threads
from tests.conftest import (
    GitRemote,
    Images,
    containers_of,
    kill_proxies,
    start_gitops,
    stop_gitops,
)
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


def fetch(port: int, path: str = "/version", host: str = "127.0.0.1") -> str:
    conn = http.client.HTTPConnection(host, port, timeout=5)
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

    def __init__(
        self, port: int, limit: int = 8000, seconds: float = 180, host: str = "127.0.0.1"
    ) -> None:
        self.port, self.host, self.seen, self.failures = port, host, list[str](), list[str]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limit, seconds), daemon=True)

    def _run(self, limit: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and len(self.seen) + len(self.failures) < limit:
            if time.monotonic() > deadline:
                break
            try:
                self.seen.append(fetch(self.port, host=self.host))
            except (OSError, http.client.HTTPException) as exc:  # a cut-off answer fails too
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

    def newest_complete(commit: str = "") -> bool:
        """The newest rollout (of ``commit``, if given) is recorded Complete: one request."""
        newest = rollouts()[:1]
        return (
            bool(newest)
            and newest[0]["result"] == "Complete"
            and (not commit or newest[0]["commit"] == commit)
        )

    # v1 is the last healthy commit only once its rollout is recorded Complete (the endpoints
    # can show all three pods a moment before the pass that records it ends).
    wait_for(newest_complete, 30, 0.2)
    with Load(node_port) as load:
        bad = deploy(remote, images, node_port, "v2-unready", spec={"progressDeadlineSeconds": 4})
        wait_for(
            lambda: (
                any(r["commit"] == bad and r["result"] == "Failed" for r in rollouts())
                and newest_complete()
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
            lambda: newest_complete(restarted) and len(load.seen) >= 2000,
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
    # The name's proxy container is created on the Service's first pass: it may lag the
    # NodePort by a moment; from then on it follows the same endpoints.
    lag = wait_for(
        lambda: pod.exec_run(["wget", "-qO-", "http://web/version"]).exit_code == 0, 10, 0.1
    )
    print(f"\nby name after the endpoints showed: {lag:.2f}s")
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


def test_the_proxy_outlives_a_killed_reconciler_and_an_emptied_service_refuses(
    remote: GitRemote, images: Images, node_port: int, instance: str, tmp_path: Path
) -> None:
    """kube-proxy's rules outlive kube-proxy; ours outlive ``gitops run``: Services answer while
    it is down, and the next run adopts the proxy instead of fighting it for the ports."""
    remote.write("ns.yaml", namespace(NS))
    deploy(remote, images, node_port, "v1", spec={"replicas": 1})
    state, api_port = tmp_path / "state", free_port()
    api = f"http://127.0.0.1:{api_port}"
    proc = start_gitops(remote.bare, instance, state, api_port, tmp_path / "gitops.log")
    try:
        wait_for(lambda: len(endpoints(api, "web")) == 1, 60, 0.2)
        master = int((state / "proxy" / "haproxy.pid").read_text().split()[0])
        # HAProxy itself says how many threads it runs: half the cores, leaving the rest to pods
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(state / "proxy" / "admin.sock"))
            s.sendall(b"show info\n")
            info = b"".join(iter(lambda: s.recv(65536), b"")).decode()
        assert f"\nNbthread: {default_threads(os.cpu_count())}\n" in info, info
        v1, v2 = (images[v].rsplit(":", 1)[1] for v in ("v1", "v2"))
        with Load(node_port) as load:
            proc.kill()
            proc.wait(timeout=10)
            down = len(load.seen)
            wait_for(lambda: len(load.seen) >= down + 300, 30)  # served with gitops down
            proc = start_gitops(remote.bare, instance, state, api_port, tmp_path / "gitops.log")
            wait_for(lambda: len(endpoints(api, "web")) == 1, 60, 0.2)
            deploy(remote, images, node_port, "v2", spec={"replicas": 1})
            wait_for(lambda: load.seen[-20:] == [v2] * 20, 60, 0.2)
        print(f"\nkill, restart, update: {len(load.seen)} requests, {len(load.failures)} failed")
        assert load.failures == [], load.failures[:5]
        assert load.seen[0] == v1
        assert int((state / "proxy" / "haproxy.pid").read_text().split()[0]) == master

        # Its last pod gone, the Service refuses at once; with one back, it answers again.
        deploy(remote, images, node_port, "v2", spec={"replicas": 0})
        wait_for(lambda: not endpoints(api, "web"), 60, 0.2)
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", node_port), timeout=5).close()
        assert time.monotonic() - started < 1.0
        deploy(remote, images, node_port, "v2", spec={"replicas": 1})
        wait_for(lambda: len(endpoints(api, "web")) == 1, 60, 0.2)
        assert fetch(node_port) == v2
    finally:
        stop_gitops(proc)
    assert kill_proxies(tmp_path) == 0  # a clean stop stops the proxy too


def test_a_removed_pod_leaves_the_service_then_runs_pre_stop_then_sigterm_then_sigkill(
    remote: GitRemote,
    images: Images,
    node_port: int,
    running: str,
    engine: docker.DockerClient,
    instance: str,
) -> None:
    """Kubernetes' termination order, read from the engine's own event stream: out of the
    endpoints first, then the preStop hook, SIGTERM, and SIGKILL when the grace period (which
    covers hook and SIGTERM together) is over."""
    slow = deployment(
        name="slow",
        namespace=NS,
        image=images["v1"],
        replicas=1,
        container={
            # Ignores SIGTERM, so only SIGKILL at the end of the grace period ends it.
            "command": ["sh", "-c", 'trap "" TERM; exec httpd -f -p 8080 -h /www'],
            "ports": [{"name": "http", "containerPort": 8080}],
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 2"]}}},
        },
        pod={"terminationGracePeriodSeconds": 4},
    )
    remote.write("ns.yaml", namespace(NS))
    remote.write("slow.yaml", slow, service("slow", node_port, {"app": "slow"}))
    remote.push("slow to stop")
    wait_for(lambda: len(endpoints(running, "slow")) == 1, 60, 0.2)
    assert fetch(node_port) == images["v1"].rsplit(":", 1)[1]
    app = next(
        c
        for c in containers_of(engine, instance)
        if c.labels.get(L_POD, "").startswith("slow-") and c.labels.get(L_INFRA) != "true"
    )
    since = time.time()
    remote.write("slow.yaml", service("slow", node_port, {"app": "slow"}))
    remote.push("slow removed")
    wait_for(lambda: not endpoints(running, "slow"), 30, 0.1)
    app.reload()
    assert app.status == "running"  # still in its preStop hook or grace period, yet:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", node_port), timeout=5).close()
    wait_for(lambda: app.id not in {c.id for c in containers_of(engine, instance)}, 30, 0.2)
    events = engine.events(
        since=int(since) - 1, until=int(time.time()) + 1, decode=True,
        filters={"container": app.id},
    )  # fmt: skip
    seen = [(e["Action"], e["Actor"]["Attributes"].get("signal"), e["timeNano"] / 1e9)
            for e in events]  # fmt: skip
    hook = next(t for a, _, t in seen if a.startswith("exec_start") and "sleep 2" in a)
    term = next(t for a, sig, t in seen if a == "kill" and sig == "15")
    kill = next(t for a, sig, t in seen if a == "kill" and sig == "9")
    die = next(t for a, _, t in seen if a == "die")
    print(f"\npreStop at 0, SIGTERM +{term - hook:.2f}s, SIGKILL +{kill - hook:.2f}s")
    assert hook < term < kill <= die
    assert 1.9 <= term - hook < 3.0  # after the hook's 2 s
    assert 3.9 <= kill - hook < 5.5  # at the end of the 4 s grace period, not before


def _busy_pass(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    running: str,
    web_doc: dict[str, Any],
    node_port: int,
) -> tuple[Any, str, Any]:
    """``web_doc`` (2 replicas) behind a Service, and a pass busy stopping another pod through
    a 10 s preStop hook: (that pod's container, the first web pod's name and container)."""
    slow = deployment(
        name="slow", namespace=NS, image=images["v1"], replicas=1,
        container={"lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 10"]}}}},
        pod={"terminationGracePeriodSeconds": 12},
    )  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web_doc, service("web", node_port, {"app": "web"}))
    remote.write("slow.yaml", slow)
    remote.push("web and slow")
    wait_for(lambda: len(endpoints(running, "web")) == 2, 60, 0.2)
    pods = {c.labels[L_POD]: c for c in containers_of(engine, instance, infra=False)
            if L_POD in c.labels}  # fmt: skip
    slow_app = next(c for name, c in pods.items() if name.startswith("slow-"))
    first_name, first = next((n, c) for n, c in sorted(pods.items()) if n.startswith("web-"))
    remote.delete("slow.yaml")
    remote.push("slow removed")
    wait_for(lambda: any("sleep 10" in " ".join(p) for p in slow_app.top()["Processes"]), 30)
    return slow_app, first_name, first


def test_endpoints_follow_readiness_at_once_even_while_a_pass_is_busy(
    remote: GitRemote,
    images: Images,
    node_port: int,
    running: str,
    engine: docker.DockerClient,
    instance: str,
) -> None:
    """A pod leaves the endpoints when it stops being Ready and comes back when it is Ready
    again, within a second of the probe's verdict, while the reconciler is busy stopping
    another pod through a 10 s preStop hook (the verdict does not wait for the pass)."""
    ready_web = web(images, "v1", replicas=2)
    ready_web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].update(
        {"periodSeconds": 1, "failureThreshold": 1}
    )
    slow_app, victim_name, victim = _busy_pass(remote, images, engine, instance, running,
                                               ready_web, node_port)  # fmt: skip

    def names() -> set[str]:
        return {e["pod"] for e in endpoints(running, "web")}

    started = time.monotonic()
    victim.exec_run(["rm", "/www/healthz"])
    wait_for(lambda: victim_name not in names(), 10, 0.05)
    left = time.monotonic() - started
    slow_app.reload()
    assert slow_app.status == "running"  # the pass is still stopping it
    others = {hostname(node_port) for _ in range(20)}
    own = victim.exec_run(["hostname"]).output.decode().strip()
    assert own not in others and len(others) == 1

    started = time.monotonic()
    victim.exec_run(["sh", "-c", "echo ok > /www/healthz"])
    wait_for(lambda: victim_name in names(), 10, 0.05)
    back = time.monotonic() - started
    slow_app.reload()
    assert slow_app.status == "running"
    print(f"\nleft the endpoints {left:.2f}s after its health page went, back in {back:.2f}s")
    # A probe each second, failing (or passing) once is enough: verdict <= ~1.1 s, then < 1 s.
    assert left < 2.5 and back < 2.5


def test_a_container_that_dies_leaves_the_endpoints_even_while_a_pass_is_busy(
    remote: GitRemote,
    images: Images,
    node_port: int,
    running: str,
    engine: docker.DockerClient,
    instance: str,
) -> None:
    """A pod without a readiness probe (ready while it runs) whose container dies leaves the
    endpoints on the engine's word, not at the next pass: the busy one has seconds to go, and
    a lone container's address may meanwhile go to another pod."""
    plain = web(images, "v1", replicas=2)
    del plain["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    slow_app, crashed_name, crashed = _busy_pass(remote, images, engine, instance, running,
                                                 plain, node_port)  # fmt: skip
    crashed.kill()
    wait_for(lambda: crashed_name not in {e["pod"] for e in endpoints(running, "web")}, 5, 0.05)
    slow_app.reload()
    assert slow_app.status == "running"  # the pass is still stopping it
