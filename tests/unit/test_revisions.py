"""Rollout records, progress deadlines and round-trip manifest edits, on plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.decide.workloads.rollout import (
    DEADLINE_EXCEEDED,
    NEW_POD_FAILED,
    Counts,
    ProgressClock,
    assess,
)
from gitops.manifests import edit
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Rollout
from gitops.state.history import History
from gitops.state.revisions import Questions

DONE = Counts(desired=3, current=3, updated=3, available=3)
HALF = Counts(desired=3, current=4, updated=1, available=3)


def rec(result: str = "Progressing", template: str = "h2") -> RolloutRecord:
    return RolloutRecord("demo", "web", "c2", template, started=0.0, result=Rollout(result))


def test_assess() -> None:
    assert assess(None, "h1", DONE, 0.0, 600, 1.0) == ("start", "")
    assert assess(rec(template="h1"), "h2", HALF, 0.0, 600, 1.0)[0] == "start"  # newer template
    assert assess(rec(), "h2", HALF, 0.0, 600, 599.0) == ("none", "")
    assert assess(rec(), "h2", HALF, 0.0, 600, 601.0) == ("fail", DEADLINE_EXCEEDED)
    assert assess(rec(), "h2", DONE, 0.0, 600, 601.0) == ("complete", "")
    assert assess(rec("Failed"), "h2", HALF, 0.0, 600, 9999.0)[0] == "none"  # failed: not again


def test_fail_fast_fails_at_once_on_a_broken_new_pod() -> None:
    broken = "pod web-x: container web exited (1)"
    assert assess(rec(), "h2", HALF, 0.0, 600, 1.0, broken) == ("fail", NEW_POD_FAILED)
    assert assess(rec(), "h2", DONE, 0.0, 600, 1.0, broken)[0] == "complete"  # done wins
    assert assess(rec("Failed"), "h2", HALF, 0.0, 600, 1.0, broken)[0] == "none"


def test_progress_clock_counts_from_the_last_progress() -> None:
    clock = ProgressClock()
    key = ("demo", "web")
    assert clock.update(key, "h2", Counts(3, 4, 1, 3), 10.0) == 10.0
    assert clock.update(key, "h2", Counts(3, 4, 1, 3), 50.0) == 10.0  # nothing moved
    assert clock.update(key, "h2", Counts(3, 4, 2, 3), 60.0) == 60.0  # one more updated
    assert clock.update(key, "h2", Counts(3, 4, 1, 2), 70.0) == 60.0  # going back is no progress
    assert clock.update(key, "h3", Counts(3, 4, 0, 3), 80.0) == 80.0  # a new template starts over


TEXT = """# web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 3  # three is plenty
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: reg/web:v2
          envFrom:
            - configMapRef:
                name: cfg
      volumes:
        - name: s
          secret:
            secretName: creds
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: demo
data:
  a: "1"
