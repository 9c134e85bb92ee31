"""The CronJob planner: a Job made at each time its schedule names. Pure.

As Kubernetes' CronJob controller (``pkg/controller/cronjob/utils.go``): a pass makes at most
one run, for the latest schedule time since the last run (``CronTimes.due``, computed by the
reconciler from the schedule: the only place that reads cron), and only while it is within
``startingDeadlineSeconds``. So schedules missed while gitops was down give one catch-up
run, never a storm. ``concurrencyPolicy`` Forbid makes no run while one is active (the
schedule waits), Replace stops the active ones first, Allow runs them side by side;
``suspend`` makes none. Each run is a Job named NAME-<minutes since the epoch> (or a manual
NAME-manual-xxxxx, ``gitops create job --from=cronjob/NAME``), planned by the Job planner:
its pods carry its name in ``job-name``, its end is remembered on the nodes, and only the last
``successfulJobsHistoryLimit`` and ``failedJobsHistoryLimit`` ended runs are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gitops.decide.actions import Remove, Why
from gitops.decide.batch import JOB_NAME_KEYS, Cron, CronTimes, job_labels
from gitops.decide.desired import DesiredDeployment
from gitops.decide.workloads import job
from gitops.decide.workloads.base import Context, Part
from gitops.model.labels import JobRecord
from gitops.model.live import PodInfo

MANUAL = "manual"


def _cron(cj: DesiredDeployment) -> Cron:
    assert cj.cron is not None, "the CronJob planner plans CronJobs"
    return cj.cron


def run_name(cj: str, scheduled: float) -> str:
    """Kubernetes' name of a scheduled run: NAME-<minutes since the epoch>."""
    return f"{cj}-{int(scheduled // 60)}"


def scheduled_of(cj: str, run: str) -> float | None:
    """When a run was scheduled (None: a manual run, or not one of ``cj``'s)."""
    tail = run.removeprefix(f"{cj}-")
    return float(tail) * 60 if tail != run and tail.isascii() and tail.isdigit() else None


def is_run(cj: str, name: str) -> bool:
    tail = name.removeprefix(f"{cj}-")
    return tail != name and (tail.isdigit() or tail.startswith(f"{MANUAL}-"))


def run_of(pod: PodInfo) -> str:
    return pod.labels().get(JOB_NAME_KEYS[0], "")


def last_scheduled(cj: DesiredDeployment, pods: list[PodInfo], records: list[JobRecord]) -> float:
    """The latest schedule time a run was made for (0: none), from the runs' pods and the
    nodes' records: what Kubernetes keeps in ``status.lastScheduleTime``."""
    names = {run_of(p) for p in pods} | {r.job for r in records}
    return max((t for n in names if (t := scheduled_of(cj.name, n)) is not None), default=0.0)


def run_job(cj: DesiredDeployment, run: str) -> DesiredDeployment:
    """One run of the CronJob, as the Job it is."""
    template = cj.template
    labels = dict(template.labels) | dict(job_labels(run))
    return replace(
        cj, name=run, kind="Job", cron=None,
        template=replace(template, labels=tuple(sorted(labels.items()))),
    )  # fmt: skip


