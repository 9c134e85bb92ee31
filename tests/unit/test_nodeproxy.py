"""Node proxies on in-memory nodes: configuration rendered per node address, pushed only when it
changes, a dropped pod out before it stops, a silent node left alone until it answers."""

from __future__ import annotations

from gitops.decide.endpoints import Endpoint, PortEndpoints
from gitops.nodes.memory import MemoryNode
from gitops.traffic.nodeproxy import NodeProxies


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
