"""Jobs on in-memory nodes, through the real scheduler and planner, on an injected clock:
completions at most ``parallelism`` at a time, the failed pods' back-off growing to
``backoffLimit``, podFailurePolicy, Indexed completions, the deadline, OnFailure restarts in
place, suspend, the TTL, and a Job's end remembered by the nodes (not run again)."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import RestartPolicy, Why, counter_suffix
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.plan import Plan, make_plan
from gitops.decide.status import resource_statuses
from gitops.decide.workloads import job
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.model.live import PodInfo
from gitops.nodes.memory import MemoryNode
from tests.helpers import dump

IMAGES = {"reg/task:v1", "reg/task:v2"}


def job_doc(image: str = "reg/task:v1", policy: str = "Never", **spec: Any) -> dict[str, Any]:
    pod = spec.pop("pod", {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "demo", **spec.pop("meta", {})},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "task", "image": image}],
                    "restartPolicy": policy,
                    **pod,
                },
            },
            **spec,
        },
    }


def desired(*docs: dict[str, Any]) -> DesiredState:
    return build_desired(parse_manifests({"j.yaml": dump(*docs)}), "c1")


class Cluster:
    """Two memory nodes and a clock the test moves."""

    def __init__(self, *names: str, backoff: tuple[float, float] = (10.0, 360.0)) -> None:
        self.engines = {n: MemoryNode(n, registry=IMAGES) for n in names or ("n1", "n2")}
        self.now = time.time()  # the memory engine stamps what it creates with the real clock
        self.backoff = backoff
        self.restarts: dict[str, int] = {}

    def plan(self, state: DesiredState) -> Plan:
        live = observe(list(self.engines.values()))
        policy = RestartPolicy(counts=self.restarts, pod_backoff=self.backoff)
        return make_plan(state, live, list(self.engines), counter_suffix(), None, self.now, policy)

    def run(self, state: DesiredState) -> Plan:
        plan = self.plan(state)
        apply_plan(plan, self.engines, state, now=self.now)
        for r in plan.restart:
            for cid in r.restarts:
                self.restarts[cid] = self.restarts.get(cid, 0) + 1
        return plan

    def pods(self) -> list[PodInfo]:
        return list(observe(list(self.engines.values())).pods)

    def running(self) -> list[PodInfo]:
        return [p for p in self.pods() if p.phase == "Running"]

    def finish(self, pod: PodInfo, code: int = 0, container: str = "task") -> None:
        """The pod's container exits with ``code`` now (on the test's clock)."""
        engine = self.engines[pod.node]
        for c in pod.containers:
            if c.meta.container == container:
                engine.containers[c.id] = replace(
                    c, state="exited", status=f"Exited ({code}) 1 second ago", finished=self.now
                )

    def status(self, state: DesiredState) -> job.JobStatus:
        live = observe(list(self.engines.values()))
        dep = state.deployment("demo", "migrate")
        assert dep is not None
        current = [p for p in live.of(*dep.key) if p.template_hash == dep.template.template_hash]
        record = live.record_of("demo", "migrate", dep.template.template_hash)
        return job.progress(dep, current, record, self.now, lambda c: self.restarts.get(c, 0))


def test_completions_run_parallelism_at_a_time_until_complete() -> None:
    c = Cluster()
    state = desired(job_doc(completions=5, parallelism=2))
    most = 0
    for _ in range(10):
        c.run(state)
        running = c.running()
        most = max(most, len(running))
        for p in running:
            c.finish(p, 0)
        c.now += 1
    st = c.status(state)
    assert most == 2
    assert (st.condition, st.reason, st.succeeded, st.failed, st.active) == (
        job.COMPLETE, job.COMPLETIONS_REACHED, 5, 0, 0,
    )  # fmt: skip
    assert len(c.pods()) == 5  # kept after the end: their logs can be read
    # Remembered on every node, so nothing runs again.
    assert all(len(e.records) == 1 for e in c.engines.values())
    assert c.run(state).empty
    res = resource_statuses(state, observe(list(c.engines.values())), None, None, now=c.now)
    (r,) = [r for r in res if r.kind == "Job"]
    assert (r.health, r.sync) == ("Healthy", "Synced")
    assert r.replicas is not None and r.replicas["succeeded"] == 5


def test_failed_pods_are_replaced_after_a_growing_back_off_up_to_the_backoff_limit() -> None:
    c = Cluster()
    state = desired(job_doc(backoffLimit=2))
    created: list[float] = []
    for _ in range(200):
        plan = c.run(state)
        if plan.create:
            created.append(c.now)
        for p in c.running():
            c.finish(p, 1)
        if c.status(state).done:
            break
        c.now += 1
    st = c.status(state)
    assert (st.condition, st.reason, st.failed) == (job.FAILED, job.BACKOFF_LIMIT_EXCEEDED, 3)
    # 3 pods (backoffLimit + 1), each after a longer wait: 10 s, then 20 s.
    gaps = [b - a for a, b in itertools.pairwise(created)]
    assert len(created) == 3 and gaps[1] > gaps[0] >= 10
    assert len(c.pods()) == 3 and not c.running()  # the failed pods stay, for their logs


def test_the_plan_wakes_when_the_back_off_ends() -> None:
    c = Cluster()
    state = desired(job_doc(backoffLimit=3))
    c.run(state)
    (pod,) = c.running()
    c.finish(pod, 1)
    c.now += 2
    plan = c.run(state)
    assert not plan.create and plan.wake_at == pytest.approx(c.now - 2 + 10)


def test_pod_failure_policy_fails_the_job_on_an_exit_code_and_ignores_another() -> None:
    rules = [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [137]}},
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "task", "operator": "In", "values": [42]},
        },
    ]
    c = Cluster(backoff=(0.001, 0.001))
    state = desired(job_doc(backoffLimit=0, podFailurePolicy={"rules": rules}))
    c.run(state)
    (pod,) = c.running()
    c.finish(pod, 137)  # not counted: with backoffLimit 0 the Job goes on
    c.now += 1
    c.run(state)
    assert c.status(state).condition == "" and len(c.running()) == 1
    (pod,) = c.running()
    c.finish(pod, 42)
    c.now += 1
    c.run(state)
    st = c.status(state)
    assert (st.condition, st.reason) == (job.FAILED, job.POD_FAILURE_POLICY)
    assert "container task exited with 42" in st.message and "FailJob rule 1" in st.message


def test_indexed_completions_give_each_pod_its_index_and_replace_a_failed_index() -> None:
    c = Cluster(backoff=(0.001, 0.001))
    state = desired(job_doc(completions=3, parallelism=3, completionMode="Indexed"))
    plan = c.run(state)
    names = sorted(x.pod for x in plan.create)
    assert [n.rsplit("-", 1)[0] for n in names] == ["migrate-0", "migrate-1", "migrate-2"]
    envs = {x.pod: dict(e.split("=", 1) for e in [f"{v.name}={v.value}" for v in
            x.template.containers[0].env]) for x in plan.create}  # fmt: skip
    assert sorted(e["JOB_COMPLETION_INDEX"] for e in envs.values()) == ["0", "1", "2"]
    by_index = {p.labels()["batch.kubernetes.io/job-completion-index"]: p for p in c.running()}
    c.finish(by_index["0"], 0)
    c.finish(by_index["1"], 1)
    c.finish(by_index["2"], 0)
    c.now += 1
    plan = c.run(state)
    (again,) = plan.create
    assert again.pod.startswith("migrate-1-")  # the failed index runs again
    assert c.status(state).completed_indexes == "0,2"
    (pod,) = c.running()
    c.finish(pod, 0)
    c.now += 1
    c.run(state)
    st = c.status(state)
    assert (st.condition, st.succeeded, st.failed, st.completed_indexes) == (
        job.COMPLETE, 3, 1, "0-2",
    )  # fmt: skip


def test_active_deadline_fails_the_job_and_stops_its_pods() -> None:
    c = Cluster()
    state = desired(job_doc(activeDeadlineSeconds=30, parallelism=2, completions=4))
    c.run(state)
    assert len(c.running()) == 2
    c.now += 31
    plan = c.run(state)
    assert {r.why for r in plan.remove} == {f"{Why.JOB_ENDED}: Failed"}
    st = c.status(state)
    assert (st.condition, st.reason) == (job.FAILED, job.DEADLINE_EXCEEDED)
    assert not c.pods()


def test_on_failure_restarts_the_container_in_place_and_counts_it() -> None:
    c = Cluster()
    state = desired(job_doc(policy="OnFailure", backoffLimit=1))
    c.run(state)
    (pod,) = c.running()
    c.finish(pod, 3)
    plan = c.run(state)
    assert [r.pod.name for r in plan.restart] == [pod.name] and not plan.create
    c.finish(c.running()[0], 3)
    c.now += 1
    c.run(state)
    st = c.status(state)
    assert (st.condition, st.reason) == (job.FAILED, job.BACKOFF_LIMIT_EXCEEDED)


def test_a_container_that_exited_zero_never_starts_again() -> None:
    c = Cluster()
    state = desired(job_doc(policy="OnFailure"))
    c.run(state)
    (pod,) = c.running()
    c.finish(pod, 0)
    plan = c.run(state)
    assert not plan.restart and not plan.create
    assert c.status(state).condition == job.COMPLETE


def test_a_suspended_job_runs_no_pod() -> None:
    c = Cluster()
    c.run(desired(job_doc(completions=2)))
    assert len(c.running()) == 1
    state = desired(job_doc(completions=2, suspend=True))
    c.run(state)
    assert not c.running() and c.status(state).condition == job.SUSPENDED


def test_finished_pods_go_after_the_ttl_and_the_end_is_still_remembered() -> None:
    c = Cluster()
    state = desired(job_doc(ttlSecondsAfterFinished=60))
    c.run(state)
    c.finish(c.running()[0], 0)
    c.now += 1
    plan = c.run(state)
    assert plan.records_write and plan.wake_at == pytest.approx(c.now - 1 + 60)
    c.now += 60
    plan = c.run(state)
    assert [r.why for r in plan.remove] == [Why.JOB_TTL]
    assert not c.pods()
    # No pod left, the nodes remember: a restart, a re-clone or an empty state runs nothing.
    assert c.run(state).empty
    assert c.status(state).condition == job.COMPLETE


def test_a_changed_template_is_a_new_job_and_a_deleted_one_is_forgotten() -> None:
    c = Cluster()
    c.run(desired(job_doc()))
    c.finish(c.running()[0], 0)
    c.run(desired(job_doc()))
    v2 = desired(job_doc("reg/task:v2"))
    plan = c.run(v2)
    assert len(plan.create) == 1 and len(plan.records_remove) == 2  # one record a node
    assert {r.why for r in plan.remove} == {Why.OUTDATED}
    assert not any(e.records for e in c.engines.values())
    c.finish(c.running()[0], 0)
    c.run(v2)
    assert all(len(e.records) == 1 for e in c.engines.values())
    gone = desired({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    plan = c.run(gone)
    assert len(plan.records_remove) == 2 and not c.pods()


def test_a_node_that_joins_learns_the_record() -> None:
    c = Cluster("n1")
    state = desired(job_doc())
    c.run(state)
    c.finish(c.running()[0], 0)
    c.run(state)
    c.engines["n2"] = MemoryNode("n2", registry=IMAGES)
    plan = c.run(state)
    assert [r.node for r in plan.records_write] == ["n2"]


def test_finished_pods_hold_no_resources_of_their_node() -> None:
    c = Cluster("n1")
    big = {"containers": [{"name": "task", "image": "reg/task:v1",
                           "resources": {"requests": {"cpu": "3"}}}]}  # fmt: skip
    state = desired(job_doc(completions=3, pod=big))
    for _ in range(3):
        c.run(state)
        (pod,) = c.running()
        c.finish(pod, 0)
        c.now += 1
    c.run(state)
    assert c.status(state).succeeded == 3


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (job_doc(policy="Always"), "spec.template.spec.restartPolicy: unsupported value 'Always'"),
        (job_doc(completionMode="Indexed"), "spec.completions: required when completionMode"),
        (
            job_doc(policy="OnFailure", podFailurePolicy={"rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]}),
            "spec.podFailurePolicy: only allowed when restartPolicy is Never",
        ),
        (
            job_doc(podFailurePolicy={"rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0, 1]}}]}),
            "onExitCodes.values: may not contain 0 when the operator is In",
        ),
        (
            job_doc(podFailurePolicy={"rules": [{"action": "FailJob", "onExitCodes": {
                "containerName": "nope", "operator": "In", "values": [1]}}]}),
            "containerName: 'nope' is not a container of the template",
        ),
    ],
)  # fmt: skip
def test_what_the_api_server_refuses_in_a_job_is_refused_with_its_field(
    doc: dict[str, Any], error: str
) -> None:
    with pytest.raises(ManifestError) as info:
        desired(doc)
    assert error in str(info.value), str(info.value)
    assert "j.yaml:0: Job/migrate" in str(info.value)


def test_a_deployment_may_only_restart_always() -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "w", "image": "x"}], "restartPolicy": "Never"},
            },
        },
    }
    with pytest.raises(ManifestError, match="restartPolicy: unsupported value 'Never'"):
        desired(dep)


def test_argo_cd_hook_annotations_are_read_as_gitops_own() -> None:
    meta = {"annotations": {"argocd.argoproj.io/hook": "PreSync",
                            "argocd.argoproj.io/hook-delete-policy": "HookSucceeded,HookFailed"}}  # fmt: skip
    state = desired(job_doc(meta=meta))
    dep = state.deployment("demo", "migrate")
    assert dep is not None and dep.batch is not None
    assert (dep.batch.hook, dep.batch.hook_delete) == ("PreSync", ("HookSucceeded", "HookFailed"))
