"""The front door: one reconcile pass, read top to bottom.

    fetch the source -> observe the nodes -> pick the target commit (newest valid one)
    -> plan (pure) -> apply -> observe again -> status, history (once, on every exit path)

A commit that fails validation (or would delete everything) never reaches the nodes: the
pass keeps converging the last valid commit, so running workloads stay and drift is still
repaired, while status and history report the bad commit with file, document and field.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from gitops.act.apply import Progress, apply_plan
from gitops.act.observe import observe
from gitops.config.settings import Settings
from gitops.decide import endpoints
from gitops.decide.actions import NameSource, Pending, RestartPolicy
from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.health import Backoff, PodReadiness, ReadinessTracker, pod_ready
from gitops.decide.plan import Plan, make_plan
from gitops.decide.status import SyncStatus, behind_head, resource_statuses
from gitops.decide.workloads.rollout import settled
from gitops.errors import (
    EmptyCommitError,
    GitopsError,
    ManifestError,
    NodeUnavailable,
    PermanentError,
    Reason,
    TemporaryError,
    internal,
)
from gitops.model.applied import ApplyResult, Unstarted
from gitops.model.events import SYNC_FAILED, Event
from gitops.model.live import ContainerInfo, LiveState, PodInfo
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Health, Result
from gitops.nodes.base import Node
from gitops.probing.prober import Prober
from gitops.report.metrics import Metrics
from gitops.source.git import GitSource
from gitops.state.board import Board
from gitops.state.cluster import Cluster
from gitops.state.commits import Commits
from gitops.state.history import History, SyncRecord
from gitops.state.revisions import Revisions
from gitops.traffic.names import ServiceNames
from gitops.traffic.proxy import ServiceProxy

log = logging.getLogger(__name__)
PENDING_RETRY = 5.0  # seconds: a pod no node can take is tried again
REQUEUE_SOON = 1.0  # seconds: a pass that changed something looks again quickly
MAX_BACKOFF = 300.0
INTERNAL_RETRY = 1.0  # seconds before a pass that failed for an internal error is tried again


@dataclass(frozen=True)
class Outcome:
    status: SyncStatus
    plan: Plan | None = None
    applied: ApplyResult | None = None
    requeue_after: float | None = None
    errors: tuple[str, ...] = field(default=())
    retry: bool = False  # a temporary failure: the next pass reads git again


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        source: GitSource,
        nodes: Sequence[Node],
        history: History,
        commits: Commits,
        revisions: Revisions,
        cluster: Cluster,
        metrics: Metrics,
        board: Board,
        clock: Callable[[], float] = time.time,
        names: NameSource | None = None,
        progress: Progress | None = None,
        prober: Prober | None = None,
        proxy: ServiceProxy | None = None,
        notify: Callable[[Event], None] = lambda event: None,
    ) -> None:
        """Every collaborator is made by the composition root (``gitops.runner.compose``)."""
        self.settings, self.source, self.history = settings, source, history
        self.commits, self.revisions, self.cluster = commits, revisions, cluster
        self.metrics, self.board, self.notify = metrics, board, notify
        self.nodes = {n.name: n for n in nodes}
        self.clock, self.names, self.progress = clock, names, progress
        self.prober, self.proxy = prober, proxy
        self.readiness = ReadinessTracker()
        self.service_names = ServiceNames(self.nodes)
        self._ready_saved: list[str] | None = None
        self._routing = threading.Lock()  # passes, probe verdicts and pod removals route
        self._routed: tuple[DesiredState, LiveState] | None = None
        self._leaving_pods: set[str] = set()
        # Containers the engine said stopped since the last look: container id -> when.
        self._stopped: dict[str, float] = {}
        self._stopped_lock = threading.Lock()
        if prober is not None:
            prober.carry(history.facts.ready_containers())  # by probe verdict, over a restart
        backoff = settings.crash_backoff  # (initial, maximum, reset after)
        self.crash = Backoff(*backoff)  # CrashLoopBackOff
        self.pulls = Backoff(*backoff)  # ImagePullBackOff
        self._failures = 0
        self._rejected = ""
        self._head = ""  # the branch head the last fetch found

    # -- what readers see (the read model the API and metrics use) --------------------------
    @property
    def status(self) -> SyncStatus:
        return self.board.status

    @property
    def desired(self) -> DesiredState | None:
        return self.board.desired

    @property
    def endpoints(self) -> tuple[endpoints.PortEndpoints, ...]:
        return self.board.endpoints

    @property
    def unstarted(self) -> tuple[Unstarted, ...]:
        return self.board.unstarted

    @property
    def pending(self) -> tuple[Pending, ...]:
        return self.board.pending

    @property
    def fetches_started(self) -> int:
        return self.board.fetches_started

    @property
    def fetches_finished(self) -> int:
        return self.board.fetches_finished

    def restart_counts(self) -> dict[str, int]:
        return self.crash.counts()

    def latest_rollout(self, key: tuple[str, str]) -> RolloutRecord | None:
        return self.revisions.latest(key)

    def look(self) -> LiveState:
        """A fresh observation of every node (what ``get`` shows)."""
        return observe(list(self.nodes.values()))

    # -- the pipeline ---------------------------------------------------------------------
    def reconcile(
        self, trigger: str = "manual", dry_run: bool = False, fetch: bool = True
    ) -> Outcome:
        """One pass. ``fetch=False`` (a probe verdict, a container event, a requeue: nothing
        that says git moved) converges the branch head the last fetch found, as Flux's
        reconcilers work from the source they last fetched instead of reading git per event."""
        started = self.clock()
        fetch = fetch or not self._head
        number = 0
        phases = _Phases()
        revision, target, result, reason, message = "", "", Result.SUCCEEDED, Reason.SUCCEEDED, ""
        errors: tuple[str, ...] = ()
        plan: Plan | None = None
        applied: ApplyResult | None = None
        resources = self.status.resources
        requeue: float | None = None
        retry = False
        counted_as = ""  # the metric's result when it is not the status's
        try:
            if fetch:
                self.board.fetches_started += 1
                number = self.board.fetches_started
                try:
                    revision = self._head = self.source.fetch()
                except GitopsError:
                    self.metrics.fetched(False, phases.lap("fetch"))
                    raise
                self.metrics.fetched(True, phases.lap("fetch"))
            else:
                revision = self._head
            live = self._observe()
            phases.lap("observe")
            desired, rejected = self._target(revision, live, remember=not dry_run)
            if rejected is not None:
                result, reason, message = (
                    Result.FAILED,
                    rejected.reason,
                    str(rejected).splitlines()[0],
                )
                errors = tuple(_lines(rejected))
            if desired is None:  # no valid commit yet to fall back on
                assert rejected is not None
                raise rejected
            target = desired.commit
            desired = self.revisions.apply_pins(desired)
            now = self.clock()
            readiness = self._readiness(live, now)
            before, ready_before, then = live, readiness, now  # as found, before this pass acts
            if not dry_run:
                # Pods ready now take traffic before this pass removes any it replaces.
                self._publish(desired, live)
            plan = make_plan(
                desired,
                live,
                self.cluster.views(),
                self.names,
                readiness,
                now,
                self._restarts(live, now),
                self.cluster.evicted,
            )
            phases.lap("plan")
            if not plan.empty and not dry_run:
                applied = apply_plan(
                    plan,
                    self.nodes,
                    desired,
                    self.progress,
                    self.settings.workers,
                    self.pulls,
                    now,
                    self._leave_services,
                )
                self._restarted(plan, applied, now)
                for node_name, why in applied.silent.items():
                    self.cluster.silent(node_name, why)
                phases.lap("apply")
                live = self._observe()
                phases.lap("observe")
                now = self.clock()
                readiness = self._readiness(live, now)
                if applied.failures and rejected is None:
                    result, reason = Result.FAILED, applied.failures[0].reason
                    message = f"{len(applied.failures)} deployment(s) failed to apply"
                    errors = tuple(f.message for f in applied.failures)
            counted = replace(
                live, pods=tuple(p for p in live.pods if p.name not in self.cluster.evicted)
            )
            if not dry_run:  # what `get pods` shows besides the live ones
                self.board.unstarted = tuple(applied.unstarted) if applied else ()
                self.board.pending = plan.pending
            resources = resource_statuses(
                desired, counted, plan, applied, self.crash.looping(now), readiness, now
            )
            if rejected is not None:
                resources = behind_head(resources, revision)
            if not dry_run:
                self._route(desired, live)
            rolling_back = not dry_run and self.revisions.track(
                desired,
                resources,
                lambda d: self._explain(d, live, applied),
                now,
                lambda d: self._broken(d, live, applied),
                lambda d, h: settled(d, h, before.of(*d.key), ready_before, then),
            )
            busy = not plan.empty or any(r.health == Health.PROGRESSING for r in resources)
            requeue = REQUEUE_SOON if busy and not dry_run else None
            if rolling_back:  # the pin is set: the next pass starts the rollback, now
                requeue = 0.0
            if plan.pending and not dry_run:  # room may appear without any event
                requeue = min(requeue or math.inf, PENDING_RETRY)
            if plan.wake_at is not None and not dry_run:  # a backed-off restart falls due
                requeue = min(requeue or math.inf, max(0.0, plan.wake_at - self.clock()))
            self._failures = 0
        except TemporaryError as exc:
            result, reason, message = Result.FAILED, exc.reason, str(exc)
            errors = (str(exc),)
            self._failures += 1
            requeue = min(MAX_BACKOFF, exc.delay * 2 ** (self._failures - 1))
            retry = True
        except GitopsError as exc:
            result, reason = Result.FAILED, exc.reason
            message, errors = str(exc).splitlines()[0], tuple(_lines(exc))
        except Exception as exc:  # a bug or an unclassified fault: a Failed pass, never a crash
            log.exception("pass (%s) failed with an internal error", trigger)
            result, reason, message = Result.FAILED, Reason.INTERNAL, internal(exc)
            errors, counted_as = (message,), "error"
            self._failures += 1
            requeue = min(MAX_BACKOFF, INTERNAL_RETRY * 2 ** (self._failures - 1))
            retry = True
        finally:
            status = SyncStatus(
                revision=revision or self.status.revision,
                applied=target or self.status.applied,
                result=result,
                reason=reason,
                message=message,
                errors=errors,
                time=self.clock(),
                resources=resources,
            )
            if not dry_run:
                self._finish(status, trigger, started, applied, target, counted_as or result)
                if number:
                    self.board.fetches_finished = number
            phases.lap("report")
            log.debug("pass (%s): %s", trigger, phases)
        return Outcome(status, plan, applied, requeue, errors, retry)

    # -- stages -----------------------------------------------------------------------------
    def container_stopped(self, container_id: str) -> None:
        """The engine said a container no longer runs: its pod is not Ready from now until an
        observation made since says otherwise, and the endpoints follow at once (a pass may
        be busy for a while; a lone container's address may meanwhile go to another pod)."""
        with self._stopped_lock:
            self._stopped[container_id] = self.clock()
        self.refresh_endpoints()

    def _observe(self) -> LiveState:
        started = self.clock()
        live = observe(list(self.nodes.values()))
        with self._stopped_lock:  # what stopped before this look began, it has seen
            self._stopped = {c: t for c, t in self._stopped.items() if t >= started}
        if len(live.unreachable) == len(self.nodes):
            raise NodeUnavailable("; ".join(live.unreachable.values()))
        # A silent node's pods stay counted from its last answer (no duplicates) until evicted.
        live = self.cluster.merge(live)
        if self.prober is not None:
            self.prober.update([p for p in live.pods if self.cluster.usable(p.node)])
        return live

    def _ready(self, pod: PodInfo) -> bool:
        """Ready by its probes, on a node that answers (else unknown, so not ready), and with
        no container the engine has since said stopped."""
        holder = pod.holder
        held = [*pod.app_containers(), *([holder] if holder is not None else [])]
        if any(c.id in self._stopped for c in held):
            return False
        return self.cluster.usable(pod.node) and pod_ready(pod, self.probe_ready)

    def probe_ready(self, container_id: str) -> bool | None:
        return self.prober.ready(container_id) if self.prober is not None else None

    def _readiness(self, live: LiveState, now: float) -> dict[str, PodReadiness]:
        """Pod readiness (probes, else HEALTHCHECK, else running), and since when."""
        return self.readiness.observe({p.name: self._ready(p) for p in live.pods}, now)

    def _restarts(self, live: LiveState, now: float) -> RestartPolicy:
        """Containers to restart (exited, or failing liveness), each behind its back-off."""
        unhealthy = self.prober.failing() if self.prober is not None else {}
        not_before = {
            c.id: self.crash.not_before(c.id, now)
            for p in live.pods
            for c in p.app_containers()
            if c.state != "running" or c.id in unhealthy
        }
        return RestartPolicy(unhealthy, not_before)

    def _route(self, desired: DesiredState, live: LiveState) -> None:
        """Services balance over the pods that are ready now, also when reached by name."""
        self._publish(desired, live)
        if self.proxy is not None:
            self.service_names.publish(self.endpoints, live, self.cluster.usable)

    def refresh_endpoints(self) -> None:
        """A probe verdict changed: endpoints follow at once, from the last observation, without
        waiting for a pass (one may be busy for a while, stopping a pod in its grace period)."""
        routed = self._routed
        if routed is None:
            return
        try:
            self._route(*routed)
        except GitopsError as exc:
            log.warning("endpoints not refreshed: %s", exc)

    def _publish(self, desired: DesiredState, live: LiveState) -> None:
        """Endpoints from the freshest probe verdicts; pods being stopped never come back."""
        with self._routing:
            self._routed = (desired, live)
            self._leaving_pods &= {p.name for p in live.pods}
            table = endpoints.compute(desired, live, self._ready, self._leaving_pods)
            if self.proxy is not None:
                self.proxy.update(table)
            # Shown only once the proxy has them: what `get endpoints` lists answers.
            self.board.endpoints = tuple(table)
            if self.prober is not None:  # carried over a restart of the reconciler
                verdicts = sorted(self.prober.ready_containers())
                if verdicts != self._ready_saved:
                    self.history.facts.set_ready_containers(verdicts)
                    self._ready_saved = verdicts

    def _leave_services(self, pod: PodInfo) -> None:
        """Before a pod is stopped: out of every Service, for the proxy and for what is shown."""
        with self._routing:  # pods of a pass are removed in parallel
            self._leaving_pods.add(pod.name)
            self.board.endpoints = tuple(endpoints.without(list(self.endpoints), {pod.name}))
        if self.proxy is not None:
            grace = pod.containers[0].meta.grace if pod.containers else 30
            self.proxy.drop({pod.name}, drain=min(5.0, float(grace)))

    def _restarted(self, plan: Plan, applied: ApplyResult, now: float) -> None:
        for r in plan.restart:
            if applied.failure_for(r.pod.namespace, r.pod.deployment) is not None:
                continue
            self.metrics.restarted(r.pod.namespace, r.pod.deployment)
            for cid in r.container_ids:
                self.crash.record(cid, now)
                if self.prober is not None:
                    self.prober.forget(cid)  # its probes start over with the new process

    def _target(
        self, revision: str, live: LiveState, remember: bool = True
    ) -> tuple[DesiredState | None, PermanentError | None]:
        """The desired state to converge: the newest commit if valid, else the last valid one."""
        if self.desired is not None and self.desired.commit == revision:
            return self.desired, None
        try:
            desired = self.commits.load(revision)
            if desired.empty and live.pods and not self.settings.allow_empty:
                raise EmptyCommitError(
                    f"commit {revision[:12]} has no manifests under "
                    f"'{self.settings.path or '/'}'; refusing to remove {len(live.pods)} "
                    "running pod(s) (allow with --allow-empty)"
                )
        except (ManifestError, EmptyCommitError) as exc:
            if self._rejected != revision:  # say it once per commit, not once per poll
                log.error("commit %s rejected: %s", revision[:12], exc)
                self._rejected = revision
            return self._last_good(), exc
        self.board.desired = desired
        if remember and self.history.facts.last_good() != revision:
            self.history.facts.set_last_good(revision)
        return desired, None

    def _explain(self, dep: DesiredDeployment, live: LiveState, applied: ApplyResult | None) -> str:
        """Why a deployment's new pods do not become available: the first reason found."""

        def why(pod: PodInfo, c: ContainerInfo) -> str:
            if c.state != "running":
                return f"pod {pod.name}: container {c.meta.container or c.name} {c.status}"
            reason = self.prober.reason(c.id) if self.prober is not None else ""
            return f"pod {pod.name}: {reason}" if reason else ""

        return self._new_pods_first(dep, live, applied, why)

    def _broken(self, dep: DesiredDeployment, live: LiveState, applied: ApplyResult | None) -> str:
        """Why a pod of the deployment's new template has failed for good, as Swarm counts a
        failed task: its image could not be had, a container exited, or its startup or
        readiness probe failed ``failureThreshold`` times in a row. "" when none has."""

        def why(pod: PodInfo, c: ContainerInfo) -> str:
            name = c.meta.container or c.name
            if c.state in ("exited", "dead"):
                return f"pod {pod.name}: container {name} {c.status}"
            failed = self.prober.failed(c.id) if self.prober is not None else ""
            return f"pod {pod.name}: container {name}: {failed}" if failed else ""

        return self._new_pods_first(dep, live, applied, why)

    @staticmethod
    def _new_pods_first(
        dep: DesiredDeployment,
        live: LiveState,
        applied: ApplyResult | None,
        why: Callable[[PodInfo, ContainerInfo], str],
    ) -> str:
        """The deployment's failure to apply, else the first reason ``why`` gives for an app
        container of a pod of its new template; "" when there is none."""
        failure = applied.failure_for(*dep.key) if applied else None
        if failure is not None:
            return failure.message
        for pod in live.of(*dep.key):
            if pod.template_hash == dep.template.template_hash:
                for c in pod.app_containers():
                    found = why(pod, c)
                    if found:
                        return found
        return ""

    def _last_good(self) -> DesiredState | None:
        if self.desired is None:
            commit = self.history.facts.last_good()
            if commit:  # after a restart: rebuild from git, the source of truth
                try:
                    self.board.desired = self.commits.load(commit)
                except GitopsError as exc:
                    log.error("last good commit %s cannot be loaded: %s", commit[:12], exc)
        return self.desired

    def _finish(
        self,
        status: SyncStatus,
        trigger: str,
        started: float,
        applied: ApplyResult | None,
        target: str,
        result: str,
    ) -> None:
        """Status, history, metrics and notifications of one pass, written once. None of it
        may end the process: a history that cannot be written is logged, and the status and
        metrics still say what happened."""
        previous, self.board.status = self.status, status
        try:
            if applied is not None and target and target == previous.applied:
                # Same commit as last pass, yet pods changed: drift put right.
                self.metrics.corrected("create", applied.created)
                self.metrics.corrected("restart", applied.restarted)
                self.metrics.corrected("remove", applied.removed)
            self.metrics.reconciled(result, self.clock() - started)
            self._report(previous, status, trigger, started, applied)
        except Exception:
            log.exception("the pass's report was not written in full")

    def _report(
        self,
        previous: SyncStatus,
        status: SyncStatus,
        trigger: str,
        started: float,
        applied: ApplyResult | None,
    ) -> None:
        changed = applied is not None and applied.changed
        same = (previous.revision, previous.result, previous.message) == (
            status.revision,
            status.result,
            status.message,
        )
        if changed or not same:
            self._record(
                SyncRecord(
                    started=started,
                    finished=status.time,
                    revision=status.revision,
                    applied=status.applied,
                    result=status.result,
                    reason=status.reason,
                    message="\n".join((status.message, *status.errors)).strip(),
                    trigger=trigger,
                    created=applied.created if applied else 0,
                    removed=applied.removed if applied else 0,
                    restarted=applied.restarted if applied else 0,
                )
            )
        if status.result == Result.FAILED and not same:
            log.warning("sync of %s failed: %s", status.revision[:12], status.message)
            detail = "; ".join(status.errors[:3])
            self.notify(
                Event(
                    SYNC_FAILED,
                    status.message + (f": {detail}" if detail != status.message else ""),
                    status.time,
                    commit=status.revision,
                    reason=status.reason,
                )
            )
        elif changed:
            log.info("synced %s: %s", status.applied[:12], _summary(applied))

    def _record(self, record: SyncRecord) -> None:
        try:
            self.history.record(record)
        except GitopsError as exc:  # the status and the log still tell; the next change retries
            log.error("sync not recorded in the history: %s", exc)


class _Phases:
    """Where a pass spent its time, for the debug log: 'fetch 0.210s, observe 0.031s, ...'."""

    def __init__(self) -> None:
        self._mark = time.monotonic()
        self._spent: dict[str, float] = {}

    def lap(self, phase: str) -> float:
        now = time.monotonic()
        spent, self._mark = now - self._mark, now
        self._spent[phase] = self._spent.get(phase, 0.0) + spent
        return spent

    def __str__(self) -> str:
        total = sum(self._spent.values())
        return ", ".join(f"{k} {v:.3f}s" for k, v in self._spent.items()) + f"; {total:.3f}s"


def _lines(exc: GitopsError) -> list[str]:
    if isinstance(exc, ManifestError):
        return [str(e) for e in exc.errors]
    return [str(exc)]


def _summary(applied: ApplyResult | None) -> str:
    if applied is None:
        return "no change"
    return f"{applied.created} created, {applied.restarted} restarted, {applied.removed} removed"
