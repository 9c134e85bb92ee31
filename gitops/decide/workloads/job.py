"""The Job planner: pods run to completion, ``parallelism`` at a time, until ``completions``
succeeded, or the Job failed. Pure.

As Kubernetes' Job controller (``pkg/controller/job``): a pod that failed (restartPolicy Never)
is replaced after a back-off of 10 s doubling to 6 min over the failures since the last
success; the Job fails when more pods failed than ``backoffLimit`` (with OnFailure, when the
containers' restarts and failed exits pass it), when ``activeDeadlineSeconds`` passed since it
started, or when a failed pod matches a ``podFailurePolicy`` rule that says FailJob (Ignore:
the failure is not counted). ``completionMode: Indexed`` runs one pod per index, each with
``JOB_COMPLETION_INDEX``. A suspended Job has no running pods.

When a Job ends, its end is a ``JobRecord`` the plan writes on every node: a Job runs once
per distinct template, whatever happens to the reconciler or its state directory; its
running pods go, its finished ones stay (their logs can be read) until
``ttlSecondsAfterFinished``. Pods of an older template of the Job go at once: a changed Job is
a new Job (a sync hook's running pods excepted: the new run waits for them to end).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gitops.decide.actions import Create, Pending, Remove, Restart, Why
from gitops.decide.batch import Batch, index_of, indexed_template
from gitops.decide.desired import DesiredDeployment
from gitops.decide.workloads.base import Context, Part, is_complete, place
from gitops.model.labels import JobRecord
from gitops.model.live import LiveState, PodInfo

COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
DEADLINE_EXCEEDED = "DeadlineExceeded"
POD_FAILURE_POLICY = "PodFailurePolicy"
COMPLETIONS_REACHED = "CompletionsReached"


@dataclass(frozen=True)
class JobStatus:
    """A Job's ``status``, as ``kubectl get job`` shows it (and its conditions)."""

    active: int = 0
    succeeded: int = 0
    failed: int = 0
    started: float = 0.0  # 0: not started
    finished: float = 0.0  # 0: not finished
    condition: str = ""  # Complete | Failed | Suspended | "" (running)
    reason: str = ""
    message: str = ""
    completed_indexes: str = ""  # Indexed: "0-2,4"
    recorded: bool = False  # from what a node remembers of its end

    @property
    def done(self) -> bool:
        return self.condition in (COMPLETE, FAILED)

    def record(self, job: DesiredDeployment) -> JobRecord:
        return JobRecord(
            job.namespace, job.name, job.template.template_hash, self.condition, self.reason,
            self.succeeded, self.failed, self.started, self.finished, job.template.commit,
            message=self.message,
        )  # fmt: skip


def _batch(job: DesiredDeployment) -> Batch:
    assert job.batch is not None, "the Job planner plans Jobs"
    return job.batch


def progress(
    job: DesiredDeployment,
    pods: list[PodInfo],
    record: JobRecord | None,
    now: float,
    restarts: Callable[[str], int] = lambda container_id: 0,
) -> JobStatus:
    """The status of a Job from its pods of the current template (or what a node remembers of
    its end); ``restarts``: a container's restarts so far (restartPolicy OnFailure)."""
    batch = _batch(job)
    if record is not None:
        return JobStatus(
            active=sum(not p.finished for p in pods), succeeded=record.succeeded,
            failed=record.failed, started=record.started, finished=record.finished,
            condition=record.result, reason=record.reason,
            message=record.message or _message(record.result, record.reason), recorded=True,
            completed_indexes=_indexes(pods) if batch.indexed else "",
        )  # fmt: skip
    started = min((p.created for p in pods), default=0.0)
    active = [p for p in pods if not p.finished]
    failed_pods = [p for p in pods if p.phase == "Failed"]
    counted = [p for p in failed_pods if _counts(batch, p)]
    failed = len(counted)
    if batch.on_failure:  # retries in place: each restart, and each exit awaiting one
        failed += sum(restarts(c.id) for p in active for c in p.containers)
        failed += sum(1 for p in active for c in p.containers if (c.exit_code or 0) != 0)
    succeeded = _succeeded(batch, pods)
    last = max((p.finished_at for p in pods if p.finished), default=0.0)
    base = JobStatus(len(active), succeeded, failed, started)
    if batch.indexed:
        base = _with(base, completed_indexes=_indexes(pods))
    fail_job = next((why for p in counted for action, why in [_verdict(batch, p)]
                     if action == "FailJob"), "")  # fmt: skip
    if fail_job:
        return _with(base, FAILED, POD_FAILURE_POLICY, fail_job, last or now)
    if batch.completions is not None and succeeded >= batch.completions:
        return _with(base, COMPLETE, COMPLETIONS_REACHED, finished=last or now)
    if batch.completions is None and succeeded and not active:
        return _with(base, COMPLETE, COMPLETIONS_REACHED, finished=last or now)
    if failed > batch.backoff_limit:
        exit_ = _last_exit(counted) if counted else ""
        why = f"{_message(FAILED, BACKOFF_LIMIT_EXCEEDED)}; {exit_}" if exit_ else ""
        return _with(base, FAILED, BACKOFF_LIMIT_EXCEEDED, why, finished=last or now)
    if batch.active_deadline is not None and started and now - started >= batch.active_deadline:
        return _with(base, FAILED, DEADLINE_EXCEEDED, finished=started + batch.active_deadline)
    if batch.suspend:
        return _with(base, SUSPENDED, "JobSuspended", "Job suspended")
    return base


