"""CronJobs on in-memory nodes, through the real planner, with schedule times as the
reconciler computes them: a run per schedule, Forbid waits for the active run, Replace stops
it, Allow runs beside it, suspend makes none, the history limits, a manual run; and the
schedules themselves (Kubernetes' syntax read by apscheduler's cron trigger)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gitops.act.apply import apply_plan
from gitops.act.observe import observe
from gitops.decide.actions import Why, counter_suffix
from gitops.decide.batch import CronTimes
from gitops.decide.desired import DesiredState, build_desired
from gitops.decide.plan import Plan, make_plan
from gitops.decide.status import resource_statuses
from gitops.decide.workloads import cronjob
from gitops.errors import ManifestError
from gitops.manifests import Policy, parse_manifests
from gitops.model.live import PodInfo
from gitops.nodes.memory import MemoryNode
from gitops.source import cron
from tests.helpers import dump

IMAGES = {"reg/task:v1", "reg/task:v2"}


def cron_doc(
    schedule: str = "* * * * *", image: str = "reg/task:v1", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "report", "namespace": "demo"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "r", "image": image}]}}}},
            **spec,
        },
    }  # fmt: skip


def desired(*docs: dict[str, Any]) -> DesiredState:
    policy = Policy(schedule=cron.problems)
    return build_desired(parse_manifests({"c.yaml": dump(*docs)}, policy=policy), "c1")


class Nodes:
    def __init__(self) -> None:
        self.engine = MemoryNode("n1", registry=IMAGES)
        self.now = time.time()

    def run(self, state: DesiredState, times: CronTimes) -> Plan:
        live = observe([self.engine])
        plan = make_plan(state, live, ["n1"], counter_suffix(), None, self.now,
                         cron={("demo", "report"): times})  # fmt: skip
        apply_plan(plan, {"n1": self.engine}, state, now=self.now)
        return plan

    def pods(self) -> list[PodInfo]:
        return list(observe([self.engine]).pods)

    def active(self) -> set[str]:
        return {cronjob.run_of(p) for p in self.pods() if not p.finished}

    def finish(self, run: str, code: int = 0) -> None:
        for p in self.pods():
            if cronjob.run_of(p) == run:
                c = p.containers[0]
                self.engine.containers[c.id] = replace(
                    c, state="exited", status=f"Exited ({code}) 1 second ago", finished=self.now
                )


T0 = 29_000_000 * 60.0  # a minute boundary


def test_each_schedule_makes_one_run_named_after_its_minute() -> None:
    n = Nodes()
    state = desired(cron_doc())
    plan = n.run(state, CronTimes(due=T0, next=T0 + 60))
    [c] = plan.create
    assert c.pod.startswith("report-29000000-")
    assert c.template.labels and ("job-name", "report-29000000") in c.template.labels
    assert plan.wake_at == T0 + 60
    assert n.run(state, CronTimes(due=T0, next=T0 + 60)).empty  # the same schedule: no more
    n.finish("report-29000000")
    plan = n.run(state, CronTimes(due=T0, next=T0 + 60))
    assert [r.job for r in plan.records_write] == ["report-29000000"]


def test_forbid_waits_for_the_active_run_replace_stops_it_allow_runs_beside() -> None:
    n = Nodes()
    forbid = desired(cron_doc(concurrencyPolicy="Forbid"))
    n.run(forbid, CronTimes(due=T0))
    assert not n.run(forbid, CronTimes(due=T0 + 60)).create  # the first still runs
    n.finish("report-29000000")
    n.run(forbid, CronTimes(due=T0 + 60))  # its end recorded, then the next one
    assert n.active() == {"report-29000001"}
    replace_ = desired(cron_doc(concurrencyPolicy="Replace"))
    plan = n.run(replace_, CronTimes(due=T0 + 120))
    assert [r.why for r in plan.remove] == [Why.JOB_REPLACED]
    assert n.active() == {"report-29000002"}
    allow = desired(cron_doc())
    n.run(allow, CronTimes(due=T0 + 180))
    assert n.active() == {"report-29000002", "report-29000003"}


def test_a_suspended_cronjob_makes_no_run_and_a_manual_run_is_made_once() -> None:
    n = Nodes()
    state = desired(cron_doc(suspend=True))
    assert not n.run(state, CronTimes(due=T0)).create
    plan = n.run(state, CronTimes(due=T0, manual=("report-manual-abcde",)))
    assert [c.pod.rsplit("-", 1)[0] for c in plan.create] == ["report-manual-abcde"]
    assert not n.run(state, CronTimes(due=T0, manual=("report-manual-abcde",))).create


def test_history_limits_keep_the_last_runs_of_each_result() -> None:
    n = Nodes()
    state = desired(cron_doc(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1))
    for i, code in enumerate([0, 1, 0, 1, 0]):
        n.now += 60
        due = T0 + 60 * i
        n.run(state, CronTimes(due=due))
        n.finish(cronjob.run_name("report", due), code)
        n.run(state, CronTimes(due=due))
    n.run(state, CronTimes())  # the last end is on the nodes: the oldest goes
    kept = sorted({r.job for r in n.engine.records.values()})
    assert kept == ["report-29000002", "report-29000003", "report-29000004"]
    assert sorted({cronjob.run_of(p) for p in n.pods()}) == kept
    live = observe([n.engine])
    [st] = [r for r in resource_statuses(state, live, None, None, now=n.now,
            cron={("demo", "report"): CronTimes(next=T0 + 600)}) if r.kind == "CronJob"]  # fmt: skip
    assert (st.health, st.condition) == ("Healthy", "Complete")
    assert st.replicas is not None and st.replicas["lastScheduleTime"] == int(T0 + 240)
    assert st.replicas["nextScheduleTime"] == int(T0 + 600)


def test_a_failed_last_run_makes_the_cronjob_degraded() -> None:
    n = Nodes()
    state = desired(cron_doc())
    n.run(state, CronTimes(due=T0))
    n.finish("report-29000000", 2)
    n.run(state, CronTimes(due=T0))
    [st] = [r for r in resource_statuses(state, observe([n.engine]), None, None)
            if r.kind == "CronJob"]  # fmt: skip
    assert (st.health, st.condition, st.reason) == ("Degraded", "Failed", "BackoffLimitExceeded")


def utc(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("schedule", "zone", "after", "expected"),
    [
        ("*/15 * * * *", "UTC", utc(2026, 12, 2, 10, 1), utc(2026, 12, 2, 10, 15)),
        ("@hourly", "UTC", utc(2026, 12, 2, 10, 1), utc(2026, 12, 2, 11, 0)),
        ("@daily", "Europe/Berlin", utc(2026, 12, 2, 10, 0), utc(2026, 12, 2, 23, 0)),
        ("0 9 * * 1-5", "UTC", utc(2026, 12, 4, 10, 0), utc(2026, 12, 7, 9, 0)),  # Fri -> Mon
        ("0 0 * * 0", "UTC", utc(2026, 12, 2, 0, 0), utc(2026, 12, 6, 0, 0)),  # 0 is Sunday
        ("0 0 * * 7", "UTC", utc(2026, 12, 2, 0, 0), utc(2026, 12, 6, 0, 0)),  # so is 7
        ("0 0 * * SAT", "UTC", utc(2026, 12, 2, 0, 0), utc(2026, 12, 5, 0, 0)),
        ("0 0 13 * 5", "UTC", utc(2026, 12, 2, 0, 0), utc(2026, 12, 4, 0, 0)),  # 13th OR Friday
        # 02:30 does not exist the night clocks go forward: it runs at 03:30 (EDT) instead.
        ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 0, 0), utc(2026, 3, 8, 7, 30)),
    ],
)
def test_schedules_fire_as_cron_says(
    schedule: str, zone: str, after: float, expected: float
) -> None:
    assert cron.Schedule(schedule, zone).next_after(after) == expected


def test_the_latest_schedule_of_a_long_outage_is_found_without_walking_it() -> None:
    every = cron.Schedule("* * * * *", "UTC")
    start = utc(2026, 1, 1, 0, 0)
    assert every.latest(start, start + 86400 * 30 + 30) == start + 86400 * 30
    assert every.latest(start, start + 59) is None
    nightly = cron.Schedule("0 3 * * *", "UTC")
    assert nightly.latest(start, start + 86400 * 3 + 4 * 3600) == start + 86400 * 3 + 3 * 3600


@pytest.mark.parametrize(
    ("schedule", "zone", "field", "error"),
    [
        ("61 * * * *", None, "spec.schedule", "higher than the maximum value (59)"),
        ("* * *", None, "spec.schedule", "3 fields; a schedule has 5"),
        ("@every 1h", None, "spec.schedule", "unknown macro '@every 1h'"),
        ("TZ=UTC 0 * * * *", None, "spec.schedule", "use spec.timeZone"),
        ("* * * * 8", None, "spec.schedule", "day of week '8'"),
        ("0 0 30 2 *", None, "spec.schedule", "never fires"),
        ("* * * * *", "Mars/Olympus", "spec.timeZone", "unknown time zone 'Mars/Olympus'"),
        ("* * * * *", "../../etc/passwd", "spec.timeZone", "unknown time zone"),
    ],
)
def test_a_schedule_kubernetes_refuses_is_refused_with_its_field(
    schedule: str, zone: str | None, field: str, error: str
) -> None:
    doc = cron_doc(schedule, **({"timeZone": zone} if zone else {}))
    with pytest.raises(ManifestError) as info:
        desired(doc)
    text = str(info.value)
    assert f"c.yaml:0: CronJob/report: {field}" in text and error in text, text


def test_a_bad_time_zone_does_not_hide_a_bad_schedule() -> None:
    with pytest.raises(ManifestError) as info:
        desired(cron_doc("61 * * * *", timeZone="Mars/Olympus"))
    text = str(info.value)
    assert "spec.timeZone: unknown time zone 'Mars/Olympus'" in text
    assert "spec.schedule: Error validating expression '61'" in text


def test_a_cronjobs_job_template_fields_are_named_with_their_path() -> None:
    doc = cron_doc()
    doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ManifestError) as info:
        desired(doc)
    assert "spec.jobTemplate.spec.template.spec.restartPolicy" in str(info.value)
