"""The StatefulSet planner on plain data, against in-memory nodes: stable names, claims per
ordinal, OrderedReady and Parallel, updates from the highest ordinal with a partition, and data
that outlives scale-downs and deletions."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import Why, counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.health import PodReadiness
from gitops.decide.plan import Plan, make_plan
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.nodes.memory import MemoryNode
from gitops.serve.views import claim_rows
from tests.helpers import dump

IMAGES = {"reg/db:v1", "reg/db:v2"}


def sts(replicas: int = 3, image: str = "reg/db:v1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "demo"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": image,
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}},
            }],
            **spec,
        },
    }  # fmt: skip


HEADLESS = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "demo"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}}}  # fmt: skip


def desired(*docs: dict[str, Any]) -> DesiredState:
    return build_desired(parse_manifests({"s.yaml": dump(HEADLESS, *docs)}), "c1")


def step(state: DesiredState, node: MemoryNode, ready: bool = True) -> Plan:
    live = observe([node])
    readiness = {p.name: PodReadiness(ready) for p in live.pods}
    plan = make_plan(state, live, ["memory"], counter_suffix(), readiness)
    apply_plan(plan, {"memory": node}, state)
    return plan


def names(node: MemoryNode) -> list[str]:
    return sorted(p.name for p in observe([node]).pods)


def converge(state: DesiredState, node: MemoryNode) -> list[Plan]:
    plans = []
    for _ in range(20):
        plans.append(step(state, node))
        if plans[-1].empty:
            return plans
    raise AssertionError("did not converge")


def test_ordered_ready_makes_one_ordinal_at_a_time_each_with_its_own_claim() -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(sts(3))
    first = step(state, node, ready=False)
    assert [c.pod for c in first.create] == ["db-0"]
    again = step(state, node, ready=False)
    assert not again.create  # db-0 is not Ready: nothing more happens
    plans = converge(state, node)
    assert [c.pod for p in plans for c in p.create] == ["db-1", "db-2"]
    assert names(node) == ["db-0", "db-1", "db-2"]
    assert sorted(v.meta.claim for v in observe([node]).volumes) == [
        "data-db-0", "data-db-1", "data-db-2"]  # fmt: skip
    [t] = [c.template for p in plans for c in p.create if c.pod == "db-1"]
    assert t.dns is not None and (t.dns.hostname, t.dns.subdomain) == ("db-1", "db")
    assert t.containers[0].mounts[0].volume == "data-db-1"


def test_parallel_makes_all_at_once_and_scale_down_goes_highest_first() -> None:
    node = MemoryNode(registry=IMAGES)
    plans = converge(desired(sts(3, podManagementPolicy="Parallel")), node)
    assert sorted(c.pod for c in plans[0].create) == ["db-0", "db-1", "db-2"]
    down = desired(sts(1))
    first = step(down, node)
    assert [(r.pod.name, r.why) for r in first.remove] == [("db-2", Why.SURPLUS)]
    converge(down, node)
    assert names(node) == ["db-0"]
    assert len(observe([node]).volumes) == 3  # the claims of db-1 and db-2 stay (Retain)
    converge(desired(sts(3)), node)
    assert names(node) == ["db-0", "db-1", "db-2"] and len(observe([node]).volumes) == 3


def test_an_update_goes_from_the_highest_ordinal_down_and_stops_at_the_partition() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(sts(3)), node)
    v2 = desired(sts(3, image="reg/db:v2",
                     updateStrategy={"rollingUpdate": {"partition": 1}}))  # fmt: skip
    order = []
    for plan in converge(v2, node):
        order += [r.pod.name for r in plan.remove if r.why == Why.OUTDATED]
    assert order == ["db-2", "db-1"]  # db-0 is below the partition
    images = {p.name: p.app_containers()[0].image for p in observe([node]).pods}
    assert images == {"db-0": "reg/db:v1", "db-1": "reg/db:v2", "db-2": "reg/db:v2"}


def test_on_delete_keeps_the_old_pods_until_removed() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(sts(2)), node)
    v2 = desired(sts(2, image="reg/db:v2", updateStrategy={"type": "OnDelete"}))
    assert all(not p.remove for p in converge(v2, node))
    [db1] = [p for p in observe([node]).pods if p.name == "db-1"]
    node.remove_pod(db1)
    converge(v2, node)
    images = {p.name: p.app_containers()[0].image for p in observe([node]).pods}
    assert images == {"db-0": "reg/db:v1", "db-1": "reg/db:v2"}


def test_a_deleted_statefulset_leaves_its_claims() -> None:
    node = MemoryNode(registry=IMAGES)
    converge(desired(sts(2)), node)
    converge(build_desired(parse_manifests({"s.yaml": dump(HEADLESS)}), "c2"), node)
    assert names(node) == [] and len(observe([node]).volumes) == 2


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ({"serviceName": "nope"}, "spec.serviceName: Service 'nope' not found"),
        ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
         "spec.updateStrategy.rollingUpdate: may not be specified"),
        ({"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}}]},
         "spec.volumeClaimTemplates[0].spec.accessModes[0]: ReadWriteMany needs a volume"),
    ],
)  # fmt: skip
def test_what_a_statefulset_cannot_be_is_refused(spec: dict[str, Any], text: str) -> None:
    with pytest.raises(ManifestError) as err:
        desired(sts(1, **spec))
    assert text in str(err.value), str(err.value)


def test_a_retention_policy_of_delete_deletes_the_claims_once_their_pods_are_gone() -> None:
    node = MemoryNode(registry=IMAGES)
    policy: dict[str, Any] = {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete",
                                                      "whenDeleted": "Delete"}}  # fmt: skip
    converge(desired(sts(3, **policy)), node)
    converge(desired(sts(1, **policy)), node)
    assert [v.meta.claim for v in observe([node]).volumes] == ["data-db-0"]
    converge(build_desired(parse_manifests({"s.yaml": dump(HEADLESS)}), "c2"), node)
    assert names(node) == [] and observe([node]).volumes == ()


def test_a_claim_templates_size_is_said_to_be_unenforced_on_the_local_class() -> None:
    warned = [str(w) for w in parse_manifests({"s.yaml": dump(HEADLESS, sts(1))}).warnings]
    assert any(
        "StatefulSet/db: spec.volumeClaimTemplates[0].spec.resources.requests.storage: recorded"
        in w
        for w in warned
    ), warned


def test_get_pvc_shows_a_statefulsets_claims_bound_until_the_set_leaves_git() -> None:
    node = MemoryNode(registry=IMAGES)
    state = desired(sts(3))
    converge(state, node)

    def statuses(st: DesiredState) -> dict[str, str]:
        live = observe([node])
        return {r["name"]: r["status"] for r in claim_rows(st, live, live.volumes, None)}

    claims = ["data-db-0", "data-db-1", "data-db-2"]
    assert statuses(state) == dict.fromkeys(claims, "Bound")
    down = desired(sts(1))
    converge(down, node)
    assert statuses(down) == dict.fromkeys(claims, "Bound")  # kept for the set, as Kubernetes does
    gone = build_desired(parse_manifests({"s.yaml": dump(HEADLESS)}), "c3")
    assert statuses(gone) == dict.fromkeys(claims, "Released")
    assert statuses(desired(sts(4)))["data-db-3"] == "Pending"  # made when db-3 first runs