def observed(
    job: DesiredDeployment, live: LiveState, now: float, restarts: Mapping[str, int]
) -> tuple[JobStatus, list[PodInfo]]:
    """A Job's status as one look found it, and its pods of the current template."""
    current = [p for p in live.of(*job.key) if p.template_hash == job.template.template_hash]
    record = live.record_of(job.namespace, job.name, job.template.template_hash)
    return progress(job, current, record, now, lambda cid: restarts.get(cid, 0)), current


def _with(
    st: JobStatus,
    condition: str = "",
    reason: str = "",
    message: str = "",
    finished: float = 0.0,
    completed_indexes: str | None = None,
) -> JobStatus:
    return JobStatus(
        st.active, st.succeeded, st.failed, st.started, finished or st.finished,
        condition or st.condition, reason or st.reason,
        message or _message(condition, reason) or st.message,
        st.completed_indexes if completed_indexes is None else completed_indexes,
    )  # fmt: skip


def _last_exit(failed: list[PodInfo]) -> str:
    """The exit of the pod that failed last: "pod NAME: container C exited with 3"."""
    pod = max(failed, key=lambda p: p.finished_at)
    for c in (*pod.init_containers(), *pod.app_containers()):
        if c.exit_code:
            return f"pod {pod.name}: container {c.meta.container} exited with {c.exit_code}"
    return f"pod {pod.name} failed"


def _message(condition: str, reason: str) -> str:
    """Kubernetes' words for each end."""
    return {
        BACKOFF_LIMIT_EXCEEDED: "Job has reached the specified backoff limit",
        DEADLINE_EXCEEDED: "Job was active longer than specified deadline",
        COMPLETIONS_REACHED: "Reached expected number of succeeded pods",
    }.get(reason, "")


def _verdict(batch: Batch, pod: PodInfo) -> tuple[str, str]:
    """The first podFailurePolicy rule a failed pod matches: (action, why), else Count."""
    for i, rule in enumerate(batch.rules):
        why = rule.matches(pod)
        if why:
            return rule.action, f"pod {pod.name}: {why}, matching {rule.action} rule {i}"
    return "Count", ""


def _counts(batch: Batch, pod: PodInfo) -> bool:
    """A failed pod counts against backoffLimit unless a rule says Ignore."""
    return _verdict(batch, pod)[0] != "Ignore"


def _succeeded(batch: Batch, pods: list[PodInfo]) -> int:
    done = [p for p in pods if p.phase == "Succeeded"]
    if not batch.indexed:
        return len(done)
    return len({i for p in done if (i := index_of(p)) is not None and i < (batch.completions or 0)})


def _indexes(pods: list[PodInfo]) -> str:
    """Completed indexes as Kubernetes writes them: "0-2,4"."""
    done = sorted({i for p in pods if p.phase == "Succeeded" and (i := index_of(p)) is not None})
    runs: list[list[int]] = []
    for i in done:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def backoff_until(
    pods: list[PodInfo], batch: Batch, initial: float = 10.0, maximum: float = 360.0
) -> float:
    """When the next pod may be made after failures: 10 s doubling to 6 min over the failed
    pods since the last success (0: no failure waits)."""
    last_success = max((p.finished_at for p in pods if p.phase == "Succeeded"), default=0.0)
    failures = sorted(
        p.finished_at
        for p in pods
        if p.phase == "Failed" and p.finished_at >= last_success and _counts(batch, p)
    )
    if not failures:
        return 0.0
    return failures[-1] + min(maximum, initial * 2.0 ** (len(failures) - 1))


