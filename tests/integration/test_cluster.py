"""Several nodes: three more dockerd processes on this machine (``scripts/nodes``), each with
its own socket, data root, exec root, pid file and bridge, pulling from the local registry.

Scheduling spreads and filters; a stopped engine's pods are replaced on the others within the
eviction timeout while the Service keeps answering; the engine's return leaves exactly
``replicas`` pods; drain empties a node without a failed request."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from dnslib import RCODE, DNSRecord

from tests.conftest import ROOT, GitRemote, Images, remove_instance, start_gitops, stop_gitops
from tests.helpers import deployment, namespace
from tests.integration.test_run import free_port, get, gitops, wait_for
from tests.integration.test_services import Load, fetch, service

NS = "cluster"
NODES = ("node1", "node2", "node3")
GRACE, EVICTION = 2.0, 6.0


def nodes_script(*args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "nodes"), *args], check=True, timeout=120)


def engine_of(i: int) -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix:///run/gitops-nodes/node{i}.sock", version="auto")


@pytest.fixture(scope="module")
def engines(images: Images) -> Iterator[dict[str, docker.DockerClient]]:
    nodes_script("up", "3")
    clients = {f"node{i}": engine_of(i) for i in (1, 2, 3)}
    yield clients
    for c in clients.values():
        with contextlib.suppress(Exception):
            for img in c.images.list(name=images.repo):
                c.images.remove(str(img.id), force=True)
        c.close()
    nodes_script("down")


@pytest.fixture
def cluster(
    engines: dict[str, docker.DockerClient], remote: GitRemote, instance: str, tmp_path: Path
) -> Iterator[Any]:
    """``gitops run`` over the three nodes, from a configuration file with labels and short
    health timings; yields its API URL. Every node is cleaned of the test's containers after."""
    nodes_script("up", "3")  # a test may have stopped one
    config = tmp_path / "gitops.yaml"
    config.write_text(
        "nodes:\n"
        + "".join(
            f"  - name: node{i}\n"
            f"    endpoint: unix:///run/gitops-nodes/node{i}.sock\n"
            f"    address: 127.0.0.1{i}\n"
            f"    labels: {{zone: {'a' if i == 1 else 'b'}}}\n"
            f"    reserve: {{cpu: 100m, memory: 256Mi}}\n" + ("    proxy: node\n" if i == 3 else "")
            # node3 serves its NodePorts itself, as a node on another machine does.
            for i in (1, 2, 3)
        )
        + f"nodeGracePeriod: {GRACE}s\nevictionTimeout: {EVICTION}s\n"
        # One directory of this machine that every node's volumes bind: a shared storage.
        + "storageClasses:\n  shared-dir:\n    driver: local\n    shared: true\n"
        + f"    options: {{type: none, o: bind, device: {shared_dir(tmp_path)}}}\n"
    )
    port = free_port()
    proc = start_gitops(
        remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log",
        ("--config", str(config)),
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(api), 30, 0.2)
        yield api
    finally:
        stop_gitops(proc)
        nodes_script("up", "3")
        for c in engines.values():
            remove_instance(c, instance)


def shared_dir(tmp_path: Path) -> Path:
    path = tmp_path / "shared"
    path.mkdir(exist_ok=True)
    return path


def _answers(api: str) -> bool:
    try:
        get(api + "/healthz")
    except OSError:
        return False
    return True


def pods(api: str, deployment_name: str = "web") -> list[dict[str, Any]]:
    try:
        rows = get(api + f"/api/v1/pods?namespace={NS}")
    except OSError:
        return []
    return [p for p in rows if p["deployment"] == deployment_name]


def per_node(api: str, name: str = "web") -> dict[str, int]:
    return dict(Counter(p["node"] for p in pods(api, name) if p["status"] == "Running"))


def web(images: Images, replicas: int, **extra: Any) -> dict[str, Any]:
    doc = deployment(
        namespace=NS, image=images["v1"], replicas=replicas,
        container={
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        },
        strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        **extra,
    )  # fmt: skip
    return doc


