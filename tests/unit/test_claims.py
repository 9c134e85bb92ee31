"""PersistentVolumeClaims on plain data: what is refused and why, where a pod of a claim may
go (the node holding its volume, and nowhere while that node is away), and a drain that leaves
such a pod where its data is."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.plan import Plan, make_plan
from gitops.decide.schedule import NodeView
from gitops.errors import ManifestError
from gitops.manifests import Policy, parse_manifests
from gitops.model.live import LiveState
from gitops.nodes.base import sized_options
from gitops.nodes.memory import MemoryNode
from tests.helpers import deployment, dump

IMAGES = {"reg/web:v1"}


def pvc(name: str = "data", **spec: Any) -> dict[str, Any]:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "demo"}, "spec": body | spec}  # fmt: skip


def user(name: str = "db", claim: str = "data", **container: Any) -> dict[str, Any]:
    mount = {"name": "d", "mountPath": "/data", **container.pop("mount", {})}
    return deployment(
        name, replicas=1,
        container={"volumeMounts": [mount], **container},
        pod={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]},
    )  # fmt: skip


def desired(*docs: dict[str, Any], policy: Policy | None = None) -> DesiredState:
    return build_desired(parse_manifests({"a.yaml": dump(*docs)}, policy=policy), "c1")


def run(state: DesiredState, nodes: list[MemoryNode], views: list[NodeView],
        live: LiveState | None = None) -> Plan:  # fmt: skip
    plan = make_plan(state, live or observe(nodes), views, counter_suffix())
    apply_plan(plan, {n.name: n for n in nodes if n.name in {v.name for v in views}}, state)
    return plan


@pytest.mark.parametrize(
    ("docs", "field", "text"),
    [
        ([pvc(accessModes=["ReadWriteMany"])], "spec.accessModes[0]", "needs a volume every node"),
        ([pvc(storageClassName="fast")], "spec.storageClassName", "no storage class 'fast'"),
        ([pvc(volumeMode="Block")], "spec.volumeMode", "a Docker volume is a filesystem"),
        ([pvc(dataSource={"kind": "VolumeSnapshot", "name": "s"})], "spec.dataSource", "copies no"),
        ([pvc(resources={})], "spec.resources.requests.storage", "required"),
        ([user()], "volumes[0].persistentVolumeClaim.claimName", "'data' not found"),
        ([pvc(), user(mount={"subPath": "../up"})], "volumeMounts[0].subPath", "'..'"),
        ([pvc(), user(mount={"subPath": "/abs"})], "volumeMounts[0].subPath", "relative"),
        ([pvc(), user(mount={"subPathExpr": "$(NOPE)"})], "volumeMounts[0].subPathExpr",
         "$(NOPE) is not an environment variable"),
    ],
)  # fmt: skip
def test_what_a_claim_cannot_be_is_refused_naming_the_field(
    docs: list[dict[str, Any]], field: str, text: str
) -> None:
    with pytest.raises(ManifestError) as err:
        desired(*docs)
    said = str(err.value)
    assert field in said and text in said, said


def test_a_shared_class_takes_read_write_many_and_storage_is_recorded_with_a_warning() -> None:
    policy = Policy(storage_classes=(("local", False), ("nfs", True)))
    manifests = parse_manifests({"a.yaml": dump(pvc(storageClassName="nfs",
                                accessModes=["ReadWriteMany"]), pvc("plain"))}, policy=policy)  # fmt: skip
    warned = [str(w) for w in manifests.warnings]
    assert warned == [
        "a.yaml:1: PersistentVolumeClaim/plain: spec.resources.requests.storage: recorded and "
        "shown, not enforced: Docker's local volume driver has no size limit"
    ]


def test_a_claims_pods_follow_its_volume_and_wait_for_its_node() -> None:
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2, 3)]
    views = [NodeView(n.name) for n in nodes]
    state = desired(pvc(), user("db"), user("backup"))
    first = run(state, nodes, views)
    assert len({c.node for c in first.create}) == 1  # both on the node that made the volume
    [held] = {c.node for c in first.create}
    assert [v.node for v in observe(nodes).volumes] == [held]
    for n in nodes:
        if n.name == held:
            n.containers.clear()  # its pods are gone; its volume is not
    down = [NodeView(v.name, ready=v.name != held) for v in views]
    plan = run(state, nodes, down)
    assert not plan.create  # never an empty copy elsewhere
    reasons = {p.reason for p in plan.pending}
    assert reasons == {
        f"PersistentVolumeClaim demo/data has its volume on node {held}, which is not ready or "
        "is cordoned; 0/3 nodes are available: 2 node(s) had volume node affinity conflict, "
        "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
    }, reasons
    back = run(state, nodes, views)
    assert {c.node for c in back.create} == {held}


def test_an_unseen_claim_waits_while_a_node_does_not_answer() -> None:
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2)]
    nodes[1].down = True
    state = desired(pvc(), user())
    live = observe(nodes)
    assert "n2" in live.unreachable
    plan = make_plan(state, live, [NodeView("n1"), NodeView("n2", ready=False)], counter_suffix())
    assert not plan.create
    assert plan.pending[0].reason.startswith(
        "PersistentVolumeClaim demo/data may have its volume on n2, which does not answer"
    )


def test_read_write_once_pod_admits_one_pod() -> None:
    nodes = [MemoryNode("n1", registry=IMAGES)]
    state = desired(pvc(accessModes=["ReadWriteOncePod"]), user("a"), user("b"))
    plan = run(state, nodes, [NodeView("n1")])
    assert len(plan.create) == 1
    assert "is ReadWriteOncePod and used by pod" in plan.pending[0].reason


def test_a_drain_leaves_a_pod_where_its_claims_volume_is_and_says_why() -> None:
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2)]
    views = [NodeView(n.name) for n in nodes]
    doc = user()
    doc["spec"]["strategy"] = {"type": "Recreate"}  # would remove the pod before moving it
    state = desired(pvc(), doc)
    run(state, nodes, views)
    [pod] = observe(nodes).pods
    drained = [NodeView(v.name, cordoned=v.name == pod.node, draining=v.name == pod.node)
               for v in views]  # fmt: skip
    plan = run(state, nodes, drained)
    assert not plan.remove and not plan.create
    assert [b.pod for b in plan.blocked] == [pod.name]
    assert (
        "cannot move: PersistentVolumeClaim demo/data has its volume on node"
        in plan.blocked[0].reason
    )


def test_a_shared_claim_ties_its_pods_to_no_node() -> None:
    """ReadWriteMany of a shared class: each node reaches the same storage, so the pods spread
    as any others, a lost node's pod is made elsewhere and a drain moves it."""
    policy = Policy(storage_classes=(("local", False), ("nfs", True)))
    nodes = [MemoryNode(f"n{i}", registry=IMAGES) for i in (1, 2, 3)]
    views = [NodeView(n.name) for n in nodes]
    web = user("web")
    web["spec"]["replicas"] = 3
    state = desired(pvc(storageClassName="nfs", accessModes=["ReadWriteMany"]), web, policy=policy)
    first = run(state, nodes, views)
    assert sorted(c.node for c in first.create) == ["n1", "n2", "n3"]
    vols = observe(nodes).volumes
    assert sorted(v.node for v in vols) == ["n1", "n2", "n3"] and all(v.meta.shared for v in vols)
    nodes[0].containers.clear()  # n1's pod is gone with its node; its volume is not
    plan = run(state, nodes, [NodeView("n1", ready=False), *views[1:]])
    assert [c.node for c in plan.create] != [] and {c.node for c in plan.create} <= {"n2", "n3"}
    assert not plan.pending
    drained = [NodeView(v.name, cordoned=v.name == "n2", draining=v.name == "n2") for v in views]
    moved = run(state, nodes, drained)  # made elsewhere first, then removed: never held back
    assert not moved.blocked and moved.create and "n2" not in {c.node for c in moved.create}


def test_a_claims_size_becomes_a_tmpfs_volumes_size_unless_its_class_sets_one() -> None:
    tmpfs = {"type": "tmpfs", "device": "tmpfs"}
    assert sized_options("local", tmpfs, "64Mi")["o"] == "size=67108864"
    assert sized_options("local", tmpfs | {"o": "uid=1000"}, "1Ki")["o"] == "uid=1000,size=1024"
    assert sized_options("local", tmpfs | {"o": "size=1g"}, "64Mi")["o"] == "size=1g"
    assert sized_options("local", {}, "64Mi") == {}  # on disk: no size to give
    assert sized_options("rexray", tmpfs, "64Mi") == tmpfs  # another driver's own options
