"""The deploy-and-wait verdict on plain data: a status, rollout records, a commit graph."""

from __future__ import annotations

from gitops.decide import delivery as d
from gitops.decide.status import ResourceStatus, SyncStatus
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Result, Rollout

# A linear history: c1 <- c2 <- c3
HISTORY = ["c1" * 20, "c2" * 20, "c3" * 20]
C1, C2, C3 = HISTORY


def contains(newer: str, older: str) -> bool:
    if newer not in HISTORY or older not in HISTORY:
        return False
    return HISTORY.index(older) <= HISTORY.index(newer)


def dep(health: str = "Healthy", sync: str = "Synced", message: str = "") -> ResourceStatus:
    reps = {"desired": 2, "current": 2, "updated": 2 if health == "Healthy" else 1, "ready": 2}
    return ResourceStatus("Deployment", "shop", "web", sync, health, message, replicas=reps)


def status(
    revision: str, applied: str, *resources: ResourceStatus, result: str = "Succeeded"
) -> SyncStatus:
    return SyncStatus(revision, applied, Result(result), resources=resources)


def record(result: Rollout, commit: str, reason: str = "", back: str = "") -> RolloutRecord:
    return RolloutRecord(
        "shop", "web", commit, "h", 0.0, result, 1, reason=reason, rolled_back_to=back
    )


def judge(st: SyncStatus, rec: RolloutRecord | None = None, revision: str = C2) -> d.Delivery:
    return d.judge(revision, st, {("shop", "web"): rec}, contains)


def test_waits_until_the_commit_is_fetched_and_applied() -> None:
    v = judge(status(C1, C1, dep()))
    assert v.state == d.WAITING and "has not fetched" in v.message
    assert judge(status("", "")).state == d.WAITING


def test_healthy_and_synced_at_the_commit_or_a_later_one_is_delivered() -> None:
    assert judge(status(C2, C2, dep()), record(Rollout.COMPLETE, C2)).state == d.SUCCEEDED
    later = judge(status(C3, C3, dep()), record(Rollout.COMPLETE, C3))
    assert later.state == d.SUCCEEDED and later.applied == C3


def test_a_rollout_in_progress_is_waited_for_with_its_progress() -> None:
    v = judge(status(C2, C2, dep("Progressing", "OutOfSync")), record(Rollout.PROGRESSING, C2))
    assert v.state == d.WAITING and "shop/web Progressing: 1/2 updated, 2/2 ready" in v.message
    # all pods ready but the record not yet closed: still waiting for the recorded fact
    assert judge(status(C2, C2, dep()), record(Rollout.PROGRESSING, C2)).state == d.WAITING


def test_a_rejected_commit_fails_with_the_validation_errors() -> None:
    st = SyncStatus(
        C2, C1, Result.FAILED, "ValidationFailed", "commit rejected",
        ("web.yaml: document 1 (Deployment shop/web): spec.replicas: must be >= 0",),
        resources=(dep(),),
    )  # fmt: skip
    v = judge(st)
    assert v.state == d.FAILED_DELIVERY
    assert "ValidationFailed" in v.message and "spec.replicas" in v.message


def test_a_rolled_back_deployment_fails_with_the_reason() -> None:
    message = "rolled back: commit c2c2 failed (Readiness probe failed); running commit c1c1"
    v = judge(
        status(C2, C2, dep("Degraded", message=message)),
        record(Rollout.COMPLETE, C1, "rollback of"),
    )
    assert v.state == d.FAILED_DELIVERY and "Readiness probe failed" in v.message
    failed = record(Rollout.FAILED, C2, "ProgressDeadlineExceeded: no progress for 10s", "")
    v = judge(status(C2, C2, dep("Degraded")), failed)
    assert v.state == d.FAILED_DELIVERY and "ProgressDeadlineExceeded" in v.message
    assert d.HTTP_STATUS[v.state] == 409


def test_to_dict_names_each_deployment() -> None:
    v = judge(status(C2, C2, dep()), record(Rollout.COMPLETE, C2)).to_dict()
    assert v["state"] == "Succeeded" and v["deployments"][0]["name"] == "web"
    assert v["deployments"][0]["rollout"] == Rollout.COMPLETE


def test_a_commit_the_fetched_head_does_not_hold_is_not_on_the_branch() -> None:
    unknown = "ff" * 20
    st = status(C3, C3, dep())
    assert judge(st, revision=unknown).state == d.WAITING  # git not read since the question
    v = d.judge(unknown, st, {}, contains, fetched=True, branch="main")
    assert v.state == d.NOT_FOUND and "not on branch main" in v.message
    assert d.HTTP_STATUS[v.state] == 404
    down = SyncStatus(C3, C3, Result.FAILED, "SourceUnavailable", "cannot fetch")
    assert d.judge(unknown, down, {}, contains, fetched=True).state == d.WAITING


def test_a_revert_after_an_automatic_rollback_is_judged_on_its_own() -> None:
    """c2 failed and was rolled back to c1; c3 reverts c2. The newest record is the finished
    rollback, but c3 asks for c1's template itself: no pin, healthy, delivered."""
    rollback = record(Rollout.COMPLETE, C1, "rollback of c2c2c2c2c2c2 to c1c1c1c1c1c1")
    assert judge(status(C3, C3, dep()), rollback, revision=C3).state == d.SUCCEEDED
    # while the pin holds (c2 is still the head), c2 has failed
    pinned = dep("Degraded", message="rolled back: commit c2c2 failed (x); running commit c1c1")
    assert judge(status(C2, C2, pinned), rollback).state == d.FAILED_DELIVERY


def test_one_deployment_is_judged_alone() -> None:
    other = ResourceStatus("Deployment", "shop", "api", "OutOfSync", "Progressing", replicas={})
    st = status(C2, C2, dep(), other)
    assert judge(st, record(Rollout.COMPLETE, C2)).state == d.WAITING
    alone = d.judge(
        C2, st, {("shop", "web"): record(Rollout.COMPLETE, C2)}, contains, only=("shop", "web")
    )
    assert alone.state == d.SUCCEEDED