def ready_endpoints(api: str) -> int:
    rows = get(api + f"/api/v1/endpoints?namespace={NS}")
    return len(rows[0]["endpoints"]) if rows else 0


def node_port_service(port: int) -> dict[str, Any]:
    doc = service("web", port, {"app": "web"})
    doc["metadata"]["namespace"] = NS
    return doc


def one_web_pod_per_node(api: str, remote: GitRemote, images: Images) -> int:
    """Three web replicas, one on each node, all behind a NodePort Service; returns its port."""
    port = 31000 + free_port() % 1700
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, 3), node_port_service(port))
    remote.push("three web behind a NodePort")
    wait_for(lambda: per_node(api) == {"node1": 1, "node2": 1, "node3": 1}, 90, 0.5)
    wait_for(lambda: ready_endpoints(api) == 3, 30, 0.2)
    return port


def status_of(api: str, name: str) -> dict[str, Any]:
    st = get(api + "/api/v1/status")
    found = [r for r in st["resources"] if r["kind"] == "Deployment" and r["name"] == name]
    return found[0] if found else {"message": ""}


def test_spread_node_selector_and_pending_with_the_reason(
    cluster: str, remote: GitRemote, images: Images
) -> None:
    picky = deployment(name="picky", namespace=NS, image=images["v1"], replicas=2,
                       pod={"nodeSelector": {"zone": "a"}})  # fmt: skip
    huge = deployment(name="huge", namespace=NS, image=images["v1"], replicas=1,
                      container={"resources": {"requests": {"memory": "1000Gi"}}})  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    ghost = deployment(name="ghost", namespace=NS, image=images.missing, replicas=1)
    remote.write("apps.yaml", web(images, 6), picky, huge, ghost)
    remote.push("six web, two picky, one huge, one whose image does not exist")
    wait_for(lambda: per_node(cluster) == {"node1": 2, "node2": 2, "node3": 2}, 90, 0.5)
    wait_for(lambda: per_node(cluster, "picky") == {"node1": 2}, 60, 0.5)
    wait_for(lambda: "Pending" in status_of(cluster, "huge")["message"], 30, 0.5)
    message = status_of(cluster, "huge")["message"]
    assert "1 pod(s) Pending: 0/3 nodes are available: 3 Insufficient memory." in message
    [pending] = pods(cluster, "huge")  # shown as Kubernetes shows it, with the reason
    assert pending["status"] == "Pending" and "3 Insufficient memory" in pending["message"]
    wait_for(lambda: len(pods(cluster, "ghost")) == 1, 30, 0.5)
    [ghost_pod] = pods(cluster, "ghost")  # on the node it was placed on, which tried the pull
    assert ghost_pod["status"] in ("ErrImagePull", "ImagePullBackOff") and ghost_pod["node"]
    assert images.missing in ghost_pod["message"]

    nodes = {n["name"]: n for n in get(cluster + "/api/v1/nodes")}
    assert set(nodes) == set(NODES)
    for n in nodes.values():
        assert n["status"] == "Ready" and n["version"]
        assert n["cpu_millis"] > 0 and n["memory"] > 0  # from docker info, less the reserve
    assert nodes["node1"]["pods"] == 4 and nodes["node1"]["labels"] == {"zone": "a"}
    out = gitops("get", "nodes", "-o", "wide", "--server", cluster)
    assert out.returncode == 0, out.stderr
    assert "node1" in out.stdout and "Ready" in out.stdout and "zone=a" in out.stdout


