"""CronJobs on the harness (the real Reconciler, in-memory nodes, a real git repository) on
an injected clock: a run per schedule, missed schedules while the reconciler was stopped make
one catch-up run (never a storm, also for a new reconciler on an empty state), Forbid makes no
run beside an active one, startingDeadlineSeconds drops a late one, and a run asked for by
hand."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from gitops.decide.actions import counter_suffix
from gitops.decide.workloads import cronjob
from gitops.runner import compose
from gitops.source.git import GitSource
from gitops.state.history import History
from tests.harness.harness import Harness

MINUTE = 60.0


def report(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "report", "namespace": "demo"},
        "spec": {"schedule": "* * * * *", "timeZone": "UTC", **spec, "jobTemplate": {"spec": {
            "template": {"spec": {"restartPolicy": "Never",
                                  "containers": [{"name": "r", "image": "reg/api:v1"}]}}}}},
    }  # fmt: skip


def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    # A minute boundary a day ahead, plus 5 s: schedules are minutes of this clock.
    h.clock.now = (time.time() // MINUTE + 24 * 60) * MINUTE + 5
    return h


def runs(h: Harness) -> list[str]:
    return sorted({cronjob.run_of(p) for p in h.pods("report")})


def finish_all(h: Harness) -> None:
    for p in h.pods("report"):
        if p.running:
            h.nodes[p.node].crash(p.containers[0].id, 0)


def test_missed_schedules_make_one_catch_up_run_even_for_a_new_reconciler(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.push("cron.yaml", report())
    h.rec.reconcile("test")
    assert runs(h) == []  # first seen now: its first schedule is the next minute
    h.clock.advance(MINUTE)
    h.rec.reconcile("test")
    first = cronjob.run_name("report", h.clock.now - 5)
    assert runs(h) == [first]
    finish_all(h)
    h.rec.reconcile("test")
    # The reconciler is stopped over three schedules: one catch-up run, for the latest.
    h.clock.advance(3 * MINUTE)
    h.rec.reconcile("test")
    h.rec.reconcile("test")
    latest = cronjob.run_name("report", h.clock.now - 5)
    assert runs(h) == [first, latest]
    finish_all(h)
    h.rec.reconcile("test")
    # A new reconciler with an empty state directory, two schedules later: one run again.
    h.clock.advance(2 * MINUTE)
    fresh = replace(h.settings, state_dir=tmp_path / "empty")
    again = compose(fresh, GitSource(fresh.repo, fresh.state_dir / "source"),
                    list(h.nodes.values()), History(fresh.state_dir), clock=h.clock,
                    names=counter_suffix())  # fmt: skip
    again.reconcile("test")
    again.reconcile("test")
    assert len(runs(h)) == 3 and runs(h)[-1] == cronjob.run_name("report", h.clock.now - 5)
    [st] = [r for r in again.status.resources if r.kind == "CronJob"]
    assert st.replicas is not None and st.replicas["active"] == 1
    assert st.replicas["nextScheduleTime"] == int(h.clock.now - 5 + MINUTE)


def test_forbid_makes_no_run_beside_an_active_one_and_a_late_one_is_dropped(
    tmp_path: Path,
) -> None:
    h = harness(tmp_path)
    h.push("cron.yaml", report(concurrencyPolicy="Forbid", startingDeadlineSeconds=20))
    h.rec.reconcile("test")
    h.clock.advance(MINUTE)
    h.rec.reconcile("test")
    assert len(runs(h)) == 1
    h.clock.advance(MINUTE)  # the next schedule, while the first run is active
    h.rec.reconcile("test")
    assert len(runs(h)) == 1
    h.clock.advance(30)  # it ends 35 s after that schedule: past its deadline of 20 s
    finish_all(h)
    h.rec.reconcile("test")
    h.rec.reconcile("test")
    assert len(runs(h)) == 1
    h.clock.advance(30)  # the schedule after: made
    h.rec.reconcile("test")
    assert len(runs(h)) == 2


def test_a_run_asked_for_by_hand_is_made_once_and_counted(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.push("cron.yaml", report(suspend=True))
    h.rec.reconcile("test")
    name = h.rec.run_cronjob("demo", "report")
    assert name is not None and name.startswith("report-manual-")
    assert h.rec.run_cronjob("demo", "nope") is None
    h.rec.reconcile("test")
    h.rec.reconcile("test")
    assert runs(h) == [name]
    finish_all(h)
    h.rec.reconcile("test")
    [st] = [r for r in h.rec.status.resources if r.kind == "CronJob"]
    assert (st.health, st.condition) == ("Suspended", "Complete")
