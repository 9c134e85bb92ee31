"""PodDisruptionBudgets on plain data: the disruption controller's arithmetic, and a drain
held back by a budget on in-memory nodes while a rollout or a scale-down is not."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import Why, counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.disruption import Budget, budgets, status
from gitops.decide.health import PodReadiness
from gitops.decide.plan import Plan, make_plan
from gitops.decide.schedule import NodeView
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.nodes.memory import MemoryNode
from tests.helpers import deployment, dump

IMAGES = {"reg/web:v1", "reg/web:v2"}


def pdb(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb", "namespace": "demo"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


def desired(*docs: dict[str, Any]) -> DesiredState:
    return build_desired(parse_manifests({"a.yaml": dump(*docs)}), "c1")


def run(state: DesiredState, nodes: list[MemoryNode], views: list[NodeView]) -> Plan:
    plan = make_plan(state, observe(nodes), views, counter_suffix())
    apply_plan(plan, {n.name: n for n in nodes}, state)
    return plan


def two_nodes() -> tuple[list[MemoryNode], list[NodeView], list[NodeView]]:
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2)]
    views = [NodeView(n.name) for n in nodes]
    drained = [NodeView(n.name, cordoned=n.name == "n1", draining=n.name == "n1") for n in nodes]
    return nodes, views, drained


@pytest.mark.parametrize(
    ("spec", "healthy", "want"),
    [
        # (healthy, wanted, expected, allowed) with 4 replicas wanted and 3 pods, as given
        ({"minAvailable": 2}, 3, (3, 2, 3, 1)),  # an integer: of the pods there are
        ({"minAvailable": 3}, 3, (3, 3, 3, 0)),
        ({"minAvailable": "50%"}, 3, (3, 2, 4, 1)),  # a percentage: of the replicas, rounded up
        ({"maxUnavailable": 1}, 3, (3, 3, 4, 0)),  # one replica already missing: none more
        ({"maxUnavailable": "50%"}, 2, (2, 2, 4, 0)),
        ({"minAvailable": 5}, 3, (3, 5, 3, 0)),  # never below 0
    ],
)
def test_the_disruption_controller_s_arithmetic(
    spec: dict[str, Any], healthy: int, want: tuple[int, int, int, int]
) -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(deployment(replicas=3), pdb(**spec))
    run(state, [node], [NodeView("memory")])
    pods = list(observe([node]).pods)
    [budget] = budgets(state.manifests)
    ready = {p.name: PodReadiness(i < healthy) for i, p in enumerate(pods)}
    st = status(budget, pods, ready, {("demo", "web"): 4})
    assert (st.current_healthy, st.desired_healthy, st.expected_pods,
            st.disruptions_allowed) == want  # fmt: skip


def test_a_budget_selects_in_its_namespace_only() -> None:
    state = desired(deployment(replicas=1), deployment(replicas=1, namespace="other"), pdb())
    node = MemoryNode(registry=IMAGES)
    run(state, [node], [NodeView("memory")])
    [budget] = budgets(state.manifests)
    assert isinstance(budget, Budget)
    assert [p.namespace for p in observe([node]).pods if budget.selects(p)] == ["demo"]


def test_a_drain_waits_for_the_budget_then_goes() -> None:
    """Recreate would take both pods on the drained node at once; the budget lets one go, and
    the second only once its replacement is ready."""
    nodes, views, drained = two_nodes()
    doc = deployment(replicas=2, pod={"nodeSelector": {"kubernetes.io/hostname": "n1"}})
    state = desired(doc, pdb(minAvailable=1))
    run(state, nodes, views)
    assert {p.node for p in observe(nodes).pods} == {"n1"}
    free = desired(deployment(replicas=2, strategy={"rollingUpdate": {"maxSurge": 0,
                   "maxUnavailable": 2}}), pdb(minAvailable=1))  # fmt: skip
    first = run(free, nodes, drained)
    assert [r.why for r in first.remove] == [Why.DRAINED]  # one of two: one must stay healthy
    assert len(first.blocked) == 1 and ("demo", "web") in first.waiting
    assert "would violate the pod's disruption budget demo/web-pdb" in first.blocked[0].reason
    for _ in range(6):
        run(free, nodes, drained)
    assert {p.node for p in observe(nodes).pods} == {"n2"}


def test_a_budget_that_allows_nothing_holds_the_drain_and_status_says_why() -> None:
    nodes, views, _drained = two_nodes()
    recreate = deployment(replicas=1, strategy={"type": "Recreate"})
    state = desired(recreate, pdb(minAvailable=1))
    run(state, nodes, views)
    on = next(iter(observe(nodes).pods)).node
    held = [NodeView(v.name, cordoned=v.name == on, draining=v.name == on) for v in views]
    for _ in range(3):
        plan = run(state, nodes, held)
        assert not plan.remove and len(plan.blocked) == 1
    assert [p.node for p in observe(nodes).pods] == [on]  # Kubernetes' drain waits as long
    allowed = desired(recreate, pdb(maxUnavailable=1))
    plan = run(allowed, nodes, held)
    assert [r.why for r in plan.remove] == [Why.DRAINED] and not plan.blocked


def test_a_rollout_and_a_scale_down_are_not_held_by_a_budget() -> None:
    nodes, views, _ = two_nodes()
    run(desired(deployment(replicas=2), pdb(minAvailable=2)), nodes, views)
    down = run(desired(deployment(replicas=1), pdb(minAvailable=2)), nodes, views)
    assert [r.why for r in down.remove] == [Why.SURPLUS] and not down.blocked


def test_an_unhealthy_pod_goes_while_the_budget_is_met_or_always_allowed() -> None:
    nodes, views, _drained = two_nodes()
    doc = deployment(replicas=1, strategy={"type": "Recreate"})
    state = desired(doc, pdb(minAvailable=1))
    run(state, nodes, views)
    live = observe(nodes)
    on = live.pods[0].node
    held = [NodeView(v.name, cordoned=v.name == on, draining=v.name == on) for v in views]
    sick = {p.name: PodReadiness(False) for p in live.pods}
    plan = make_plan(state, live, held, counter_suffix(), readiness=sick)
    assert not plan.remove and plan.blocked  # 0 healthy of 1 wanted: IfHealthyBudget holds it
    always = desired(doc, pdb(minAvailable=1, unhealthyPodEvictionPolicy="AlwaysAllow"))
    plan = make_plan(always, live, held, counter_suffix(), readiness=sick)
    assert [r.why for r in plan.remove] == [Why.DRAINED]


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        ({"minAvailable": 1, "maxUnavailable": 1}, "spec", "cannot be both set"),
        ({"minAvailable": "half"}, "spec.minAvailable", "not an integer or a percentage"),
        ({"maxUnavailable": "150%"}, "spec.maxUnavailable", "between 0% and 100%"),
    ],
)
def test_a_bad_budget_is_an_error_naming_the_field(
    spec: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(ManifestError) as err:
        desired(pdb(**spec))
    assert f"a.yaml:0: PodDisruptionBudget/web-pdb: {field}" in str(err.value)
    assert text in str(err.value)


def test_a_budget_without_a_selector_is_a_warning() -> None:
    doc = pdb()
    del doc["spec"]["selector"]
    manifests = parse_manifests({"a.yaml": dump(doc)})
    said = [str(w) for w in manifests.warnings]
    assert any("spec.selector" in w and "selects no pod" in w for w in said), said