def test_a_stopped_node_is_replaced_within_the_eviction_timeout_and_comes_back_clean(
    cluster: str, remote: GitRemote, images: Images, engines: dict[str, docker.DockerClient],
    instance: str,
) -> None:  # fmt: skip
    port = one_web_pod_per_node(cluster, remote, images)
    # Bounded by time first: the count must outlast the whole test (about 1,000 requests/s).
    with Load(port, limit=150_000, seconds=150, host="127.0.0.11") as load:
        started = time.monotonic()
        nodes_script("stop", "3")  # returns once the engine has stopped its containers
        wait_for(
            lambda: sorted(per_node(cluster).items()) in (
                [("node1", 2), ("node2", 1)], [("node1", 1), ("node2", 2)])
            and all(p["ready"] == "1/1" for p in pods(cluster) if p["node"] != "node3"),
            EVICTION + 60, 0.2,
        )  # fmt: skip
        took = time.monotonic() - started
        node3 = next(n for n in get(cluster + "/api/v1/nodes") if n["name"] == "node3")
        assert node3["status"] == "NotReady"
        nodes_script("start", "3")
        wait_for(lambda: len(pods(cluster)) == 3 and all(
            p["node"] != "node3" for p in pods(cluster)), 60, 0.5)  # fmt: skip
        # Nothing of the test runs on node3 any more: its stale pods were removed.
        wait_for(lambda: not engines["node3"].containers.list(
            filters={"label": f"io.gitops.instance={instance}", "name": "web-"}), 60, 0.5)  # fmt: skip
        done = len(load.seen)
        wait_for(lambda: len(load.seen) >= done + 200, 30)
    print(f"\nnode3 stopped: replaced and ready in {took:.1f}s (eviction {EVICTION}s); "
          f"{len(load.seen)} requests, {len(load.failures)} failed")  # fmt: skip
    assert took < EVICTION + 30
    # At most what was in flight on node3's pod when its engine killed it (one client, one
    # request at a time); every request after that was served.
    assert len(load.failures) <= 1, load.failures[:5]
    assert (
        next(n for n in get(cluster + "/api/v1/nodes") if n["name"] == "node3")["status"] == "Ready"
    )


def test_drain_empties_a_node_without_a_failed_request(
    cluster: str, remote: GitRemote, images: Images
) -> None:
    port = one_web_pod_per_node(cluster, remote, images)
    with Load(port, limit=30000, host="127.0.0.12") as load:
        out = gitops("drain", "node1", "--server", cluster, "--timeout", "90s")
        done = len(load.seen)
        wait_for(lambda: len(load.seen) >= done + 200, 30)
    print(f"\ndrain: {out.stdout.strip()}; {len(load.seen)} requests, {len(load.failures)} failed")
    assert out.returncode == 0, out.stderr
    assert "node1" not in per_node(cluster) and sum(per_node(cluster).values()) == 3
    assert load.failures == [], load.failures[:5]
    node1 = next(n for n in get(cluster + "/api/v1/nodes") if n["name"] == "node1")
    assert node1["status"] == "Ready,SchedulingDisabled"
    assert gitops("uncordon", "node1", "--server", cluster).returncode == 0
    node1 = next(n for n in get(cluster + "/api/v1/nodes") if n["name"] == "node1")
    assert node1["status"] == "Ready"


def test_a_node_with_its_own_proxy_serves_its_node_ports_through_an_update(
    cluster: str, remote: GitRemote, images: Images, engines: dict[str, docker.DockerClient],
    instance: str,
) -> None:  # fmt: skip
    """node3 is configured as if it were on another machine: its NodePorts are served by its
    own HAProxy (a host-network container on node3's engine), not by the reconciler's."""
    port = one_web_pod_per_node(cluster, remote, images)
    [proxy] = engines["node3"].containers.list(
        filters={"label": [f"io.gitops.instance={instance}", "io.gitops.proxy=true"]}
    )
    assert proxy.attrs["HostConfig"]["NetworkMode"] == "host"
    v1, v2 = (images[v].rsplit(":", 1)[1] for v in ("v1", "v2"))
    wait_for(lambda: _fetch_or_none(port, "127.0.0.13") == v1, 30, 0.2)
    with Load(port, limit=30000, host="127.0.0.13") as load:
        updated = web(images, 3)
        updated["spec"]["template"]["spec"]["containers"][0]["image"] = images["v2"]
        remote.write("web.yaml", updated, node_port_service(port))
        remote.push("web v2")
        wait_for(lambda: load.seen[-20:] == [v2] * 20 and len(load.seen) >= 2000, 120, 0.2)
    print(f"\nnode3's own proxy, rolling update: {len(load.seen)} requests, "
          f"{len(load.failures)} failed")  # fmt: skip
    assert load.failures == [], load.failures[:5]
    assert load.seen[0] == v1


