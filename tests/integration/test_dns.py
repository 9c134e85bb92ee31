"""A pod's hostname, subdomain and dnsConfig on a real engine: its hostname and domain are what
it says, another pod reaches it as ``hostname.subdomain``, and its resolv.conf carries the
searches and options given (Docker's embedded DNS stays the resolver, forwarding to the
nameservers)."""

from __future__ import annotations

from typing import Any

import docker

from gitops.model.labels import L_CONTAINER, L_DEPLOYMENT, L_SERVICE
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, converge
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
