"""Sync hooks: the Jobs that run before a commit's workloads change (PreSync) and after they
are all Healthy (PostSync), as Argo CD's resource hooks. Pure.

In: the desired state of the commit to converge, the live state, and (for PostSync) the last
status. Out: the desired state a pass plans. While a PreSync Job of the commit has not
completed, ``hold`` keeps every other workload at the commit its pods run now, rebuilt from
git (so it still heals), makes no workload the commit adds and removes none it deletes; the
PostSync Jobs wait. A PreSync Job that failed holds them the same way, and the pass says so
(``Gate``), until a commit changes the Job or the workloads: the migrate-then-roll that teams
script by hand. A hook's run is identified by its template and those of the workloads around
it (``gitops.decide.desired``), so it runs again when they change, not on every commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from gitops.decide.batch import POST_SYNC, PRE_SYNC
from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.status import ResourceStatus
from gitops.decide.workloads import job
from gitops.model import logs
from gitops.model.live import LiveState
from gitops.model.templates import PodTemplate
from gitops.model.verdicts import Health, Sync

RUNNING, FAILED = "Running", "Failed"
POST_SYNC_WAITS = "PostSync hook: waits until every workload of the commit is Healthy"


@dataclass(frozen=True)
class Gate:
    """Whether the commit's PreSync hooks let its workloads change: ``phase`` "" (they do),
    Running, or Failed (with the Job, its reason and message)."""

    phase: str = ""
    namespace: str = ""
    job: str = ""
    reason: str = ""
    message: str = ""
    pod: str = ""  # the failed Job's last pod, whose log tail the pass reports

    @property
    def holding(self) -> bool:
        return bool(self.phase)

    def describe(self) -> str:
        name = f"PreSync hook Job {self.namespace}/{self.job}"
        if self.phase == FAILED:
            return f"{name} failed ({self.reason}): {self.message}".rstrip(": ")
        return f"waiting for {name} to complete"


def pre_sync(
    desired: DesiredState, live: LiveState, now: float, restarts: Mapping[str, int]
) -> Gate:
    """The first PreSync hook that failed, else the first still running, else an open gate."""
    running: Gate | None = None
    for dep in desired.deployments:
        if dep.hook != PRE_SYNC:
            continue
        st, pods = job.observed(dep, live, now, restarts)
        if st.condition == job.FAILED:
            last = max(pods, key=lambda p: p.created).name if pods else ""
            return Gate(FAILED, dep.namespace, dep.name, st.reason, st.message, last)
        if st.condition != job.COMPLETE and running is None:
            running = Gate(RUNNING, dep.namespace, dep.name)
    return running or Gate()


def hold(
    desired: DesiredState,
    live: LiveState,
    gate: Gate,
    load: Callable[[str], DesiredState | None],
) -> DesiredState:
    """What a pass converges while ``gate`` holds: the PreSync hooks, and every other workload
    that has pods at the commit its newest pod runs (``load``: a commit's desired state, None
    when git cannot give it: then its pods are left as they are)."""
    why = gate.describe() + ("; the previous commit runs" if gate.phase == FAILED else "")
    hooks = [d for d in desired.deployments if d.hook == PRE_SYNC]
    ours = {d.key for d in hooks}
    keys = {d.key for d in desired.deployments} | live.deployments()
    out: list[DesiredDeployment] = list(hooks)
    left: set[tuple[str, str]] = set()
    for key in sorted(keys - ours):
        pods = live.of(*key)
        if not pods:
            continue  # new in this commit: made once the hooks completed
        newest = max(pods, key=lambda p: p.created)
        before = load(newest.commit)
        dep = before.deployment(*key) if before is not None else None
        if dep is None or dep.template.template_hash != newest.template_hash:
            left.add(key)  # cannot be rebuilt: its pods stay as they are
            continue
        out.append(replace(dep, held=why))
    namespaces = tuple(sorted(set(desired.namespaces) | {p.namespace for p in live.pods}))
    return replace(
        desired,
        namespaces=namespaces,
        deployments=tuple(sorted(out, key=lambda d: d.key)),
        held=frozenset(left),
        holding=why,
    )


def post_sync_due(desired: DesiredState, last: tuple[ResourceStatus, ...], applied: str) -> bool:
    """Every workload of the commit (hooks aside) was Synced and Healthy when last judged."""
    if applied != desired.commit:
        return False
    said = {(r.kind, r.namespace, r.name): r for r in last}
    for dep in desired.deployments:
        if dep.hook or dep.cron is not None:
            continue  # hooks, and CronJobs (their runs come by the clock, not by the sync)
        r = said.get((dep.kind, dep.namespace, dep.name))
        if r is None or r.sync != Sync.SYNCED or r.health != Health.HEALTHY:
            return False
    return True


def without_post_sync(desired: DesiredState) -> DesiredState:
    """The PostSync hooks wait; the pods of an earlier run stay as they are meanwhile."""
    waiting = {d.key for d in desired.deployments if d.hook == POST_SYNC}
    if not waiting:
        return desired
    return replace(
        desired,
        deployments=tuple(d for d in desired.deployments if d.key not in waiting),
        held=desired.held | waiting,
        holding=POST_SYNC_WAITS,
    )


LOG_LINES = 10  # the failed hook's last lines a status shows


def log_tail(text: str, template: PodTemplate) -> tuple[str, ...]:
    """A failed hook's last log lines for status and history: bounded, with the values of the
    Secrets its containers get masked (a migration that prints its connection string leaks
    no password)."""
    return logs.log_tail(text.splitlines(), template, LOG_LINES)