def _fetch_or_none(port: int, host: str) -> str | None:
    try:
        return fetch(port, host=host)
    except OSError:
        return None


def test_affinity_anti_affinity_spread_and_taints_place_pods_on_real_engines(
    engines: dict[str, docker.DockerClient],
    remote: GitRemote,
    images: Images,
    instance: str,
    tmp_path: Path,
) -> None:
    """The scheduling fields, over three real engines: node1 (zone a) holds the cache; node3 is
    tainted for batch work. Web replicas must share the cache's zone and avoid each other;
    a batch job tolerates the taint and prefers its node; a spread keeps zones even."""
    from gitops.config.settings import NodeConfig, Settings
    from gitops.model.labels import L_DEPLOYMENT
    from gitops.nodes.docker import DockerNode
    from gitops.runner import compose
    from gitops.source.git import GitSource
    from gitops.state.history import History
    from tests.conftest import converge

    nodes_script("up", "3")
    configs = (
        NodeConfig("node1", "unix:///run/gitops-nodes/node1.sock", (("zone", "a"),)),
        NodeConfig("node2", "unix:///run/gitops-nodes/node2.sock", (("zone", "a"),)),
        NodeConfig(
            "node3", "unix:///run/gitops-nodes/node3.sock", (("zone", "b"),),
            taints=(("dedicated", "batch", "NoSchedule"),),
        ),
    )  # fmt: skip
    settings = Settings(
        repo=str(remote.bare), state_dir=tmp_path / "state", nodes=configs, instance=instance
    )
    nodes = [DockerNode(c.name, c.docker_host, instance) for c in configs]
    app = {"app": "web"}
    cache = deployment("cache", namespace=NS, image=images["v1"], replicas=1,
                       pod={"nodeSelector": {"kubernetes.io/hostname": "node1"}})  # fmt: skip
    web = deployment(
        "web", namespace=NS, image=images["v1"], replicas=2,
        pod={"affinity": {
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}]},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": app}, "topologyKey": "kubernetes.io/hostname"}]},
        }},
    )  # fmt: skip
    batch = deployment(
        "batch", namespace=NS, image=images["v1"], replicas=2,
        pod={
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["b"]}]}}]}},
        },
    )  # fmt: skip
    plain = deployment("plain", namespace=NS, image=images["v1"], replicas=4,
                       pod={"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {"app": "plain"}}}]})  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("cache.yaml", cache)
    remote.push("the cache first")
    source = GitSource(settings.repo, settings.state_dir / "source")
    rec = compose(settings, source, nodes, History(settings.state_dir))
    try:
        converge(rec)
        remote.write("apps.yaml", web, batch, plain)
        remote.push("web next to the cache, batch on its nodes, plain spread")
        status = converge(rec, passes=30).status
        unhealthy = [
            (r.name, r.health, r.message)
            for r in status.resources
            if r.kind == "Deployment" and r.health != "Healthy"
        ]
        assert not unhealthy, (status.result, status.message, unhealthy)
        where: dict[str, list[str]] = {}
        for name, client in engines.items():
            for c in client.containers.list(filters={"label": [f"io.gitops.instance={instance}"]}):
                if c.labels.get("io.gitops.container") == "web":
                    where.setdefault(c.labels[L_DEPLOYMENT], []).append(name)
        assert sorted(where["cache"]) == ["node1"]
        assert sorted(where["web"]) == ["node1", "node2"]  # zone a, one per node
        assert sorted(where["batch"]) == ["node3", "node3"]  # tolerates the taint, prefers zone b
        assert "node3" not in where["plain"] and sorted(where["plain"]) == [
            "node1",
            "node1",
            "node2",
            "node2",
        ]
    finally:
        for n in nodes:
            n.close()
        for client in engines.values():
            remove_instance(client, instance)


def test_drain_honours_a_pod_disruption_budget(
    cluster: str, remote: GitRemote, images: Images
) -> None:
    """A one-replica Recreate deployment under ``minAvailable: 1``: as ``kubectl drain``, the
    drain is held (and says by which budget) until the budget allows a disruption."""
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb", "namespace": NS},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }
    doc = web(images, 1)
    doc["spec"]["strategy"] = {"type": "Recreate"}
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", doc, budget)
    remote.push("one web pod and its budget")
    wait_for(lambda: sum(per_node(cluster).values()) == 1, 90, 0.5)
    [node] = per_node(cluster)
    held = gitops("drain", node, "--server", cluster, "--timeout", "6s")
    assert held.returncode == 1, held.stderr
    assert "would violate the pod's disruption budget" in held.stderr
    assert f"{NS}/web-pdb" in held.stderr
    assert per_node(cluster) == {node: 1}  # still serving where it was
    st = get(cluster + "/api/v1/status")
    [pdb] = [r for r in st["resources"] if r["kind"] == "PodDisruptionBudget"]
    assert pdb["replicas"]["disruptionsAllowed"] == 0 and pdb["health"] == "Healthy"
    assert "holding the drain of 1 pod(s)" in pdb["message"]
    budget["spec"] = {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}
    remote.write("web.yaml", doc, budget)
    remote.push("the budget allows one disruption")
    done = gitops("drain", node, "--server", cluster, "--timeout", "90s")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: sum(per_node(cluster).values()) == 1 and node not in per_node(cluster), 60)
    assert gitops("uncordon", node, "--server", cluster).returncode == 0


def test_a_claims_node_stopped_keeps_its_pod_pending_and_it_returns_with_its_data(
    cluster: str, remote: GitRemote, images: Images, engines: dict[str, docker.DockerClient],
    instance: str,
) -> None:  # fmt: skip
    """No empty copy elsewhere while the node holding the volume is away; back on it, the pod
    finds what it wrote."""
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": NS},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    db = deployment(
        "db", namespace=NS, image=images["v1"], replicas=1,
        container={"command": ["sh", "-c", "date >> /data/starts; exec sleep 3600"],
                   "volumeMounts": [{"name": "d", "mountPath": "/data"}]},
        pod={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]},
    )  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("db.yaml", claim, db)
    remote.push("a database on a claim")
    wait_for(lambda: per_node(cluster, "db"), 90, 0.5)
    [(held, _)] = per_node(cluster, "db").items()
    index = held.removeprefix("node")
    nodes_script("stop", index)
    wait_for(lambda: "has its volume on node " + held in status_of(cluster, "db")["message"],
             EVICTION + 60, 0.5)  # fmt: skip
    # Past the eviction timeout: the pod is not made again on another node.
    time.sleep(2)
    assert all(p["node"] in ("", held) for p in pods(cluster, "db")), pods(cluster, "db")
    for name, engine in engines.items():
        if name != held:
            assert not engine.volumes.list(filters={"label": f"io.gitops.instance={instance}"})
    nodes_script("start", index)
    wait_for(lambda: per_node(cluster, "db") == {held: 1}, 90, 0.5)
    [c] = engines[held].containers.list(
        filters={"label": [f"io.gitops.instance={instance}", "io.gitops.container=web"]}
    )
    out = c.exec_run(["cat", "/data/starts"]).output
    assert isinstance(out, bytes)
    lines = out.decode().splitlines()
    assert len(lines) == 2, lines  # the same volume: the first start's line is still there