"""


def test_locate_and_references() -> None:
    files = {"web.yaml": TEXT.encode()}
    assert edit.locate(files, ("ConfigMap", "demo", "cfg")) == ("web.yaml", 1)
    assert edit.locate(files, ("ConfigMap", "other", "cfg")) is None
    doc = edit.document(TEXT, 0)
    assert edit.references(doc) == {("ConfigMap", "demo", "cfg"), ("Secret", "demo", "creds")}


def test_edits_keep_comments_and_layout() -> None:
    def pause(doc: object) -> None:
        doc["spec"]["paused"] = True  # type: ignore[index]

    new = edit.edit(TEXT, 0, pause)
    assert new.startswith("# web tier\n") and "replicas: 3  # three is plenty" in new
    assert "        - name: web\n          image: reg/web:v2" in new  # list indentation kept
    assert "paused: true" in new
    assert edit.documents(new)[1]["data"]["a"] == "1"
    old = edit.document(TEXT.replace("v2", "v1"), 0)
    restored = edit.put(TEXT, 0, old)
    assert "image: reg/web:v1" in restored and 'a: "1"' in restored


def test_auto_rollback_can_be_turned_off_by_annotation(tmp_path: Path) -> None:
    from gitops.decide.desired import build_desired
    from gitops.decide.status import ResourceStatus
    from gitops.manifests import parse_manifests
    from gitops.state.history import History
    from gitops.state.revisions import Revisions
    from tests.helpers import deployment, dump

    def state(image: str, commit: str, annotate: bool) -> Any:
        meta = {"annotations": {"gitops.io/auto-rollback": "false"}} if annotate else {}
        doc = deployment(image=image, progressDeadlineSeconds=5, metadata=meta)
        return build_desired(parse_manifests({"a.yaml": dump(doc)}), commit)

    def status(updated: int, available: int, current: int) -> tuple[ResourceStatus, ...]:
        reps = {
            "desired": 3,
            "current": current,
            "updated": updated,
            "ready": available,
            "available": available,
        }
        return (ResourceStatus("Deployment", "demo", "web", "Synced", "Healthy", replicas=reps),)

    for annotate, expect_pin in ((True, False), (False, True)):
        history = History(tmp_path / str(annotate))
        good, bad = state("reg/web:v1", "c1", annotate), state("reg/web:v2", "c2", annotate)
        by_commit = {"c1": good, "c2": bad}
        revs = Revisions(history, by_commit.__getitem__, lambda c: ("A", "s"))
        done = status(3, 3, 3)
        revs.track(good, done, 0.0, Questions(stuck=lambda d: ""))  # start
        revs.track(good, done, 1.0, Questions(stuck=lambda d: ""))  # complete
        stuck = status(1, 3, 4)
        revs.track(bad, stuck, 2.0, Questions(stuck=lambda d: ""))  # start v2
        started = revs.track(
            bad, stuck, 10.0, Questions(stuck=lambda d: "probe says 404")
        )  # 8 s without progress
        latest = history.latest_rollout("demo", "web")
        assert (
            latest is not None and latest.result == "Failed" and "probe says 404" in latest.reason
        )
        assert started is expect_pin and bool(revs.pins()) is expect_pin
        pinned = revs.apply_pins(bad).deployments[0]
        assert (
            pinned.template.template_hash == good.deployments[0].template.template_hash
        ) is expect_pin


def test_a_rollout_overtaken_once_all_its_pods_were_available_counts_as_complete(
    tmp_path: Path,
) -> None:
    """A commit pushed the moment v1's pods turned ready, before any pass recorded v1 Complete:
    v1 is still what a failed v2 rolls back to (an overtaken, unfinished rollout is not)."""
    from gitops.decide.desired import build_desired
    from gitops.decide.status import ResourceStatus
    from gitops.manifests import parse_manifests
    from gitops.state.history import History
    from gitops.state.revisions import Revisions
    from tests.helpers import deployment, dump

    def state(image: str, commit: str) -> Any:
        doc = deployment(image=image, progressDeadlineSeconds=5)
        return build_desired(parse_manifests({"a.yaml": dump(doc)}), commit)

    reps = {"desired": 3, "current": 3, "updated": 0, "ready": 3, "available": 3}
    stuck = (ResourceStatus("Deployment", "demo", "web", "Synced", "Progressing", replicas=reps),)
    for was_settled, result, back in ((True, "Complete", "c1"), (False, "Superseded", "")):
        history = History(tmp_path / result)
        good, bad = state("reg/web:v1", "c1"), state("reg/web:v2", "c2")
        revs = Revisions(history, {"c1": good, "c2": bad}.__getitem__, lambda c: ("A", "s"))
        v1 = good.deployments[0].template.template_hash
        revs.track(
            good, stuck, 0.0, Questions(stuck=lambda d: "")
        )  # v1 starts; no pass sees it done
        done: set[str] = {v1} if was_settled else set()
        revs.track(bad, stuck, 1.0, Questions(settled=lambda d, h: h in done))  # noqa: B023
        v1_record = history.rollouts("demo", "web")[1]
        assert (v1_record.commit, v1_record.result) == ("c1", result)
        revs.track(
            bad, stuck, 10.0, Questions(stuck=lambda d: "no /healthz")
        )  # v2 makes no progress
        failed = history.latest_rollout("demo", "web")
        assert failed is not None and failed.result == "Failed"
        assert failed.rolled_back_to == back


def test_settled_needs_every_replica_of_the_template_available() -> None:
    from gitops.decide.desired import build_desired
    from gitops.decide.health import PodReadiness
    from gitops.decide.workloads.rollout import settled
    from gitops.manifests import parse_manifests
    from gitops.model.labels import L_HASH
    from gitops.model.live import ContainerInfo, PodInfo
    from tests.helpers import deployment, dump

    dep = build_desired(
        parse_manifests({"a.yaml": dump(deployment(minReadySeconds=5))}), "c1"
    ).deployments[0]

    def pod(name: str, h: str) -> PodInfo:
        c = ContainerInfo("n", name, name, {L_HASH: h}, "running")
        return PodInfo("n", "demo", "web", name, h, "c1", (c,))

    pods = [pod("a", "h1"), pod("b", "h1"), pod("c", "h1"), pod("d", "h2")]
    ready = {p.name: PodReadiness(True, since=0.0) for p in pods}
    assert settled(dep, "h1", pods, ready, now=10.0)
    assert not settled(dep, "h1", pods, ready, now=4.0)  # not Ready for minReadySeconds yet
    assert not settled(dep, "h1", pods[:2], ready, now=10.0)  # 2 of 3 replicas
    assert not settled(dep, "h1", pods, {**ready, "b": PodReadiness(False)}, now=10.0)
    assert not settled(dep, "h2", pods, ready, now=10.0)


def test_facts_are_typed_and_an_unreadable_one_reads_as_empty(tmp_path: Path) -> None:
    from gitops.state.facts import Pin

    history = History(tmp_path)
    facts = history.facts
    assert facts.pins() == {} and facts.cordons() == {} and facts.evicted() == set()
    pin = Pin("h2", "c2", "c1", "ProgressDeadlineExceeded")
    facts.set_pins({("demo", "web"): pin})
    facts.set_cordons({"node-1": "draining"})
    facts.set_evicted({"web-b", "web-a"})
    facts.set_ready_containers(["b", "a"])
    facts.set_last_good("c1")
    again = History(tmp_path).facts  # read back as a restart reads them
    assert again.pins() == {("demo", "web"): pin} and again.cordons() == {"node-1": "draining"}
    assert again.evicted() == {"web-a", "web-b"} and again.ready_containers() == ["a", "b"]
    assert again.last_good() == "c1"
    history.put("pins", "{not json")
    history.put("cordons", "[1, 2]")
    assert again.pins() == {} and again.cordons() == {}
