"""ReplicaSet and ReplicationController: a fixed set of replicas, healed and scaled, never
rolled. The planner on plain data, against in-memory nodes."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import Why, counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.health import count_replicas, deployment_health
from gitops.decide.plan import Plan, make_plan
from gitops.decide.schedule import NodeView
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.model.verdicts import Health
from gitops.nodes.memory import MemoryNode
from tests.helpers import deployment, dump

IMAGES = {"reg/web:v1", "reg/web:v2"}


def replica_set(replicas: int = 3, image: str = "reg/web:v1", name: str = "web") -> dict[str, Any]:
    doc = deployment(name=name, replicas=replicas, image=image)
    return doc | {"kind": "ReplicaSet"}


def controller(replicas: int = 3, image: str = "reg/web:v1", **spec: Any) -> dict[str, Any]:
    """A ReplicationController as guestbook-go writes one: its selector a plain label map."""
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "redis-master", "namespace": "demo"},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": "redis", "role": "master"}},
                "spec": {"containers": [{"name": "redis-master", "image": image}]},
            },
            **spec,
        },
    }


def desired(*docs: dict[str, Any], commit: str = "c1") -> DesiredState:
    return build_desired(parse_manifests({"rs.yaml": dump(*docs)}), commit)


def step(state: DesiredState, nodes: list[MemoryNode], views: list[NodeView] | None = None) -> Plan:
    plan = make_plan(
        state, observe(nodes), views or [n.name for n in nodes], counter_suffix()
    )  # fmt: skip
    apply_plan(plan, {n.name: n for n in nodes}, state)
    return plan


def converge(
    state: DesiredState, nodes: list[MemoryNode], views: list[NodeView] | None = None
) -> None:
    for _ in range(10):
        if step(state, nodes, views).empty:
            return
    raise AssertionError("did not converge")


def test_a_replica_set_makes_its_replicas_named_as_kubernetes_names_them() -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(replica_set(3))
    assert state.deployments[0].kind == "ReplicaSet" and not state.deployments[0].rolls
    plan = step(state, [node])
    assert [c.pod for c in plan.create] == ["web-aaaaa", "web-aaaab", "web-aaaac"]
    assert [c.why for c in plan.create] == [Why.MISSING] * 3
    converge(state, [node])
    assert len(observe([node]).pods) == 3


def test_a_changed_template_is_not_rolled_out_but_new_replicas_use_it() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(replica_set(2)), [node])
    before = {p.name for p in observe([node]).pods}
    v2 = desired(replica_set(3, image="reg/web:v2"), commit="c2")
    plan = step(v2, [node])
    assert not plan.remove and len(plan.create) == 1  # only the third replica is new
    assert plan.create[0].template.containers[0].image == "reg/web:v2"
    converge(v2, [node])
    pods = list(observe([node]).pods)
    assert before < {p.name for p in pods} and len(pods) == 3
    dep = v2.deployments[0]
    reps = count_replicas(dep, pods)
    assert (reps.current, reps.updated, reps.ready) == (3, 3, 3)  # every pod is a replica
    assert deployment_health(dep, pods, None)[0] == Health.HEALTHY


def test_scaled_down_it_keeps_the_oldest_replicas() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(replica_set(4)), [node])
    oldest = observe([node]).pods[0].name
    plan = step(desired(replica_set(1)), [node])
    assert [r.why for r in plan.remove] == [Why.SURPLUS] * 3
    assert [p.name for p in observe([node]).pods] == [oldest]


def test_a_lost_replica_is_made_again() -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(controller(2))
    converge(state, [node])
    victim = observe([node]).pods[0]
    for c in victim.containers:
        node.remove(c.id)
    plan = step(state, [node])
    assert [c.why for c in plan.create] == [Why.MISSING]
    assert len(observe([node]).pods) == 2


def test_a_drained_node_s_replicas_move_before_they_go() -> None:
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2)]
    state = desired(replica_set(2))
    converge(state, nodes)
    on_n1 = [p.name for p in observe(nodes).pods if p.node == "n1"]
    assert on_n1
    views = [NodeView(n.name, cordoned=n.name == "n1", draining=n.name == "n1") for n in nodes]
    first = step(state, nodes, views)
    assert first.create and all(c.node == "n2" for c in first.create)
    assert not first.remove and ("demo", "web") in first.waiting  # replacements first
    converge(state, nodes, views)
    pods = observe(nodes).pods
    assert len(pods) == 2 and {p.node for p in pods} == {"n2"}
    assert not {p.name for p in pods} & set(on_n1)


def test_a_replication_controller_selector_defaults_to_its_template_labels() -> None:
    state = desired(controller(1))
    assert state.deployments[0].kind == "ReplicationController"
    with pytest.raises(ManifestError) as err:
        desired(controller(1, selector={"app": "other"}))
    assert "rs.yaml:0: ReplicationController/redis-master: spec.selector" in str(err.value)
    assert "does not match template labels" in str(err.value)


def test_two_workloads_of_one_name_in_one_namespace_are_an_error_naming_both() -> None:
    with pytest.raises(ManifestError) as err:
        desired(deployment(replicas=1), replica_set(1))
    text = str(err.value)
    assert "rs.yaml:1: ReplicaSet/web: metadata.name" in text
    assert "Deployment demo/web (rs.yaml:0) has this name too" in text


def test_a_replica_set_s_fields_are_checked_like_a_deployment_s() -> None:
    bad = replica_set(1)
    bad["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 70000}]
    bad["spec"]["strategy"] = {"type": "Recreate"}  # a Deployment's field
    with pytest.raises(ManifestError) as err:
        desired(bad)
    text = str(err.value)
    assert "spec.template.spec.containers[0].ports[0].containerPort" in text
    assert "spec.strategy" in text
