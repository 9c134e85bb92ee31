"""The cluster DNS's answers on plain data (a headless Service resolves to its ready pods on the
asking node; other names go to the next server), and its listeners over real UDP and TCP on
this machine's loopback, hostile packets included."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from dnslib import RCODE, DNSRecord

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import counter_suffix
from gitops.decide.clusterdns import Rcode, Records, lookup, records, service_of
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.plan import make_plan
from gitops.decide.schedule import NodeView
from gitops.manifests import parse_manifests
from gitops.model.live import LiveState
from gitops.nodes.base import nameservers
from gitops.nodes.memory import MemoryNode
from gitops.traffic.clusterdns import ClusterDns
from tests.helpers import deployment, dump


def service(name: str, headless: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"port": 80}],
            **({"clusterIP": "None"} if headless else {}),
            **spec,
        },
    }


def running(*docs: dict[str, Any]) -> tuple[DesiredState, LiveState]:
    """Three replicas of web over two in-memory nodes, as the real scheduler placed them."""
    state = build_desired(parse_manifests({"a.yaml": dump(deployment(), *docs)}), "c1")
    nodes = [MemoryNode(f"n{i}", registry={"reg/web:v1"}) for i in (1, 2)]
    by_name = {n.name: n for n in nodes}
    for _ in range(2):  # networks, then pods
        plan = make_plan(state, observe(nodes), [NodeView(n.name) for n in nodes], counter_suffix())
        apply_plan(plan, by_name, state)
    return state, observe(nodes)


@pytest.mark.parametrize(
    ("qname", "service"),
    [
        ("web.", "web"),
        ("web.demo", "web"),
        ("WEB.Demo.svc.", "web"),
        ("web.demo.svc.cluster.local.", "web"),
        ("web.other", ""),  # another namespace's: its pods share no network with the asker
        ("web-0.web.demo.svc.cluster.local", ""),  # a pod's own name is the engine's alias
        ("example.com", ""),
        ("", ""),
    ],
)
def test_a_question_names_a_service_of_the_askers_namespace(qname: str, service: str) -> None:
    assert service_of(qname, "demo")[0] == service


def test_a_headless_service_resolves_to_the_ready_pods_on_the_asking_node() -> None:
    state, live = running(service("web"), service("plain", headless=False))
    pods = sorted(live.pods, key=lambda p: p.name)
    assert len({p.node for p in pods}) == 2 and all(p.ip for p in pods)
    unready = pods[0].name
    table = records(state, live, lambda p: p.name != unready)
    assert table.services == frozenset({("demo", "web")})  # a ClusterIP Service is its proxy
    for node in ("n1", "n2"):
        want = tuple(sorted(p.ip for p in pods if p.node == node and p.name != unready))
        got = lookup(table, node, "demo", "web.demo.svc.cluster.local.", "A")
        assert got.addresses == want
        assert got.rcode == (Rcode.NOERROR if want else Rcode.NXDOMAIN)
    # publishNotReadyAddresses: every running pod it selects, as its endpoints
    every = records(*running(service("web", publishNotReadyAddresses=True)), lambda p: False)
    assert sum(len(v) for v in every.addresses.values()) == 3


def test_names_that_are_not_the_clusters_go_to_the_next_server() -> None:
    table = records(*running(service("web")), lambda p: True)
    node = next(iter(table.addresses))[0]
    assert lookup(table, node, "demo", "web", "AAAA") == lookup(table, node, "demo", "web", "MX")
    assert lookup(table, node, "demo", "web", "AAAA").rcode == Rcode.NOERROR  # no IPv6: no data
    assert lookup(table, node, "demo", "example.com.", "A").rcode == Rcode.REFUSED
    assert lookup(table, node, "demo", "plain", "A").rcode == Rcode.REFUSED
    # Under the cluster's domain, nobody else may answer: an unknown name does not exist.
    assert lookup(table, node, "demo", "nope.demo.svc.cluster.local", "A").rcode == Rcode.NXDOMAIN
    assert lookup(table, node, "other", "web", "A").rcode == Rcode.REFUSED
    assert lookup(Records(), node, "demo", "web", "A").rcode == Rcode.REFUSED


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_listeners_answer_over_udp_and_tcp_and_survive_hostile_packets() -> None:
    port = free_port()
    dns = ClusterDns(port=port)
    table = Records(frozenset({("demo", "db")}), {("n1", "demo", "db"): ("10.1.0.5", "10.1.0.6")})
    dns.publish(table, {("n1", "demo"): "127.0.0.1"})
    try:
        assert dns.listening() == {("n1", "demo"): "127.0.0.1"}
        for junk in (b"", b"\x00", b"\xff" * 700, b"\x12\x34\x01\x00\x00\x01" + b"\x3f" * 64):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(junk, ("127.0.0.1", port))
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(struct.pack("!H", 400) + b"\x01\x02")  # a length it never sends in full
        for tcp in (False, True):
            reply = DNSRecord.parse(
                DNSRecord.question("db.demo.svc.cluster.local").send(
                    "127.0.0.1", port, tcp=tcp, timeout=2
                )
            )
            assert sorted(str(rr.rdata) for rr in reply.rr) == ["10.1.0.5", "10.1.0.6"]
            assert reply.header.aa == 1 and all(rr.ttl == 5 for rr in reply.rr)
        refused = DNSRecord.parse(
            DNSRecord.question("example.com").send("127.0.0.1", port, timeout=2)
        )
        assert refused.header.rcode == RCODE.REFUSED and not refused.rr
        # New records are answered at once; a namespace gone closes its listener.
        dns.publish(Records(table.services, {}), {("n1", "demo"): "127.0.0.1"})
        gone = DNSRecord.question("db", "A").send("127.0.0.1", port, timeout=2)
        assert DNSRecord.parse(gone).header.rcode == RCODE.NXDOMAIN
        dns.publish(table, {})
        assert dns.listening() == {}
    finally:
        dns.stop()


def test_an_address_that_cannot_be_bound_is_reported_and_the_rest_still_serve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    dns = ClusterDns(port=port)
    try:
        with caplog.at_level("WARNING"):
            dns.publish(Records(), {("n1", "demo"): "192.0.2.1", ("n1", "web"): "127.0.0.1"})
        assert dns.listening() == {("n1", "web"): "127.0.0.1"}
        assert (
            "cluster DNS for namespace demo on node n1: cannot listen on 192.0.2.1" in caplog.text
        )
    finally:
        dns.stop()


def test_an_answer_too_long_for_udp_is_truncated_and_given_whole_over_tcp() -> None:
    port = free_port()
    dns = ClusterDns(port=port)
    many = tuple(f"10.2.0.{i}" for i in range(1, 61))
    dns.publish(Records(frozenset({("demo", "db")}), {("n1", "demo", "db"): many}),
                {("n1", "demo"): "127.0.0.1"})  # fmt: skip
    try:
        q = DNSRecord.question("db.demo.svc.cluster.local")
        udp = DNSRecord.parse(q.send("127.0.0.1", port, timeout=2))
        assert udp.header.tc == 1 and len(udp.pack()) <= 512
        tcp = DNSRecord.parse(q.send("127.0.0.1", port, tcp=True, timeout=2))
        assert tcp.header.tc == 0 and sorted(str(rr.rdata) for rr in tcp.rr) == sorted(many)
    finally:
        dns.stop()


def test_the_nodes_nameservers_a_container_can_reach() -> None:
    text = ("# a comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\n"
            "nameserver 1.2.3.999\nnameserver\nsearch corp.example\nnameserver 192.0.2.1\n")  # fmt: skip
    assert nameservers(text) == ["10.0.0.2", "192.0.2.1"]