def plan(job: DesiredDeployment, pods: list[PodInfo], ctx: Context) -> Part:
    batch = _batch(job)
    template = job.template
    current = [p for p in pods if p.template_hash == template.template_hash]
    older = [p for p in pods if p not in current and ctx.reachable(p)]
    # A sync hook's earlier run is never cut short (a migration stopped halfway is worse than
    # a late one): the new run waits for it, as Argo CD's next sync waits for the running one.
    finishing = [p for p in older if batch.hook and not p.finished]
    remove = [Remove(p, Why.OUTDATED) for p in older if p not in finishing]
    if finishing:
        return Part(remove=remove, keep=finishing + current, waiting=True)
    record = ctx.records.get((job.namespace, job.name, template.template_hash))
    st = progress(job, current, record, ctx.now, ctx.restarts.restarted)
    keep: list[PodInfo] = []
    if st.done:
        expires = st.finished + batch.ttl if batch.ttl is not None else None
        # A hook's delete policy: its pods go as soon as it succeeded (or failed).
        policy = "HookSucceeded" if st.condition == COMPLETE else "HookFailed"
        if batch.hook and batch.deletes_on(policy):
            expires = st.finished
        for p in current:
            if not p.finished and ctx.reachable(p):
                remove.append(Remove(p, f"{Why.JOB_ENDED}: {st.condition}"))
            elif expires is not None and ctx.now >= expires and ctx.reachable(p):
                remove.append(Remove(p, Why.JOB_TTL))
            else:
                keep.append(p)
        wake = expires if expires is not None and ctx.now < expires and keep else None
        return Part(remove=remove, keep=keep, records=(record or st.record(job),), wake_at=wake)
    restart: list[Restart] = []
    active: list[PodInfo] = []
    for p in current:
        if p.finished:
            keep.append(p)
        elif batch.suspend or ctx.drained(p) or ctx.tainted(p, template):
            why = Why.JOB_SUSPENDED if batch.suspend else Why.DRAINED
            remove.append(Remove(p, why if not ctx.tainted(p, template) else Why.TAINTED))
        elif not is_complete(p, template) and ctx.reachable(p) and p.phase != "Pending":
            remove.append(Remove(p, Why.BROKEN))  # its sandbox is gone: made again
        else:
            active.append(p)
            due = _due(p, ctx, batch)
            if due is not None:
                restart.append(due)
            else:
                keep.append(p)
    if batch.suspend:
        return Part([], restart, remove, keep)
    create, pending, wake = _more(job, current, active, ctx)
    return Part(create, restart, remove, keep, pending=pending, wake_at=wake)


def _more(
    job: DesiredDeployment, current: list[PodInfo], running: list[PodInfo], ctx: Context
) -> tuple[list[Create], Pending | None, float | None]:
    """New pods: up to ``parallelism`` running, no more than the completions still wanted,
    after the back-off of the failures since the last success."""
    batch = _batch(job)
    room = batch.parallelism - len(running)
    if room <= 0:
        return [], None, None
    initial, maximum = ctx.restarts.pod_backoff
    until = backoff_until(current, batch, initial, maximum)
    if until > ctx.now:
        return [], None, until
    spread = Counter(p.node for p in running)
    prefix = f"{job.name}-"
    if batch.indexed:
        done = {i for p in current if p.phase == "Succeeded" and (i := index_of(p)) is not None}
        busy = {index_of(p) for p in running}
        wanted = [i for i in range(batch.completions or 0) if i not in done | busy][:room]
        create: list[Create] = []
        for i in wanted:
            made, pending = place(ctx, indexed_template(job.template, i), 1, spread,
                                  f"{job.name}-{i}-", Why.JOB_RUN)  # fmt: skip
            create += made
            if pending is not None:
                return create, Pending(job.namespace, job.name, len(wanted) - len(create),
                                       pending.reason), None  # fmt: skip
        return create, None, None
    succeeded = sum(p.phase == "Succeeded" for p in current)
    if batch.completions is None:  # a work queue: no new pod once one succeeded
        count = 0 if succeeded else room
    else:
        count = min(room, batch.completions - succeeded - len(running))
    if count <= 0:
        return [], None, None
    made, pending = place(ctx, job.template, count, spread, prefix, Why.JOB_RUN)
    return made, pending, None


def _due(pod: PodInfo, ctx: Context, batch: Batch) -> Restart | None:
    """What of a running Job pod starts now: a container's first start (after the init
    containers) always; a failed one again only under OnFailure, behind its back-off. A
    container that exited 0 is done (it never runs again)."""
    if not ctx.reachable(pod):
        return None
    due = ctx.restarts.due(pod, ctx.now)
    if due is None:
        return None
    by_id = {c.id: c for c in pod.containers}

    def allowed(cid: str) -> bool:
        c = by_id.get(cid)
        if c is None or c.state == "created" or cid in due.fresh:
            return True
        if c.state == "running":  # failed liveness
            return batch.on_failure
        return batch.on_failure and (c.exit_code or 0) != 0

    ids = tuple(cid for cid in due.container_ids if allowed(cid))
    if not ids:
        return None
    running = tuple(cid for cid in due.running if cid in ids)
    return Restart(pod, ids, due.why, running, tuple(cid for cid in due.fresh if cid in ids))
