"""Node proxies on in-memory nodes: configuration rendered per node address, pushed only when it
changes, a dropped pod out before it stops, a silent node left alone until it answers."""

from __future__ import annotations

from pathlib import Path

from gitops.decide import ingress as di
from gitops.decide.desired import DesiredState
from gitops.decide.endpoints import Endpoint, PortEndpoints
from gitops.manifests import parse_manifests
from gitops.nodes.memory import MemoryNode
from gitops.traffic.nodeproxy import NodeProxies
from tests.helpers import dump
from tests.tlscerts import make_cert, tls_secret
from tests.unit.test_ingress_manifests import NS, WEB, ingress, rule, svc


def table(*pods: str) -> list[PortEndpoints]:
    eps = tuple(Endpoint(p, "n1", f"10.0.0.{i + 1}", 8080) for i, p in enumerate(pods))
    return [PortEndpoints("ns", "web", "http", 80, 30080, "None", eps)]


def test_each_node_gets_its_address_only_changes_are_pushed_and_drops_come_first() -> None:
    a, b = MemoryNode("a"), MemoryNode("b")
    proxies = NodeProxies({"a": a, "b": b}, {"a": "10.1.0.1", "b": "10.1.0.2"})
    proxies.update(table("p1", "p2"))
    assert a.proxy_config is not None and b"bind 10.1.0.1:30080" in a.proxy_config
    assert b.proxy_config is not None and b"bind 10.1.0.2:30080" in b.proxy_config
    calls = a.calls
    proxies.update(table("p1", "p2"))
    assert a.calls == calls  # nothing changed: nothing pushed, no reload
    proxies.drop({"p1"})
    assert b"10.0.0.1:8080" not in a.proxy_config and b"10.0.0.2:8080" in a.proxy_config
    proxies.update(table())  # no endpoint: no frontend, the port refuses
    assert b"bind" not in a.proxy_config


def test_a_silent_node_is_skipped_and_caught_up_when_it_answers() -> None:
    a = MemoryNode("a")
    proxies = NodeProxies({"a": a}, {"a": "10.1.0.1"})
    silent = {"a"}
    proxies.usable = lambda n: n not in silent
    proxies.update(table("p1"))
    assert a.proxy_config is None and a.calls == 0
    silent.clear()
    proxies.update(table("p1"))
    assert a.proxy_config is not None and b"10.0.0.1:8080" in a.proxy_config


def test_a_node_elsewhere_serves_the_ingress_routes_on_its_address_with_its_certificates(
    tmp_path: Path,
) -> None:
    crt, key = make_cert(tmp_path, "a", ["a.example.com"])
    doc = ingress("site", [rule("a.example.com", ("/", "Prefix", WEB))],
                  tls=[{"hosts": ["a.example.com"], "secretName": "a"}])  # fmt: skip
    desired = DesiredState("c1", parse_manifests({"i.yaml": dump(svc(), tls_secret("a", NS, crt, key), doc)}), (NS,), ())  # fmt: skip
    eps = (Endpoint("web-1", "n1", "10.0.0.1", 8080),)
    ports = [PortEndpoints(NS, "web", "http", 80, None, "None", eps)]
    a = MemoryNode("a")
    proxies = NodeProxies({"a": a}, {"a": "10.1.0.1"}, ingress_ports=(8000, 8443))
    proxies.update(ports, di.compute(desired, ports))
    assert a.proxy_config is not None
    assert b"bind 10.1.0.1:8000" in a.proxy_config
    assert b"bind 10.1.0.1:8443 ssl crt-list /etc/haproxy/certs/certs.list" in a.proxy_config
    assert a.proxy_files["web_a.pem"].startswith(crt)
    assert a.proxy_files["certs.list"] == b"/etc/haproxy/certs/web_a.pem a.example.com\n"
    proxies.drop({"web-1"})  # out of the Ingress pool too, before the pod stops
    assert b"10.0.0.1:8080" not in a.proxy_config