def plan(cj: DesiredDeployment, pods: list[PodInfo], ctx: Context) -> Part:
    cron = _cron(cj)
    times = ctx.cron.get(cj.key, CronTimes())
    runs: dict[str, list[PodInfo]] = {}
    remove: list[Remove] = []
    for p in pods:
        name = run_of(p)
        if is_run(cj.name, name):
            runs.setdefault(name, []).append(p)
        elif ctx.reachable(p):
            remove.append(Remove(p, Why.SURPLUS))  # no run's pod: not ours to keep
    records = {r.job: r for r in ctx.records.values()
               if r.namespace == cj.namespace and is_run(cj.name, r.job)}  # fmt: skip
    forget = _over_limits(cron, list(records.values()))
    gone = {r.job for r in forget}
    active = [n for n, ps in runs.items() if n not in records and any(not p.finished for p in ps)]
    replaced: list[str] = []
    wanted = list(times.manual)
    due = run_name(cj.name, times.due) if times.due is not None and not cron.suspend else ""
    fresh = bool(due) and due not in runs and due not in records
    # Forbid: the schedule waits while a run is active (within its starting deadline).
    waits = cron.concurrency == "Forbid" and bool(active)
    if fresh and not waits:
        replaced = active if cron.concurrency == "Replace" else []
        wanted.append(due)
    parts: list[Part] = []
    for name in sorted(runs.keys() | records.keys()):
        if name in gone or name in replaced:
            why = Why.JOB_HISTORY if name in gone else Why.JOB_REPLACED
            remove += [Remove(p, why) for p in runs.get(name, []) if ctx.reachable(p)]
            continue
        parts.append(_run(cj, name, runs.get(name, []), records.get(name), ctx))
    for name in wanted:
        if name not in runs and name not in records:
            parts.append(job.plan(run_job(cj, name), [], ctx))
    return Part(
        create=[c for part in parts for c in part.create],
        restart=[r for part in parts for r in part.restart],
        remove=remove + [r for part in parts for r in part.remove],
        keep=[p for part in parts for p in part.keep],
        pending=next((part.pending for part in parts if part.pending is not None), None),
        records=tuple(r for part in parts for r in part.records),
        forget=tuple(forget),
        wake_at=min(
            (t for t in (times.next, *(part.wake_at for part in parts)) if t is not None),
            default=None,
        ),
    )


def _run(
    cj: DesiredDeployment, name: str, pods: list[PodInfo], record: JobRecord | None, ctx: Context
) -> Part:
    """One run, planned as its Job. A run of an older template goes on as it is: it makes no
    new pod (its template is gone from git), and it ends when its pods have."""
    dep = run_job(cj, name)
    hashes = {p.template_hash for p in pods} | ({record.template_hash} if record else set())
    old = next(iter(hashes)) if len(hashes) == 1 and cj.template.template_hash not in hashes else ""
    if not old:
        return job.plan(dep, pods, ctx)
    dep = replace(dep, template=replace(dep.template, template_hash=old))
    part = job.plan(dep, pods, ctx)
    return replace(part, create=[])


def _over_limits(cron: Cron, ended: list[JobRecord]) -> list[JobRecord]:
    """Ended runs past the history limits: the oldest first to go."""
    out: list[JobRecord] = []
    for result, keep in (("Complete", cron.keep_succeeded), ("Failed", cron.keep_failed)):
        runs = sorted((r for r in ended if r.result == result), key=lambda r: -r.finished)
        out += runs[keep:]
    return out


@dataclass(frozen=True)
class CronStatus:
    """What ``kubectl get cronjobs`` shows, and the last result."""

    active: int = 0
    last_schedule: float = 0.0
    last_successful: float = 0.0
    next_schedule: float = 0.0
    last_result: str = ""  # Complete | Failed of the run that ended last
    last_reason: str = ""
    last_run: str = ""


def status(cj: DesiredDeployment, pods: list[PodInfo], records: list[JobRecord],
           times: CronTimes | None) -> CronStatus:  # fmt: skip
    """A CronJob's status from its runs' pods and the nodes' records."""
    mine = [r for r in records if r.namespace == cj.namespace and is_run(cj.name, r.job)]
    ended = {r.job for r in mine}
    active = {run_of(p) for p in pods if is_run(cj.name, run_of(p)) and not p.finished} - ended
    last = max(mine, key=lambda r: r.finished, default=None)
    ok = [r.finished for r in mine if r.result == "Complete"]
    return CronStatus(
        active=len(active),
        last_schedule=last_scheduled(cj, pods, mine),
        last_successful=max(ok, default=0.0),
        next_schedule=(times.next or 0.0) if times else 0.0,
        last_result=last.result if last else "",
        last_reason=last.reason if last else "",
        last_run=last.job if last else "",
    )
