"""A pod's hostname, subdomain and dnsConfig on a real engine: its hostname and domain are what
it says, another pod reaches it as ``hostname.subdomain``, and its resolv.conf carries the
searches and options given (Docker's embedded DNS stays the resolver, forwarding to the
nameservers)."""

from __future__ import annotations

from typing import Any

import docker

from gitops.model.labels import L_CONTAINER, L_DEPLOYMENT, L_POD, L_SERVICE
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, converge, reconciling, wait_until
from tests.helpers import deployment, namespace

NS = "dns"


def run(container: Any, *command: str) -> str:
    return str(container.exec_run(list(command)).output.decode().strip())


def test_hostname_subdomain_and_dns_config(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    db = deployment(
        "db", namespace=NS, image=images["v1"], replicas=1,
        pod={
            "hostname": "primary",
            "subdomain": "backend",
            "dnsConfig": {
                "nameservers": ["192.0.2.53"],
                "searches": ["corp.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            },
        },
    )  # fmt: skip
    client = deployment("client", namespace=NS, image=images["v1"], replicas=1)
    remote.write("ns.yaml", namespace(NS))
    remote.write("apps.yaml", db, client)
    remote.push("a named pod and a client")
    status = converge(make_reconciler()).status
    assert all(r.health == Health.HEALTHY for r in status.resources if r.kind == "Deployment")
    by = {
        c.labels[L_DEPLOYMENT]: c
        for c in containers_of(engine, instance, infra=False)
        if c.labels[L_CONTAINER] == "web"
    }
    assert run(by["db"], "hostname") == "primary"
    assert run(by["db"], "hostname", "-d") == f"backend.{NS}.svc.cluster.local"
    resolv = run(by["db"], "cat", "/etc/resolv.conf")
    assert "search corp.example" in resolv and "ndots:2" in resolv and "edns0" in resolv
    # The embedded DNS's upstream (no query is sent: nothing here resolves an outside name).
    assert by["db"].attrs["HostConfig"]["Dns"] == ["192.0.2.53"]
    reply = by["client"].exec_run(["wget", "-qO-", "http://primary.backend:8080/version"])
    assert reply.exit_code == 0 and reply.output.decode().strip() == images["v1"].rsplit(":", 1)[1]


def test_a_headless_service_name_resolves_to_each_pod_it_selects(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    db = deployment("db", namespace=NS, image=images["v1"], replicas=2)
    client = deployment("client", namespace=NS, image=images["v1"], replicas=1)
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db-peers", "namespace": NS},
        "spec": {
            "clusterIP": "None",
            "selector": {"app": "db"},
            "ports": [{"name": "gossip", "port": 7946, "protocol": "UDP"}],  # no proxy: any
        },
    }
    remote.write("ns.yaml", namespace(NS))
    remote.write("apps.yaml", db, client, headless)
    remote.push("two db pods behind a headless Service")
    status = converge(make_reconciler()).status
    assert all(r.health == Health.HEALTHY for r in status.resources if r.kind == "Deployment")
    holders = containers_of(engine, instance)  # the pause containers hold the pods' addresses
    db_ips = {
        next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        for c in holders
        if c.labels.get(L_DEPLOYMENT) == "db" and c.labels[L_CONTAINER] in ("POD", "web")
        and next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    }  # fmt: skip
    assert len(db_ips) == 2
    [asker] = [c for c in holders if c.labels.get(L_DEPLOYMENT) == "client"
               and c.labels[L_CONTAINER] == "web"]  # fmt: skip
    for name in ("db-peers", f"db-peers.{NS}.svc.cluster.local"):
        answer = run(asker, "nslookup", name, "127.0.0.11")
        found = {line.split()[-1] for line in answer.splitlines() if line.startswith("Address")}
        assert db_ips <= found, answer  # every pod's own address, no proxy's
    assert not [c for c in holders if c.labels.get(L_SERVICE) == "db-peers"]  # no name proxy


def addresses(answer: str) -> set[str]:
    """The addresses busybox's nslookup lists for the name (not the server's own line)."""
    lines = answer.split("Name:", 1)[-1].splitlines() if "Name:" in answer else []
    return {line.split()[-1] for line in lines if line.startswith("Address")}


def test_a_headless_service_resolves_to_its_ready_pods_only_through_the_cluster_dns(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    ready_file = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1,
                  "failureThreshold": 1}  # fmt: skip
    db = deployment(
        "db", namespace=NS, image=images["v1"], replicas=2,
        container={"command": ["sh", "-c", "mkdir -p /tmp; touch /tmp/ready; exec httpd -f -p 8080 -h /www"],
                   "readinessProbe": ready_file},
    )  # fmt: skip
    client = deployment("client", namespace=NS, image=images["v1"], replicas=1)
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db-peers", "namespace": NS},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 8080}]},
    }
    remote.write("ns.yaml", namespace(NS))
    remote.write("apps.yaml", db, client, headless)
    remote.push("two db pods behind a headless Service")
    rec = make_reconciler(probes=True, dns=True)
    with reconciling(rec, limit=120):
        wait_until(lambda: _healthy(rec), 60)
        apps = {c.labels[L_POD]: c for c in containers_of(engine, instance, infra=False)
                if c.labels[L_CONTAINER] == "web"}  # fmt: skip
        [asker] = [c for c in apps.values() if c.labels[L_DEPLOYMENT] == "client"]
        dbs = sorted(p for p, c in apps.items() if c.labels[L_DEPLOYMENT] == "db")
        ip = {p: _ip(engine, instance, p) for p in dbs}
        # The pods ask gitops first, then the node's servers; the name is no alias of theirs.
        gateway = rec.nodes["local"].dns_address(NS)
        assert asker.attrs["HostConfig"]["Dns"][0] == gateway
        names = ("db-peers", f"db-peers.{NS}", f"db-peers.{NS}.svc.cluster.local")

        def resolves() -> set[str]:
            found = [addresses(run(asker, "nslookup", n, "127.0.0.11")) for n in names]
            return found[0] if all(f == found[0] for f in found) else set()

        wait_until(lambda: resolves() == set(ip.values()), 20)
        apps[dbs[0]].exec_run(["rm", "/tmp/ready"])  # one db pod stops being ready
        wait_until(lambda: resolves() == {ip[dbs[1]]}, 20)
        apps[dbs[0]].exec_run(["touch", "/tmp/ready"])
        wait_until(lambda: resolves() == set(ip.values()), 20)
        # Per-pod names stay the engine's: a pod's own name resolves, ready or not.
        assert addresses(run(asker, "nslookup", dbs[0], "127.0.0.11")) == {ip[dbs[0]]}
        nothing = run(asker, "nslookup", f"nope.{NS}.svc.cluster.local", "127.0.0.11")
        assert "NXDOMAIN" in nothing or "can't find" in nothing, nothing


def _healthy(rec: Any) -> bool:
    deps = [r for r in rec.status.resources if r.kind == "Deployment"]
    return len(deps) == 2 and all(r.health == Health.HEALTHY for r in deps)


def _ip(engine: docker.DockerClient, instance: str, pod: str) -> str:
    for c in containers_of(engine, instance):
        if c.labels.get(L_POD) == pod:
            found = next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
            if found:
                return str(found)
    raise AssertionError(f"{pod} has no address")
