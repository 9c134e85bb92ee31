"""The planner on plain data, driven against the in-memory node."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import Why, counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.plan import Plan, make_plan
from gitops.manifests import parse_manifests
from gitops.nodes.memory import MemoryNode
from tests.helpers import deployment, dump

IMAGES = {"reg/web:v1", "reg/web:v2", "reg/api:v1"}


def desired(*docs: dict[str, Any], commit: str = "c1") -> DesiredState:
    return build_desired(parse_manifests({"a.yaml": dump(*docs)}), commit)


def step(state: DesiredState, nodes: list[MemoryNode]) -> Plan:
    plan = make_plan(state, observe(nodes), [n.name for n in nodes], counter_suffix())
    apply_plan(plan, {n.name: n for n in nodes}, state)
    return plan


def converge(state: DesiredState, nodes: list[MemoryNode], limit: int = 10) -> int:
    for i in range(limit):
        if step(state, nodes).empty:
            return i
    raise AssertionError("did not converge")


def test_creates_missing_replicas_then_nothing() -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(deployment(replicas=3))
    plan = make_plan(state, observe([node]), ["memory"], counter_suffix())
    assert [c.why for c in plan.create] == [Why.MISSING] * 3
    assert plan.networks_create == (("memory", "demo"),)
    assert [c.pod for c in plan.create] == [
        f"web-{state.deployments[0].template.template_hash}-{s}"
        for s in ("aaaaa", "aaaab", "aaaac")
    ]
    assert converge(state, [node]) == 1
    assert len(observe([node]).pods) == 3


def test_replacement_with_full_surge_creates_all_then_removes_old() -> None:
    node = MemoryNode(registry=IMAGES)
    strategy: dict[str, Any] = {
        "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}
    }
    converge(desired(deployment(replicas=3, **strategy)), [node])
    v2 = desired(deployment(replicas=3, image="reg/web:v2", **strategy), commit="c2")
    first = step(v2, [node])
    assert len(first.create) == 3 and not first.remove  # old pods keep serving meanwhile
    assert ("demo", "web") in first.waiting
    second = step(v2, [node])
    assert [r.why for r in second.remove] == [Why.OUTDATED] * 3 and not second.create
    pods = observe([node]).pods
    assert {p.commit for p in pods} == {"c2"} and len(pods) == 3


def test_default_strategy_replaces_one_pod_at_a_time() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(deployment(replicas=3)), [node])
    v2 = desired(deployment(replicas=3, image="reg/web:v2"), commit="c2")
    sizes = []
    for _ in range(20):
        plan = step(v2, [node])
        sizes.append((len(plan.create), len(plan.remove)))
        if plan.empty:
            break
    # 25 % of 3: maxSurge 1 (rounded up), maxUnavailable 0 (rounded down)
    # an old pod stopping no longer counts: its replacement is created in the same pass
    assert sizes == [(1, 0), (1, 1), (1, 1), (0, 1), (0, 0)]


def test_recreate_removes_every_old_pod_before_creating() -> None:
    node = MemoryNode(registry=IMAGES)
    recreate: dict[str, Any] = {"strategy": {"type": "Recreate"}}
    converge(desired(deployment(replicas=3, **recreate)), [node])
    v2 = desired(deployment(replicas=3, image="reg/web:v2", **recreate), commit="c2")
    first = step(v2, [node])
    assert (len(first.create), len(first.remove)) == (0, 3)
    second = step(v2, [node])
    assert (len(second.create), len(second.remove)) == (3, 0)


def test_paused_deployment_does_not_roll() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(deployment(replicas=2)), [node])
    paused = desired(deployment(replicas=2, image="reg/web:v2", paused=True), commit="c2")
    plan = step(paused, [node])
    assert not plan.create and not plan.remove and ("demo", "web") in plan.waiting


def test_scale_down_removes_surplus_keeping_oldest() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(deployment(replicas=4)), [node])
    oldest = observe([node]).pods[0].name
    plan = step(desired(deployment(replicas=1)), [node])
    assert [r.why for r in plan.remove] == [Why.SURPLUS] * 3
    assert [p.name for p in observe([node]).pods] == [oldest]


def test_prune_and_prune_disabled() -> None:
    node = MemoryNode(registry=IMAGES)
    keep = deployment(name="keep", metadata={"annotations": {"gitops.io/prune": "disabled"}})
    converge(desired(deployment(name="gone", replicas=2), keep), [node])
    plan = step(desired(deployment(name="other", replicas=1)), [node])
    assert sorted({(r.pod.deployment, r.why) for r in plan.remove}) == [("gone", Why.PRUNED)]
    assert {p.deployment for p in observe([node]).pods} == {"keep", "other"}


def test_exited_containers_are_restarted_and_deleted_pods_replaced() -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(deployment(replicas=2))
    converge(state, [node])
    first, second = observe([node]).pods
    node.crash(first.app_containers()[0].id)
    node.delete(second.app_containers()[0].id)
    plan = step(state, [node])
    assert [r.why for r in plan.restart] == [f"{Why.EXITED}: Exited (1)"]
    assert [c.why for c in plan.create] == [Why.MISSING]
    assert all(p.running for p in observe([node]).pods)


def test_unpullable_image_leaves_old_pods_and_names_the_field() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(deployment(replicas=2), deployment(name="api", image="reg/api:v1")), [node])
    before = {p.name for p in observe([node]).pods}
    bad = desired(
        deployment(replicas=2, image="reg/web:missing"),
        deployment(name="api", image="reg/api:v1", replicas=2),
    )
    plan = make_plan(bad, observe([node]), ["memory"], counter_suffix())
    result = apply_plan(plan, {"memory": node}, bad)
    [failure] = result.failures
    assert failure.deployment == "web" and failure.reason == "ImagePullBackOff"
    assert failure.message.startswith(
        "a.yaml:0: Deployment/web: spec.template.spec.containers[0].image: "
    )
    after = observe([node])
    assert {p.name for p in after.of("demo", "web")} <= before  # web untouched
    assert len(after.of("demo", "api")) == 2  # the other deployment proceeded


def test_spreads_replicas_over_nodes() -> None:
    nodes = [MemoryNode(f"n{i}", IMAGES) for i in range(3)]
    converge(desired(deployment(replicas=6)), nodes)
    per_node = sorted(len(observe([n]).pods) for n in nodes)
    assert per_node == [2, 2, 2]


def test_no_op_plan_costs_two_list_calls_per_node() -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(deployment(replicas=5))
    converge(state, [node])
    node.calls = 0
    assert make_plan(state, observe([node], volumes=False, records=False), ["memory"]).empty
    assert node.calls == 2  # a container list, a network list (no claims, no Jobs: no more)


@settings(max_examples=60, deadline=None)
@given(
    before=st.integers(0, 8),
    after=st.integers(0, 8),
    change=st.booleans(),
    crashed=st.integers(0, 3),
)
def test_converges_to_exactly_replicas_of_current_template(
    before: int, after: int, change: bool, crashed: int
) -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(deployment(replicas=before)), [node])
    for pod in observe([node]).pods[:crashed]:
        node.crash(pod.app_containers()[0].id)
    image = "reg/web:v2" if change else "reg/web:v1"
    target = desired(deployment(replicas=after, image=image), commit="c2")
    converge(target, [node], limit=60)
    pods = observe([node]).pods
    h = target.deployments[0].template.template_hash
    assert len(pods) == after
    assert all(p.template_hash == h and p.running for p in pods)


def test_a_commit_arriving_mid_rollout_takes_over_and_keeps_matching_pods() -> None:
    node = MemoryNode(registry=IMAGES)
    v1 = desired(deployment(replicas=3))
    converge(v1, [node])
    v1_pods = {p.name for p in observe([node]).pods}
    v2 = desired(deployment(replicas=3, image="reg/web:v2"), commit="c2")
    for _ in range(3):  # part of the way to v2
        step(v2, [node])
    assert {p.commit for p in observe([node]).pods} == {"c1", "c2"}
    converge(
        desired(deployment(replicas=3), commit="c3"), [node], limit=20
    )  # back to v1's template
    pods = observe([node]).pods
    assert len(pods) == 3 and {p.template_hash for p in pods} == {
        v1.deployments[0].template.template_hash
    }
    assert v1_pods & {p.name for p in pods}  # pods that already matched were kept, not recreated


SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "demo"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"name": "b", "port": 81}]},
}


def test_services_name_proxies_are_part_of_the_plan_and_of_diff() -> None:
    """Made on every ready node, made again when their ports change, removed with their
    Service; `gitops diff` shows each."""
    nodes = [MemoryNode("n1", IMAGES), MemoryNode("n2", IMAGES)]
    svc = {
        **SERVICE,
        "spec": {
            **SERVICE["spec"],
            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}],
        },
    }
    state = desired(deployment(image="reg/web:v1", replicas=1), svc)
    first = step(state, nodes)
    assert [(n.node, n.service, n.ports) for n in first.names_create] == [
        ("n1", "web", (80, 81)), ("n2", "web", (80, 81)),
    ]  # fmt: skip
    assert "+ service name demo/web on n1 (ports 80,81)" in first.describe()
    assert converge(state, nodes) <= 1
    assert not make_plan(state, observe(nodes), ["n1", "n2"], counter_suffix()).names_create
    svc["spec"]["ports"] = [{"port": 8080}]
    changed = make_plan(
        desired(deployment(image="reg/web:v1", replicas=1), svc),
        observe(nodes),
        ["n1", "n2"],
        counter_suffix(),
    )
    assert [n.ports for n in changed.names_create] == [(8080,), (8080,)]
    gone = make_plan(
        desired(deployment(image="reg/web:v1", replicas=1)),
        observe(nodes),
        ["n1"],
        counter_suffix(),
    )
    assert [(n.node, n.service) for n in gone.names_remove] == [("n1", "web")]  # n2 not ready
    assert "- service name demo/web on n1" in gone.describe()


def test_a_deployment_whose_image_cannot_be_pulled_is_not_touched_but_pruning_goes_on() -> None:
    node = MemoryNode("n1", IMAGES)
    converge(desired(deployment(image="reg/web:v1"), deployment("api", image="reg/api:v1")), [node])
    broken = desired(deployment(image="reg/web:nope"))  # api deleted from git, web broken
    plan = make_plan(broken, observe([node]), ["n1"], counter_suffix())
    result = apply_plan(plan, {"n1": node}, broken)
    assert result.failure_for("demo", "web") is not None and result.created == 0
    pods = {p.deployment for p in observe([node]).pods}
    assert pods == {"web"}  # api pruned; web's old pods still serve
    assert plan.gate(plan.remove[0]) is None and plan.gate(plan.create[0]) == ("demo", "web")


def test_a_headless_service_is_its_pods_own_names_and_has_no_name_proxy() -> None:
    def svc(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace":
                "demo"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}  # fmt: skip

    state = desired(deployment(replicas=1), svc("peers", clusterIP="None"), svc("web"))
    assert state.deployments[0].template.headless == ("peers",)
    plan = make_plan(state, observe([MemoryNode(registry=IMAGES)]), ["memory"], counter_suffix())
    assert [n.service for n in plan.names_create] == ["web"]
    plain = desired(deployment(replicas=1), svc("web"))
    # Docker sets a name at creation only: a new headless Service replaces the pods it selects.
    assert (
        plain.deployments[0].template.template_hash != state.deployments[0].template.template_hash
    )


def test_only_a_jobs_pods_skip_the_slow_start() -> None:
    node = MemoryNode(registry=IMAGES)
    fresh = make_plan(desired(deployment(replicas=3)), observe([node]), ["memory"],
                      counter_suffix())  # fmt: skip
    assert len(fresh.create) == 3 and fresh.unthrottled == ()  # a Deployment: slow start
    batch = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "work", "namespace": "demo"},
             "spec": {"parallelism": 3, "completions": 6, "template": {"spec": {
                 "restartPolicy": "Never", "containers": [{"name": "w", "image": "reg/api:v1"}]}}}}  # fmt: skip
    plan = make_plan(desired(batch), observe([node]), ["memory"], counter_suffix())
    assert len(plan.create) == 3 and plan.unthrottled == (("demo", "work"),)
