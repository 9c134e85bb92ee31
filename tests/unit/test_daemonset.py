"""DaemonSets on in-memory nodes, through the real scheduler and planner: one pod a node that
should run it (nodeSelector, taints), kept through a cordon and a drain, made on a node that
joins, removed from one that stops matching; rolling updates node by node, gated on
readiness, with maxSurge beside the old pod; OnDelete leaves old pods."""

from __future__ import annotations

from typing import Any

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import Why, counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.health import PodReadiness
from gitops.decide.plan import Plan, make_plan
from gitops.decide.schedule import NodeView
from gitops.decide.status import resource_statuses
from gitops.manifests import parse_manifests
from gitops.nodes.memory import MemoryNode
from tests.helpers import dump

IMAGES = {"reg/agent:v1", "reg/agent:v2"}


def daemon(image: str = "reg/agent:v1", **spec: Any) -> dict[str, Any]:
    pod = spec.pop("pod", {})
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "demo"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": image}], **pod},
            },
            **spec,
        },
    }


def desired(*docs: dict[str, Any]) -> DesiredState:
    return build_desired(parse_manifests({"a.yaml": dump(*docs)}), "c1")


class Nodes:
    def __init__(self, *views: NodeView) -> None:
        self.views = list(views)
        self.engines = {v.name: MemoryNode(v.name, registry=IMAGES) for v in views}

    def run(self, state: DesiredState, unready: tuple[str, ...] = ()) -> Plan:
        live = observe(list(self.engines.values()))
        ready = {p.name: PodReadiness(p.name not in unready) for p in live.pods}
        plan = make_plan(state, live, self.views, counter_suffix(), readiness=ready)
        apply_plan(plan, {v.name: self.engines[v.name] for v in self.views}, state)
        return plan

    def pods(self) -> dict[str, list[str]]:
        """node -> the images of the DaemonSet's pods there."""
        out: dict[str, list[str]] = {}
        for p in observe(list(self.engines.values())).pods:
            out.setdefault(p.node, []).extend(c.image for c in p.app_containers())
        return {k: sorted(v) for k, v in sorted(out.items())}


def test_one_pod_a_node_that_should_run_it_through_cordon_drain_and_joins() -> None:
    nodes = Nodes(NodeView("n1", labels={"disk": "ssd"}), NodeView("n2", labels={"disk": "ssd"}),
                  NodeView("n3"), NodeView("n4", labels={"disk": "ssd"},
                  taints=(("dedicated", "db", "NoSchedule"),)))  # fmt: skip
    state = desired(daemon(pod={"nodeSelector": {"disk": "ssd"}}))
    plan = nodes.run(state)
    assert nodes.pods() == {"n1": ["reg/agent:v1"], "n2": ["reg/agent:v1"]}
    assert plan.replicas_of(state.deployments[0]) == 2
    [status] = [r for r in resource_statuses(state, observe(list(nodes.engines.values())),
                                              plan, None) if r.kind == "DaemonSet"]  # fmt: skip
    assert status.replicas is not None and status.replicas["desired"] == 2
    # A cordon and a drain leave the pods; nothing else happens.
    nodes.views[0] = NodeView("n1", labels={"disk": "ssd"}, cordoned=True, draining=True)
    again = nodes.run(state)
    assert not again.create and not again.remove and not again.blocked
    # A node that joins gets one; a node that no longer matches loses its pod.
    nodes.views.append(NodeView("n5", labels={"disk": "ssd"}))
    nodes.engines["n5"] = MemoryNode("n5", registry=IMAGES)
    nodes.views[1] = NodeView("n2", labels={"disk": "hdd"})
    nodes.run(state)
    assert nodes.pods() == {"n1": ["reg/agent:v1"], "n5": ["reg/agent:v1"]}


def test_tolerations_admit_a_tainted_node_and_a_silent_nodes_pod_is_left_alone() -> None:
    taint = (("dedicated", "db", "NoSchedule"),)
    nodes = Nodes(NodeView("n1", taints=taint), NodeView("n2"))
    toleration = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    state = desired(daemon(pod={"tolerations": toleration}))
    nodes.run(state)
    assert sorted(nodes.pods()) == ["n1", "n2"]
    nodes.views[1] = NodeView("n2", ready=False)
    plan = nodes.run(state)
    assert not plan.create and not plan.remove and plan.replicas_of(state.deployments[0]) == 2


def test_a_rolling_update_goes_node_by_node_and_waits_for_readiness() -> None:
    nodes = Nodes(NodeView("n1"), NodeView("n2"), NodeView("n3"))
    nodes.run(desired(daemon()))
    v2 = desired(daemon("reg/agent:v2"))
    first = nodes.run(v2)  # maxUnavailable 1: one old pod goes
    assert [r.why for r in first.remove] == [Why.OUTDATED] and not first.create
    assert first.waiting
    nodes.run(v2)  # its node gets the new pod
    new = [p.name for p in observe(list(nodes.engines.values())).pods
           if p.app_containers()[0].image == "reg/agent:v2"]  # fmt: skip
    assert len(new) == 1
    held = nodes.run(v2, unready=tuple(new))  # the new pod is not ready: nothing more goes
    assert not held.remove and not held.create
    for _ in range(6):
        nodes.run(v2)
    assert nodes.pods() == {n: ["reg/agent:v2"] for n in ("n1", "n2", "n3")}


def test_max_surge_makes_the_new_pod_beside_the_old_and_on_delete_leaves_them() -> None:
    nodes = Nodes(NodeView("n1"), NodeView("n2"))
    surge = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    nodes.run(desired(daemon(updateStrategy=surge)))
    v2 = desired(daemon("reg/agent:v2", updateStrategy=surge))
    first = nodes.run(v2)
    assert len(first.create) == 1 and not first.remove
    [node] = [c.node for c in first.create]
    assert nodes.pods()[node] == ["reg/agent:v1", "reg/agent:v2"]  # both serve a moment
    new = [p.name for p in observe(list(nodes.engines.values())).pods
           if p.app_containers()[0].image == "reg/agent:v2"]  # fmt: skip
    waiting = nodes.run(v2, unready=tuple(new))
    assert not waiting.remove and not waiting.create
    for _ in range(6):
        nodes.run(v2)
    assert nodes.pods() == {"n1": ["reg/agent:v2"], "n2": ["reg/agent:v2"]}
    on_delete = desired(daemon("reg/agent:v1", updateStrategy={"type": "OnDelete"}))
    plan = nodes.run(on_delete)
    assert not plan.create and not plan.remove and not plan.waiting