def test_drain_says_which_pods_stay_with_their_data(
    cluster: str, remote: GitRemote, images: Images
) -> None:
    """A pod whose claim's volume is on the drained node cannot move without its data: it
    stays, and ``gitops drain`` says so (exit 1 at its timeout), as issue 17 asks."""
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": NS},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    db = deployment(
        "db", namespace=NS, image=images["v1"], replicas=1,
        container={"volumeMounts": [{"name": "d", "mountPath": "/data"}]},
        pod={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]},
    )  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("db.yaml", claim, db)
    remote.push("a database on a claim")
    wait_for(lambda: per_node(cluster, "db"), 90, 0.5)
    [(held, _)] = per_node(cluster, "db").items()
    out = gitops("drain", held, "--server", cluster, "--timeout", "6s")
    assert out.returncode == 1, out.stderr
    assert (
        f"cannot move: PersistentVolumeClaim {NS}/data has its volume on node {held}" in out.stderr
    )
    assert per_node(cluster, "db") == {held: 1}  # still serving, on its data
    assert gitops("uncordon", held, "--server", cluster).returncode == 0


def test_a_read_write_many_claim_is_shared_by_pods_on_every_node_and_moves_with_them(
    cluster: str, remote: GitRemote, images: Images, engines: dict[str, docker.DockerClient],
    instance: str, tmp_path: Path,
) -> None:  # fmt: skip
    """A claim of a shared class: one pod on each node, each seeing what the others write; a
    drain moves its pod (the data is reachable from anywhere); deleting the claim removes the
    volume on every node."""
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "media", "namespace": NS},
             "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "shared-dir",
                      "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    app = deployment(
        "media", namespace=NS, image=images["v1"], replicas=3,
        container={"command": ["sh", "-c", "hostname > /data/$(hostname); exec sleep 3600"],
                   "volumeMounts": [{"name": "m", "mountPath": "/data"}]},
        pod={"volumes": [{"name": "m", "persistentVolumeClaim": {"claimName": "media"}}],
             "terminationGracePeriodSeconds": 1},
    )  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("media.yaml", claim, app)
    remote.push("three pods on one shared claim")
    wait_for(lambda: per_node(cluster, "media") == dict.fromkeys(NODES, 1), 90, 0.5)
    wait_for(lambda: len(list(shared_dir(tmp_path).iterdir())) == 3, 30, 0.5)
    label = [f"io.gitops.instance={instance}", "io.gitops.container=web"]
    for engine in engines.values():
        [c] = engine.containers.list(filters={"label": label})
        listed = c.exec_run(["ls", "/data"]).output
        assert isinstance(listed, bytes)
        seen = listed.decode().split()
        assert sorted(seen) == sorted(p.name for p in shared_dir(tmp_path).iterdir()), seen
    # gitops run serves the cluster DNS on each node's namespace bridge: the pods ask it first.
    for engine in engines.values():
        [c] = engine.containers.list(filters={"label": label})
        gateway = c.attrs["HostConfig"]["Dns"][0]
        net = next(iter(c.attrs["NetworkSettings"]["Networks"].values()))
        assert gateway == net["Gateway"], (gateway, net)
        reply = DNSRecord.parse(DNSRecord.question("example.com").send(gateway, 53, timeout=2))
        assert reply.header.rcode == RCODE.REFUSED  # not the cluster's: for the next server
    [row] = [r for r in get(cluster + f"/api/v1/persistentvolumeclaims?namespace={NS}")]
    assert row["node"] == ",".join(NODES) and row["status"] == "Bound", row
    out = gitops("drain", "node1", "--server", cluster, "--timeout", "60s")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: "node1" not in per_node(cluster, "media")
             and sum(per_node(cluster, "media").values()) == 3, 60, 0.5)  # fmt: skip
    assert gitops("uncordon", "node1", "--server", cluster).returncode == 0
    remote.write("media.yaml")
    remote.push("no media")
    wait_for(lambda: not per_node(cluster, "media"), 60, 0.5)
    out = gitops("delete", "pvc", "media", "-n", NS, "--confirm", "--server", cluster)
    assert out.returncode == 0, out.stderr
    for engine in engines.values():
        assert not engine.volumes.list(filters={"label": f"io.gitops.instance={instance}"})
    assert len(list(shared_dir(tmp_path).iterdir())) >= 3  # the driver's data: not Docker's


