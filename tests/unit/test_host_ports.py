"""hostPort on plain data: validation names the field, the labels carry a pod's published
ports back, and the scheduler puts two pods publishing one port on different nodes (or leaves
the one no node can take Pending with Kubernetes' reason)."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import counter_suffix
from gitops.decide.desired import build_desired
from gitops.decide.plan import make_plan
from gitops.decide.schedule import NO_FREE_PORTS, NodeView
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.model.templates import ports_clash
from gitops.nodes.memory import MemoryNode
from tests.helpers import deployment, dump


def agent(name: str = "agent", replicas: int = 1, **port: Any) -> dict[str, Any]:
    return deployment(
        name, replicas=replicas,
        container={"ports": [{"containerPort": 9100, **port}]},
    )  # fmt: skip


def test_the_ports_a_pod_publishes_clash_on_one_protocol_port_and_address() -> None:
    assert ports_clash(("TCP", "", 80), ("TCP", "127.0.0.1", 80))  # every address holds it
    assert ports_clash(("TCP", "127.0.0.1", 80), ("TCP", "127.0.0.1", 80))
    assert not ports_clash(("TCP", "127.0.0.1", 80), ("TCP", "127.0.0.2", 80))
    assert not ports_clash(("TCP", "", 80), ("UDP", "", 80))
    assert not ports_clash(("TCP", "", 80), ("TCP", "", 81))


@pytest.mark.parametrize(
    ("doc", "field", "text"),
    [
        (agent(hostIP="127.0.0.1"), "ports[0].hostIP", "needs hostPort"),
        (agent(hostPort=70000), "ports[0].hostPort", "65535"),
        (agent(hostPort=9100, hostIP="localhost"), "ports[0].hostIP", "IPv4"),
    ],
)
def test_what_a_host_port_cannot_be_is_refused_naming_the_field(
    doc: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifests({"a.yaml": dump(doc)})
    assert field in str(err.value) and text in str(err.value), str(err.value)


def test_one_port_published_twice_in_a_pod_is_refused() -> None:
    doc = agent(hostPort=9100)
    doc["spec"]["template"]["spec"]["containers"].append(
        {"name": "side", "image": "reg/web:v1", "ports": [{"containerPort": 80, "hostPort": 9100}]}
    )
    with pytest.raises(ManifestError) as err:
        parse_manifests({"a.yaml": dump(doc)})
    said = str(err.value)
    assert "containers[1].ports[0].hostPort: 9100/TCP is published twice" in said, said


def test_pods_publishing_one_port_go_to_different_nodes_and_the_third_waits() -> None:
    nodes = [MemoryNode(f"n{i}", registry={"reg/web:v1"}) for i in (1, 2)]
    views = [NodeView(n.name) for n in nodes]
    state = build_desired(parse_manifests({"a.yaml": dump(agent(replicas=3, hostPort=9100))}), "c")
    [dep] = state.deployments
    assert dep.template.host_ports == (("TCP", "", 9100),)
    for _ in range(2):
        plan = make_plan(state, observe(nodes), views, counter_suffix())
        apply_plan(plan, {n.name: n for n in nodes}, state)
    live = observe(nodes)
    assert sorted(p.node for p in live.pods) == ["n1", "n2"]
    assert all(p.host_ports == (("TCP", "", 9100),) for p in live.pods)  # read back from labels
    assert plan.pending and NO_FREE_PORTS in plan.pending[0].reason, plan.pending


def test_one_port_on_two_addresses_of_a_node_is_two_ports() -> None:
    docs = [agent("a", hostPort=9100, hostIP="127.0.0.1"), agent("b", hostPort=9100,
            hostIP="127.0.0.2"), agent("c", hostPort=9100)]  # fmt: skip
    state = build_desired(parse_manifests({"a.yaml": dump(*docs)}), "c")
    nodes = [MemoryNode("n1", registry={"reg/web:v1"})]
    for _ in range(2):
        plan = make_plan(state, observe(nodes), [NodeView("n1")], counter_suffix())
        apply_plan(plan, {"n1": nodes[0]}, state)
    assert sorted(p.deployment for p in observe(nodes).pods) == ["a", "b"]
    [waiting] = plan.pending  # every address of the node: taken at two of them already
    assert waiting.deployment == "c" and NO_FREE_PORTS in waiting.reason


def test_a_template_without_host_ports_keeps_its_hash() -> None:
    """The hash gitops gave this template before it knew hostPort: an upgrade replaces no pod."""
    doc = deployment("agent", replicas=1,
                     container={"ports": [{"containerPort": 9100, "name": "metrics"}]})  # fmt: skip
    plain = build_desired(parse_manifests({"a.yaml": dump(doc)}), "c").deployments[0]
    assert plain.template.template_hash == "0c5b30ec50"
    published = build_desired(parse_manifests({"a.yaml": dump(agent(hostPort=9100))}), "c")
    assert published.deployments[0].template.template_hash != plain.template.template_hash
