"""Whole passes on the harness (the real Reconciler, in-memory nodes, a real git repository, an
injected clock): converge and repair, prune, a rollout that fails and is rolled back, a node
lost and back, a commit that is rejected, a dry run that changes nothing."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from gitops.decide.actions import counter_suffix
from gitops.errors import Reason
from gitops.model.verdicts import Health, Result, Rollout, Sync
from gitops.runner import compose
from gitops.source.git import GitSource
from gitops.state.history import History
from tests.harness.harness import Harness
from tests.helpers import deployment


def web(image: str = "reg/web:v1", replicas: int = 3, **extra: Any) -> dict[str, Any]:
    return deployment(image=image, replicas=replicas, **extra)


def test_converge_then_repair_drift(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("web.yaml", web())
    outcome = h.run()
    assert outcome.status.result == Result.SUCCEEDED and len(h.pods()) == 3
    assert {(r.sync, r.health) for r in outcome.status.resources if r.kind == "Deployment"} == {
        (Sync.SYNCED, Health.HEALTHY)
    }
    node = h.nodes["n1"]
    victim = h.pods()[0].app_containers()[0].id
    node.delete(victim)
    node.crash(h.pods()[1].app_containers()[0].id)
    h.run()
    assert len(h.pods()) == 3 and all(p.running for p in h.pods())
    assert victim not in {c.id for p in h.pods() for c in p.containers}


def test_prune_and_prune_disabled(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    keep = deployment(
        "api",
        image="reg/api:v1",
        replicas=1,
        metadata={"annotations": {"gitops.io/prune": "disabled"}},
    )
    h.push("ns.yaml", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    h.push("web.yaml", web(replicas=2))
    h.push("api.yaml", keep)
    h.run()
    assert len(h.pods()) == 2 and len(h.pods("api")) == 1
    h.push("web.yaml")  # deleted from git
    h.push("api.yaml")
    outcome = h.run()
    assert h.pods() == [] and len(h.pods("api")) == 1
    [api] = [r for r in outcome.status.resources if r.name == "api"]
    assert api.sync == Sync.OUT_OF_SYNC and "pruning is disabled" in api.message


def test_a_failed_rollout_is_rolled_back_by_itself(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    fast: dict[str, Any] = {"metadata": {"annotations": {"gitops.io/fail-fast": "true"}}}
    h.push("web.yaml", web(replicas=2, **fast))
    h.run()
    assert h.rec.latest_rollout(("demo", "web")).result == Rollout.COMPLETE  # type: ignore[union-attr]
    bad = h.push("web.yaml", web("reg/web:v2", replicas=2, **fast))
    node = h.nodes["n1"]
    for _ in range(10):  # v2's containers exit as soon as they start, a crash loop
        h.rec.reconcile("test")
        for pod in h.pods():
            for c in pod.app_containers():
                if c.image == "reg/web:v2" and c.state == "running":
                    node.crash(c.id, 127)  # exec /web failed: No such file or directory
        h.clock.advance(1.0)
        latest = h.rec.latest_rollout(("demo", "web"))
        if latest is not None and latest.is_rollback:
            break
    outcome = h.run()
    assert h.images() == {"reg/web:v1"} and len(h.pods()) == 2
    records = h.rec.history.rollouts("demo", "web")
    assert [r.result for r in records[:2]] == [Rollout.COMPLETE, Rollout.FAILED]
    assert (
        records[1].commit == bad
        and records[1].rolled_back_to
        and "NewPodFailed" in records[1].reason
    )
    [row] = [r for r in outcome.status.resources if r.kind == "Deployment"]
    assert row.message.startswith("rolled back") and row.health == Health.DEGRADED


def test_a_lost_node_has_its_pods_replaced_and_removed_when_it_returns(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=("n1", "n2"), node_grace=10.0, eviction_timeout=30.0)
    h.push("web.yaml", web(replicas=2))
    h.run()
    assert sorted(p.node for p in h.pods()) == ["n1", "n2"]
    h.nodes["n2"].down = True
    h.rec.cluster.check()
    h.clock.advance(31.0)
    h.rec.cluster.check()  # silent past the eviction timeout: its pods are replaced
    h.run()
    on_n1 = [p for p in h.rec.look().pods if p.node == "n1"]
    assert len(on_n1) == 2
    h.nodes["n2"].down = False
    h.rec.cluster.check()
    h.run()
    pods = h.pods()
    assert len(pods) == 2 and {p.node for p in pods} == {"n1"}  # back: its stale pod removed


def test_a_rejected_commit_changes_nothing_and_says_where(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("web.yaml", web())
    h.run()
    before = {c.id for p in h.pods() for c in p.containers}
    h.push(
        "bad.yaml",
        deployment(
            "bad",
            image="reg/web:v1",
            replicas=1,
            container={"resources": {"limits": {"memory": "1e5000"}}},
        ),
    )
    outcome = h.run()
    assert (
        outcome.status.result == Result.FAILED and outcome.status.reason == Reason.VALIDATION_FAILED
    )
    assert any("bad.yaml:0: Deployment/bad" in e for e in outcome.status.errors)
    assert {c.id for p in h.pods() for c in p.containers} == before
    assert {r.sync for r in outcome.status.resources} == {Sync.OUT_OF_SYNC}


def test_a_dry_run_decides_and_changes_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("web.yaml", web(replicas=2))
    outcome = h.rec.reconcile("diff", dry_run=True)
    assert outcome.plan is not None and len(outcome.plan.create) == 2
    assert h.pods() == [] and h.rec.status.result == Result.PENDING
    assert h.rec.history.syncs() == [] and outcome.requeue_after is None


def test_kinds_gitops_skips_are_listed_and_ignored_fields_are_warnings(tmp_path: Path) -> None:
    h = Harness(tmp_path, skip_api_groups=frozenset({"monitoring.coreos.com"}))
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}}
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "web"},
        "spec": {},
    }
    app = web(replicas=1)
    app["spec"]["template"]["spec"]["serviceAccountName"] = "web"
    h.push("web.yaml", account, monitor, app)
    outcome = h.run()
    status = outcome.status
    assert status.result == Result.SUCCEEDED and len(h.pods()) == 1
    skipped = {(r.kind, r.name): r for r in status.resources if r.sync == Sync.SKIPPED}
    assert set(skipped) == {("ServiceAccount", "web"), ("ServiceMonitor", "web")}
    assert "no Kubernetes API server" in skipped["ServiceAccount", "web"].message
    assert "monitoring.coreos.com, which is skipped" in skipped["ServiceMonitor", "web"].message
    assert status.warnings == (
        "web.yaml:2: Deployment/web: spec.template.spec.serviceAccountName: ignored: a Docker "
        "host has no Kubernetes API server, so no service accounts",
    )
    h.push("web.yaml", account, web(replicas=1))
    assert h.run().status.warnings == ()


def test_a_start_the_engine_refuses_is_backed_off_not_retried_at_every_pass(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("web.yaml", web(replicas=1))
    h.run()
    node = h.nodes["n1"]
    node.crash(h.pods()[0].app_containers()[0].id)
    node.refuse_starts = True
    h.rec.reconcile("test")  # the restart is refused: a Failed pass
    tried = node.start_attempts
    assert tried == 1
    for _ in range(3):  # passes within the back-off try nothing
        h.rec.reconcile("test")
    assert node.start_attempts == tried
    node.refuse_starts = False
    h.clock.advance(11)  # past the first back-off (10 s)
    h.run()
    assert all(p.running for p in h.pods())


def test_a_lost_node_keeps_its_claims_pods_pending_even_across_a_restart(tmp_path: Path) -> None:
    """The pod of a claim whose node is lost is not evicted onto an empty copy elsewhere, and
    a reconciler restarted meanwhile (same state directory) still knows where the volume is."""
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": "demo"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    db = web(replicas=1)
    db["spec"]["template"]["spec"]["volumes"] = [
        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}
    ]
    db["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "d", "mountPath": "/d"}
    ]
    h = Harness(tmp_path, nodes=("n1", "n2"), node_grace=10.0, eviction_timeout=30.0)
    h.push("db.yaml", claim, db)
    h.run()
    [pod] = h.pods()
    held = pod.node
    h.nodes[held].down = True
    h.rec.cluster.check()
    h.clock.advance(31.0)
    h.rec.cluster.check()
    outcome = h.run()
    assert [p.node for p in h.rec.look().pods] == []  # nothing started on the other node
    [res] = [r for r in outcome.status.resources if r.name == "web"]
    assert f"PersistentVolumeClaim demo/data has its volume on node {held}" in res.message
    again = Harness.__new__(Harness)  # a new reconciler on the same state and nodes
    again.__dict__.update(h.__dict__)
    source = GitSource(h.settings.repo, h.settings.state_dir / "source")
    again.rec = compose(h.settings, source, list(h.nodes.values()), History(h.settings.state_dir),
                        clock=h.clock, names=counter_suffix())  # fmt: skip
    again.run()
    assert [p.node for p in again.rec.look().pods] == []
    h.nodes[held].down = False
    again.rec.cluster.check()
    again.run()
    assert [p.node for p in again.pods()] == [held]


def test_volumes_are_listed_only_while_claims_may_exist(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("web.yaml", web(replicas=2))
    h.run()
    node = h.nodes["n1"]
    node.calls = 0
    h.rec.reconcile("test", fetch=False)
    assert node.calls == 2  # containers and networks: nothing claims a volume
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": "demo"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    h.push("claim.yaml", claim)
    h.run()
    node.calls = 0
    h.rec.reconcile("test", fetch=False)
    assert node.calls == 3  # and the volumes, now that a claim may have one


def test_a_statefulsets_failed_update_is_rolled_back_by_itself(tmp_path: Path) -> None:
    def kv(image: str) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "kv", "namespace": "demo",
                             "annotations": {"gitops.io/fail-fast": "true"}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "kv"}},
                         "template": {"metadata": {"labels": {"app": "kv"}},
                                      "spec": {"containers": [{"name": "kv", "image": image}]}}}}  # fmt: skip

    h = Harness(tmp_path)
    h.push("kv.yaml", kv("reg/web:v1"))
    h.run()
    assert h.rec.latest_rollout(("demo", "kv")).result == Rollout.COMPLETE  # type: ignore[union-attr]
    h.push("kv.yaml", kv("reg/web:v2"))
    node = h.nodes["n1"]
    for _ in range(20):  # v2 crashes as soon as it starts
        h.rec.reconcile("test")
        for pod in h.pods("kv"):
            for c in pod.app_containers():
                if c.image == "reg/web:v2" and c.state == "running":
                    node.crash(c.id, 127)
        h.clock.advance(1.0)
        latest = h.rec.latest_rollout(("demo", "kv"))
        if latest is not None and latest.is_rollback:
            break
    h.run()
    assert h.images("kv") == {"reg/web:v1"} and sorted(p.name for p in h.pods("kv")) == [
        "kv-0", "kv-1"]  # fmt: skip
    records = h.rec.history.rollouts("demo", "kv")
    assert [r.result for r in records[:2]] == [Rollout.COMPLETE, Rollout.FAILED]
    assert "NewPodFailed" in records[1].reason


def test_a_finished_job_is_not_run_again_by_a_new_reconciler_on_an_empty_state(
    tmp_path: Path,
) -> None:
    """Its end is remembered by the nodes: a restart, a re-clone or an empty state directory
    runs nothing again; the history has the run once."""
    migrate = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "demo"},
        "spec": {"ttlSecondsAfterFinished": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "m", "image": "reg/api:v1"}]}}},
    }  # fmt: skip
    h = Harness(tmp_path, nodes=("n1", "n2"))
    h.clock.now = time.time()  # the memory engine stamps containers with the real clock
    h.push("job.yaml", migrate)
    h.run()
    [pod] = h.pods("migrate")
    h.nodes[pod.node].crash(pod.containers[0].id, 0)
    outcome = h.run()
    [res] = [r for r in outcome.status.resources if r.kind == "Job"]
    assert (res.health, res.condition, res.reason) == ("Healthy", "Complete", "CompletionsReached")
    assert h.pods("migrate") == []  # the TTL of 0 removed it at once
    assert [r.result for r in h.rec.history.job_runs("demo", "migrate")] == ["Complete"]
    fresh = replace(h.settings, state_dir=tmp_path / "empty-state")
    source = GitSource(fresh.repo, fresh.state_dir / "source")  # a re-clone
    again = compose(fresh, source, list(h.nodes.values()), History(fresh.state_dir),
                    clock=h.clock, names=counter_suffix())  # fmt: skip
    outcome = again.reconcile("test")
    assert outcome.plan is not None and not outcome.plan.create
    [res] = [r for r in outcome.status.resources if r.kind == "Job"]
    assert res.condition == "Complete"
    assert [r.result for r in again.history.job_runs("demo", "migrate")] == ["Complete"]


def test_a_daemonsets_failed_update_is_rolled_back_by_itself(tmp_path: Path) -> None:
    """Health gating and automatic rollback come through the Deployments' seam: the new
    pod fails (fail-fast), one node at a time is touched, and the old template comes back."""

    def agent(image: str) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "demo",
                         "annotations": {"gitops.io/fail-fast": "true"}},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": image}]}}},
        }  # fmt: skip

    h = Harness(tmp_path, nodes=("n1", "n2", "n3"))
    h.push("agent.yaml", agent("reg/web:v1"))
    h.run()
    assert len(h.pods("agent")) == 3
    assert h.rec.latest_rollout(("demo", "agent")).result == Rollout.COMPLETE  # type: ignore[union-attr]
    h.push("agent.yaml", agent("reg/web:v2"))
    most_new = 0
    for _ in range(10):
        h.rec.reconcile("test")
        new = [p for p in h.pods("agent") if p.app_containers()[0].image == "reg/web:v2"]
        most_new = max(most_new, len(new))
        for pod in new:
            for c in pod.app_containers():
                if c.state == "running":
                    h.nodes[pod.node].crash(c.id, 1)
        h.clock.advance(1.0)
        latest = h.rec.latest_rollout(("demo", "agent"))
        if latest is not None and latest.is_rollback:
            break
    h.run()
    assert most_new == 1  # one node at a time
    assert h.images("agent") == {"reg/web:v1"} and len(h.pods("agent")) == 3
    records = h.rec.history.rollouts("demo", "agent")
    assert records[1].result == Rollout.FAILED and "NewPodFailed" in records[1].reason