def agent(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "agent", "image": image,
                        "readinessProbe": {"httpGet": {"path": "/version", "port": 8080},
                                           "periodSeconds": 1},
                    }],
                },
            },
        },
    }  # fmt: skip


def test_a_daemonset_runs_a_pod_a_node_through_drain_and_restart_and_rolls_node_by_node(
    cluster: str, remote: GitRemote, images: Images, engines: dict[str, docker.DockerClient],
    instance: str,
) -> None:  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("agent.yaml", agent(images["v1"]))
    remote.push("an agent on every node")
    every = dict.fromkeys(NODES, 1)
    wait_for(lambda: per_node(cluster, "agent") == every, 90, 0.5)
    [row] = get(cluster + f"/api/v1/daemonsets?namespace={NS}")
    wait_for(lambda: get(cluster + f"/api/v1/daemonsets?namespace={NS}")[0]["ready"] == "3/3",
             60, 0.5)  # fmt: skip
    assert row["desired"] == 3, row
    # A drain leaves the DaemonSet's pod (kubectl drain --ignore-daemonsets) and completes.
    out = gitops("drain", "node1", "--server", cluster, "--timeout", "30s")
    assert out.returncode == 0, out.stderr
    assert per_node(cluster, "agent") == every
    assert gitops("uncordon", "node1", "--server", cluster).returncode == 0

    def running() -> dict[str, list[str]]:
        label = [f"io.gitops.instance={instance}", "io.gitops.container=agent"]
        return {n: [c.attrs["Config"]["Image"] for c in e.containers.list(
            filters={"label": label})] for n, e in engines.items()}  # fmt: skip

    remote.write("agent.yaml", agent(images["v2"]))
    remote.push("agent v2")
    lacking = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = running()
        lacking = max(lacking, sum(1 for imgs in now.values() if not imgs))
        if all(imgs == [images["v2"]] for imgs in now.values()):
            break
        time.sleep(0.2)
    assert all(imgs == [images["v2"]] for imgs in running().values()), running()
    assert lacking <= 1  # maxUnavailable 1: one node at a time
    # A node stopped and started again gets its pod back.
    nodes_script("stop", "2")
    nodes_script("start", "2")
    try:
        wait_for(lambda: per_node(cluster, "agent") == every, 90, 0.5)
    except AssertionError:
        print(pods(cluster, "agent"), get(cluster + f"/api/v1/daemonsets?namespace={NS}"))
        raise


