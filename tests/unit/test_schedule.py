"""Scheduling on plain data: filter, score, Pending reasons; and what the planner does with
nodes that are cordoned, drained, silent or back after an eviction. In-memory nodes only."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import Why, counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.plan import Plan, make_plan
from gitops.decide.schedule import NodeView, Scheduler, Unschedulable
from gitops.decide.status import resource_statuses
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.model.templates import PodTemplate
from gitops.model.verdicts import Health, Sync
from gitops.nodes.memory import MemoryNode
from tests.helpers import deployment, dump

GI = 1024**3
IMAGES = {"reg/web:v1", "reg/web:v2"}


def web(replicas: int = 6, cpu: str | None = None, memory: str | None = None, **pod: Any) -> Any:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container = {"resources": {"requests": requests}} if requests else {}
    return deployment(replicas=replicas, container=container, pod=pod)


def desired(*docs: dict[str, Any]) -> DesiredState:
    return build_desired(parse_manifests({"a.yaml": dump(*docs)}), "c1")


def plan_on(state: DesiredState, nodes: list[MemoryNode], views: list[NodeView], **kw: Any) -> Plan:
    return make_plan(state, observe(nodes), views, counter_suffix(), **kw)


def run(state: DesiredState, nodes: list[MemoryNode], views: list[NodeView]) -> Plan:
    plan = plan_on(state, nodes, views)
    apply_plan(plan, {n.name: n for n in nodes if n.name in {v.name for v in views}}, state)
    return plan


def spread(nodes: list[MemoryNode]) -> dict[str, int]:
    return dict(sorted(Counter(p.node for p in observe(nodes).pods).items()))


def three() -> tuple[list[MemoryNode], list[NodeView]]:
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2, 3)]
    return nodes, [NodeView(n.name, cpu_millis=2000, memory=4 * GI) for n in nodes]


def test_replicas_spread_evenly_then_least_requested_wins() -> None:
    nodes, views = three()
    run(desired(web(6)), nodes, views)
    assert spread(nodes) == {"n1": 2, "n2": 2, "n3": 2}
    s = Scheduler(
        [NodeView("a", cpu_millis=1000, memory=GI), NodeView("b", cpu_millis=1000, memory=GI)]
    )
    s.add("a", (500, 0))  # another deployment's pod uses half of a's cpu
    template = desired(web(1, cpu="100m")).deployments[0].template
    assert s.place(template, Counter()) == "b"
    assert s.place(template, Counter({"b": 1})) == "a"  # spread comes before least requested


def test_node_selector_and_requests_filter_with_kubernetes_reasons() -> None:
    views = [
        NodeView("n1", labels={"disk": "ssd"}, cpu_millis=1000, memory=GI),
        NodeView("n2", labels={"disk": "hdd"}, cpu_millis=1000, memory=GI),
        NodeView("n3", labels={"disk": "ssd"}, cpu_millis=1000, memory=GI // 4),
        NodeView("n4", labels={"disk": "ssd"}, cordoned=True),
        NodeView("n5", labels={"disk": "ssd"}, ready=False),
    ]
    template = desired(web(1, memory="512Mi", nodeSelector={"disk": "ssd"})).deployments[0]
    s = Scheduler(views)
    assert s.place(template.template, Counter()) == "n1"
    second = s.place(template.template, Counter({"n1": 1}))
    assert second == "n1"  # 2 x 512Mi fit in n1's 1Gi
    third = s.place(template.template, Counter({"n1": 2}))
    assert third == Unschedulable(
        "0/5 nodes are available: 2 Insufficient memory, "
        "1 node(s) didn't match node selector, 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }, 1 node(s) were unschedulable."
    )


def test_what_fits_nowhere_is_pending_and_placed_once_room_appears() -> None:
    nodes = [MemoryNode("n1", registry=IMAGES)]
    small = [NodeView("n1", cpu_millis=1000, memory=GI)]
    state = desired(web(3, cpu="400m"))
    plan = run(state, nodes, small)
    assert len(plan.create) == 2
    pending = plan.pending_for("demo", "web")
    assert pending is not None and pending.count == 1
    assert pending.reason == "0/1 nodes are available: 1 Insufficient cpu."
    assert "! 1 pod(s) of demo/web pending: 0/1 nodes are available" in "\n".join(plan.describe())
    bigger = [NodeView("n1", cpu_millis=2000, memory=GI)]
    plan = run(state, nodes, bigger)
    assert len(plan.create) == 1 and not plan.pending
    assert len(observe(nodes).pods) == 3


def test_a_silent_node_keeps_its_pods_counted_and_untouched() -> None:
    nodes, views = three()
    state = desired(web(3))
    run(state, nodes, views)
    silent = [NodeView(v.name, ready=v.name != "n2") for v in views]
    assert plan_on(state, nodes, silent).empty  # no replacement before the eviction
    scaled = desired(web(1))
    plan = plan_on(scaled, nodes, silent)
    assert all(r.pod.node != "n2" for r in plan.remove)  # never acts on a node that is silent
    assert all(n != "n2" for n, _ in plan.networks_create + plan.networks_remove)


def test_evicted_pods_are_replaced_elsewhere_and_removed_when_their_node_returns() -> None:
    nodes, views = three()
    state = desired(web(3))
    run(state, nodes, views)
    lost = {p.name for p in observe(nodes).pods if p.node == "n3"}
    down = [NodeView(v.name, ready=v.name != "n3") for v in views]
    plan = plan_on(state, nodes, down, evicted=lost)
    assert [c.node for c in plan.create] in (["n1"], ["n2"])
    assert not plan.remove  # n3 cannot be told anything yet
    apply_plan(plan, {n.name: n for n in nodes[:2]}, state)
    back = plan_on(state, nodes, views, evicted=lost)
    assert [(r.pod.name, r.why) for r in back.remove] == [(n, Why.EVICTED) for n in sorted(lost)]
    assert not back.create


def test_a_drained_node_is_emptied_with_the_rolling_rules() -> None:
    nodes, views = three()
    state = desired(web(3) | {"spec": {**web(3)["spec"], "strategy": {
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}})  # fmt: skip
    run(state, nodes, views)
    drained = [NodeView(v.name, cordoned=v.name == "n1", draining=v.name == "n1") for v in views]
    first = run(state, nodes, drained)
    assert [c.node for c in first.create] != [] and all(c.node != "n1" for c in first.create)
    assert not first.remove  # surge first: the old pod goes once its replacement is ready
    for _ in range(5):
        run(state, nodes, drained)
    assert spread(nodes) in ({"n2": 2, "n3": 1}, {"n2": 1, "n3": 2})


def test_a_node_takes_at_most_max_pods() -> None:
    """The kubelet's maxPods: beyond it a pod is Pending, so replicas: 100000 never makes
    100,000 containers."""
    nodes = [NodeView("a", max_pods=2), NodeView("b", max_pods=1)]
    scheduler = Scheduler(nodes)
    template = PodTemplate("demo", "web", "h", ())
    placed = [scheduler.place(template, {}) for _ in range(4)]
    assert sorted(p for p in placed if isinstance(p, str)) == ["a", "a", "b"]
    assert placed[-1] == Unschedulable("0/2 nodes are available: 2 Too many pods.")


def test_a_no_execute_taint_evicts_the_pods_that_do_not_tolerate_it() -> None:
    nodes, views = three()
    tolerant = deployment(name="ops", replicas=3, pod={"tolerations": [
        {"key": "maintenance", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 60}]})  # fmt: skip
    state = desired(web(3), tolerant)
    run(state, nodes, views)
    assert spread(nodes) == {"n1": 2, "n2": 2, "n3": 2}
    tainted = [
        NodeView(v.name, cpu_millis=2000, memory=4 * GI,
                 taints=(("maintenance", "", "NoExecute"),) if v.name == "n1" else ())
        for v in views
    ]  # fmt: skip
    first = run(state, nodes, tainted)
    gone = [(r.pod.deployment, r.pod.node, r.why) for r in first.remove]
    assert gone == [("web", "n1", Why.TAINTED)]  # at once, not surge first; ops tolerates it
    assert [c.node for c in first.create if c.template.deployment == "web"] in (["n2"], ["n3"])
    for _ in range(3):
        run(state, nodes, tainted)
    pods = observe(nodes).pods
    assert {p.node for p in pods if p.deployment == "web"} <= {"n2", "n3"}
    assert sum(1 for p in pods if p.deployment == "web") == 3
    assert sum(1 for p in pods if p.deployment == "ops" and p.node == "n1") == 1
    warned = [str(w) for w in parse_manifests({"a.yaml": dump(tolerant)}).warnings]
    assert any("tolerations[0].tolerationSeconds: ignored" in w for w in warned), warned


def test_gpus_are_scheduled_against_what_each_node_declares() -> None:
    gpu = deployment(name="train", replicas=3,
                     container={"resources": {"limits": {"nvidia.com/gpu": 2}}})  # fmt: skip
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2)]
    views = [NodeView("n1", gpus=4), NodeView("n2")]
    state = desired(gpu)
    assert state.deployments[0].template.gpus == 2
    plan = run(state, nodes, views)
    assert [c.node for c in plan.create] == ["n1", "n1"]  # 2 + 2 of n1's 4; n2 has none
    assert plan.pending[0].reason == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    assert {p.gpus for p in observe(nodes).pods} == {2}  # counted again from the labels


@pytest.mark.parametrize(
    ("resources", "text"),
    [
        ({"limits": {"nvidia.com/gpu": "500m"}}, "limits.nvidia.com/gpu: must be a whole number"),
        ({"requests": {"nvidia.com/gpu": 1}}, "limits.nvidia.com/gpu: must be set"),
        ({"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}},
         "requests.nvidia.com/gpu: must be equal to nvidia.com/gpu limit 2"),
        ({"limits": {"amd.com/gpu": 1}}, "resources.limits.amd.com/gpu"),
    ],
)  # fmt: skip
def test_gpu_requests_follow_the_extended_resource_rules(
    resources: dict[str, Any], text: str
) -> None:
    doc = deployment(container={"resources": resources})
    with pytest.raises(ManifestError) as err:
        desired(doc)
    assert text in str(err.value), str(err.value)


def test_a_pending_new_pod_makes_a_deployment_progressing_though_its_old_pods_serve() -> None:
    nodes, views = three()
    run(desired(web(2)), nodes, views)
    state = desired(web(2, cpu="4"))  # the new template asks more cpu than any node has
    plan = run(state, nodes, views)
    [res] = [r for r in resource_statuses(state, observe(nodes), plan, None)
             if r.kind == "Deployment"]  # fmt: skip
    assert (res.health, res.sync) == (Health.PROGRESSING, Sync.OUT_OF_SYNC)
    assert "1 pod(s) Pending: 0/3 nodes are available: 3 Insufficient cpu." in res.message