def test_logs_follow_a_deployment_on_three_nodes_and_a_replaced_pod_joins(
    cluster: str, remote: GitRemote, images: Images, engines: dict[str, docker.DockerClient]
) -> None:
    """``gitops logs -f deployment/web``: lines from a pod on each node, each prefixed with
    its pod, through the API alone; a pod made to replace one that went joins the stream."""
    api = cluster
    ticker = 'while true; do echo "tick $(hostname)"; sleep 0.3; done'
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", deployment(namespace=NS, image=images["v1"], replicas=3,
                                        container={"command": ["/bin/sh", "-c", ticker]}))  # fmt: skip
    remote.push("three tickers")
    wait_for(lambda: per_node(api) == {"node1": 1, "node2": 1, "node3": 1}, 90, 0.5)
    first = {p["name"]: p["node"] for p in pods(api)}
    args = ["logs", "-f", "deployment/web", "-n", NS, "--tail", "1", "--server", api]
    # Ctrl-C as a terminal sends it, whatever the runner's own SIGINT disposition (a CI job
    # started in the background ignores SIGINT, and its children would inherit that).
    ctrl_c = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
        f" sys.argv = ['gitops', *{args!r}]; runpy.run_module('gitops', run_name='__main__')"
    )
    follower = subprocess.Popen([sys.executable, "-c", ctrl_c], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen: list[str] = []
    out = follower.stdout
    assert out is not None
    reader = threading.Thread(target=lambda: seen.extend(iter(out.readline, "")), daemon=True)
    reader.start()
    try:

        def prefixed() -> set[str]:
            return {line.split("/")[1] for line in list(seen) if line.startswith("[pod/")}

        wait_for(lambda: prefixed() >= set(first), 30, 0.2)
        gone = next(name for name, node in first.items() if node == "node2")
        for c in engines["node2"].containers.list(filters={"label": f"io.gitops.pod={gone}"}):
            c.remove(force=True)  # the pod is gone: the reconciler makes another
        wait_for(lambda: len(prefixed() - set(first)) == 1, 60, 0.2)
        [new] = prefixed() - set(first)
        assert any(line.startswith(f"[pod/{new}/web] tick ") for line in list(seen))
    finally:
        follower.send_signal(signal.SIGINT)
        code = follower.wait(timeout=20)
    assert code == 0, follower.stderr.read() if follower.stderr else ""


def test_exec_with_a_terminal_and_port_forward_reach_a_pod_on_another_node(
    cluster: str, remote: GitRemote, images: Images
) -> None:
    """Through the reconciler alone, to the pod node3's engine runs: ``exec -it`` gets a real
    terminal (its size passed on) and its exit status back; ``port-forward`` serves the pod's
    HTTP on 127.0.0.1; neither works without the token."""
    import http.client
    import os
    import pty
    import termios

    api = cluster
    one_web_pod_per_node(api, remote, images)
    [pod] = [p["name"] for p in pods(api) if p["node"] == "node3"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: gitops exec on a terminal, as a user types it
        os.execv(sys.executable, [sys.executable, "-m", "gitops", "exec", "-it", "-n", NS,
                                  "--server", api, pod, "--", "sh", "-c",
                                  "sleep 1; tty; stty size; exit 7"])  # fmt: skip
    termios.tcsetwinsize(fd, (33, 111))  # before the child asks (it starts at once)
    out = b""
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # the terminal closed: the child ended
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7, out
    assert b"/dev/pts/" in out and b"33 111" in out, out

    forward = subprocess.Popen(
        [sys.executable, "-m", "gitops", "port-forward", "-n", NS, "--server", api, pod, "0:8080"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        local = int(line.split()[2].rpartition(":")[2])
        conn = http.client.HTTPConnection("127.0.0.1", local, timeout=15)
        conn.request("GET", "/")
        answer = conn.getresponse()
        assert answer.status == 200 and images["v1"].rsplit(":", 1)[1].encode() in answer.read()
    finally:
        forward.terminate()
        forward.wait(timeout=10)
    # gitops proxy, as kubectl proxy: into the Service, to a ready pod on whichever node.
    proxy = subprocess.Popen([sys.executable, "-m", "gitops", "proxy", "-p", "0", "--server", api],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proxy.stdout is not None
        port = int(proxy.stdout.readline().rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.request("GET", f"/api/v1/namespaces/{NS}/services/web:80/proxy/")
        answer = conn.getresponse()
        assert answer.status == 200 and images["v1"].rsplit(":", 1)[1].encode() in answer.read()
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
    without = subprocess.run(
        [sys.executable, "-m", "gitops", "exec", "-n", NS, "--server", api, pod, "--", "true"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "GITOPS_API_TOKEN": "x"},
    )  # fmt: skip
    assert without.returncode == 2 and "need the token" in without.stderr
