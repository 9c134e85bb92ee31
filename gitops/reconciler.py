"""The front door: one reconcile pass, read top to bottom.

    fetch the source -> observe the nodes -> pick the target commit (newest valid one)
    -> plan (pure) -> apply -> observe again -> status, history (once, on every exit path)

A commit that fails validation (or would delete everything) never reaches the nodes: the
pass keeps converging the last valid commit, so running workloads stay and drift is still
repaired, while status and history report the bad commit with file, document and field.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from gitops.act.apply import Progress, apply_plan
from gitops.act.observe import observe, pods_usage
from gitops.config.settings import Settings
from gitops.decide import clusterdns, endpoints, hooks, ingress, quota, requeue
from gitops.decide.actions import NameSource, Pending, RestartPolicy, random_suffix
from gitops.decide.autoscalers import (
    Autoscaler,
    Found,
    Sample,
    autoscalers_of,
    evaluate,
    request_rates,
    routed,
    with_status,
)
from gitops.decide.batch import CronTimes
from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.disruption import Blocked
from gitops.decide.happened import pass_events
from gitops.decide.health import Backoff, PodReadiness, ReadinessTracker, pod_ready
from gitops.decide.plan import Plan, make_plan
from gitops.decide.scaling import Scale, failing
from gitops.decide.status import ResourceStatus, SyncStatus, behind_head, resource_statuses
from gitops.decide.workloads import cronjob, deployment
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
from gitops.model.eventlog import SUCCESSFUL_RESCALE, ObjectEvent, event
from gitops.model.events import Event
from gitops.model.live import LiveState, PodInfo
from gitops.model.logs import LogQuery, LogStream
from gitops.model.rollouts import RolloutRecord
from gitops.model.sessions import ExecSession
from gitops.model.verdicts import Result
from gitops.nodes.base import Node, last_lines
from gitops.probing.prober import Prober
from gitops.report.metrics import Metrics
from gitops.report.passes import Reporter
from gitops.source import cron
from gitops.source.git import GitSource
from gitops.state.board import Board
from gitops.state.cluster import Cluster
from gitops.state.commits import Commits
from gitops.state.eventlog import Recorder
from gitops.state.history import History
from gitops.state.lastlogs import KeptLogs
from gitops.state.moves import Moves
from gitops.state.revisions import Questions, Revisions
from gitops.state.runs import JobRuns
from gitops.state.scales import Scales
from gitops.traffic.clusterdns import ClusterDns
from gitops.traffic.names import ServiceNames
from gitops.traffic.proxy import ServiceProxy

log = logging.getLogger(__name__)
HPA = "HorizontalPodAutoscaler"
MAX_BACKOFF, INTERNAL_RETRY = requeue.MAX_BACKOFF, requeue.INTERNAL_RETRY


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
        reporter: Reporter,
        clock: Callable[[], float] = time.time,
        names: NameSource | None = None,
        progress: Progress | None = None,
        prober: Prober | None = None,
        proxy: ServiceProxy | None = None,
        dns: ClusterDns | None = None,
        notify: Callable[[Event], None] = lambda event: None,
        events: Recorder | None = None,
        scales: Scales | None = None,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        """Every collaborator is made by the composition root (``gitops.runner.compose``).
        ``leading``: whether this process may act now (``--leader-elect``: it holds the lease;
        else always)."""
        self.settings, self.source, self.history = settings, source, history
        self.commits, self.revisions, self.cluster = commits, revisions, cluster
        self.metrics, self.board, self.reporter, self.notify = metrics, board, reporter, notify
        self.nodes = {n.name: n for n in nodes}
        self.leading = leading
        self.clock, self.names, self.progress = clock, names, progress
        self.prober, self.proxy, self.dns = prober, proxy, dns
        self.readiness = ReadinessTracker()
        self.runs = JobRuns(history, notify)
        self.scales = scales or Scales(history.facts)  # the autoscalers' (``autoscale``)
        self._served: dict[str, tuple[float, int]] = {}  # pod -> (when, requests the proxy sent)
        self.service_names = ServiceNames(self.nodes)
        # Crashed pods' logs, after their removal; in the state database beside the history.
        self.kept_logs = KeptLogs(self.nodes, db=history.db)
        self.recorder = events
        self.events = events.log if events else None  # what the API reads
        self._replicas: dict[tuple[str, str], int] = {}  # each workload's, at the last pass
        self._ready_saved: list[str] | None = None
        self._routing = threading.Lock()  # passes, probe verdicts and pod removals route
        self._routed: tuple[DesiredState, LiveState] | None = None
        self._leaving_pods: set[str] = set()
        # Containers the engine said stopped since the last look: container id -> when.
        self._stopped: dict[str, float] = {}
        self._stopped_lock = threading.Lock()
        self._looked = False  # volumes are listed at least once, at the first look
        self._records_found = False  # a look found finished Jobs' records
        self._hook_tails: dict[tuple[str, str, str], tuple[str, ...]] = {}  # a failed hook's log
        self._schedules: dict[tuple[str, str], cron.Schedule] = {}  # CronJob schedules, read
        self._cron_seen: dict[tuple[str, str], float] = {}  # when a CronJob was first seen
        self._manual: dict[tuple[str, str], list[str]] = {}  # runs asked for by hand
        self._manual_lock = threading.Lock()  # asked for from API threads
        if prober is not None:
            prober.carry(history.facts.ready_containers())  # by probe verdict, over a restart
        backoff = settings.crash_backoff  # (initial, maximum, reset after)
        self.crash = Backoff(*backoff)  # CrashLoopBackOff
        self.pulls = Backoff(*backoff)  # ImagePullBackOff
        self._failures = 0
        self._rejected = ""
        self._warned = ""  # the commit whose warnings were logged
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
    def ingress(self) -> ingress.IngressTable:
        return self.board.ingress

    @property
    def unstarted(self) -> tuple[Unstarted, ...]:
        return self.board.unstarted

    @property
    def pending(self) -> tuple[Pending, ...]:
        return self.board.pending

    @property
    def blocked(self) -> tuple[Blocked, ...]:
        return self.board.blocked

    @property
    def trigger(self) -> str:
        return self.board.trigger

    @property
    def triggered(self) -> dict[str, float]:
        return self.board.triggered

    @property
    def changes(self) -> tuple[str, ...]:
        return self.board.changes

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

    def _acting(self, what: str) -> None:
        """Each step a pass carries out (a pod made, removed, an image pulling): counted for
        the readers that show the nodes while a long pass runs, then told as progress."""
        self.board.moves.moved()
        (self.progress or log.info)(what)

    @property
    def autoscaled(self) -> dict[tuple[str, str], Found]:
        """What each autoscaler found at its last sample."""
        return self.scales.found()

    @property
    def moves(self) -> Moves:
        """Steps carried out and changes the engines told so far: a look taken at a lower
        count is out of date."""
        return self.board.moves

    @property
    def last_look(self) -> tuple[float, LiveState, int] | None:
        """The last pass's look at the nodes, when it began (this reconciler's clock) and the
        count of moves before it (``moves``)."""
        return self.board.seen

    def look(self) -> LiveState:
        """A fresh observation of every node (what ``get`` shows), listing the claims' volumes
        and the finished Jobs' records where the passes' looks would."""
        volumes, records = self._listed()
        return observe(list(self.nodes.values()), volumes, records)

    def autoscale(self) -> bool:
        """One sample for every autoscaler of the applied commit (Kubernetes' HPA sync): the
        targets' pods and their usage read, each autoscaler's next scale decided and kept.
        True when a scale changed: a pass should run."""
        desired = self.board.desired
        scalers = autoscalers_of(desired) if desired is not None else ()
        if desired is None or not scalers or not self.leading():
            return False
        targets = {s.target_key for s in scalers}
        live = self.look()
        pods = [p for p in live.pods if (p.namespace, p.deployment) in targets]
        usage = pods_usage(self.nodes, pods, self.cluster.usable)
        with self._routing:
            leaving = frozenset(self._leaving_pods)
        now = self.clock()
        rates, routes = self._traffic(scalers, desired, live, now)
        sample = Sample(pods, usage, self.readiness.last(), self._ready, now, leaving, rates,
                        routes)  # fmt: skip
        quotas = quota.quotas_of(desired)
        templates = desired.templates
        changed = False
        for scaler in scalers:
            workload = desired.deployment(*scaler.target_key)
            if workload is None or workload.kind != scaler.target_kind:
                continue
            current = self.scales.current(scaler, workload.replicas)
            room = quota.room(quotas, live.pods, templates, workload.key, workload.template)
            scale, reads = evaluate(scaler, workload, current, sample,
                                    self.scales.memory(scaler.key), now, room)  # fmt: skip
            if self.scales.record(scaler, current, scale, reads, now):
                changed = True
            self._scaled(scaler, current, scale, now)
        return changed

    def _traffic(
        self, scalers: Sequence[Autoscaler], desired: DesiredState, live: LiveState, now: float
    ) -> tuple[dict[str, float] | None, dict[tuple[str, str, str], frozenset[str]] | None]:
        """Each pod's request rate through this reconciler's Service proxy since the last
        sample, and whom each Service and Ingress sends to: only when a Pods or Object metric
        asks (None: not read, or no earlier count to take a rate from)."""
        if self.proxy is None or not any(m.type in ("Pods", "Object")
                                         for s in scalers for m in s.metrics):  # fmt: skip
            return None, None
        pod_of = {p.ip: p.name for p in live.pods if p.ip}
        totals = {pod_of[ip]: n for ip, n in self.proxy.request_totals().items() if ip in pod_of}
        before = self._served
        rates, self._served = request_rates(before, totals, now)
        return (rates if before else None), routed(desired, self.endpoints)

    def _scaled(self, scaler: Autoscaler, current: int, scale: Scale, now: float) -> None:
        """A rescale's event (SuccessfulRescale), or why no scale could be computed
        (FailedGetResourceMetric, each sample, folded as Kubernetes folds repeats)."""
        broken = failing(scale.conditions)
        if scale.replicas != current:
            found = event(HPA, scaler.namespace, scaler.name, SUCCESSFUL_RESCALE,
                          f"New size: {scale.replicas}; reason: {scale.reason}", now)  # fmt: skip
        elif broken is not None:
            found = event(HPA, scaler.namespace, scaler.name, broken.reason, broken.message, now,
                          warning=True)  # fmt: skip
        else:
            return
        log.info("autoscaler %s/%s: %s", scaler.namespace, scaler.name, found.message)
        if self.events is not None:
            try:
                self.events.record([found])
            except GitopsError as exc:
                log.warning("event not recorded: %s", exc)

    def _listed(self) -> tuple[bool, bool]:
        """Whether a look lists the claims' volumes and the finished Jobs' records: at the
        first look, while the applied commit has claims (Jobs) or a node is known to hold
        volumes (records were found). Without them, two calls a node."""
        desired = self.board.desired
        claims = desired is not None and desired.has_claims
        jobs = desired is not None and desired.has_jobs
        return (not self._looked or claims or self.cluster.holds_volumes(),
                not self._looked or jobs or self._records_found)  # fmt: skip

    def exec_stream(
        self, node: str, container_id: str, command: list[str], tty: bool
    ) -> ExecSession:
        return self._node(node).exec_stream(container_id, command, tty)

    def usage(self, node: str, container_ids: list[str]) -> dict[str, tuple[int, int]]:
        return self._node(node).usage(container_ids)

    def read_logs(self, node: str, container_id: str, query: LogQuery) -> LogStream:
        return self._node(node).read_logs(container_id, query)

    def _node(self, name: str) -> Node:
        """A node a reader names (from a pod it was shown): one of ours, or NodeUnavailable."""
        if name not in self.nodes:
            raise NodeUnavailable(f"node {name} is not one of this reconciler's")
        return self.nodes[name]

    # -- the pipeline ---------------------------------------------------------------------
    def reconcile(
        self, trigger: str = "manual", dry_run: bool = False, fetch: bool = True
    ) -> Outcome:
        """One pass: fetch -> observe -> decide -> act -> report. ``fetch=False`` (a probe
        verdict, a container event, a requeue) converges the head the last fetch found, as
        Flux works from the source it last fetched. A dry run decides and reports to its caller
        only: its ``Effects`` do nothing, so no step asks whether the pass acts."""
        effects = _DryRun() if dry_run else _Acting(self) if self.leading() else _Following(self)
        run = _Pass(trigger, self.clock(), effects)
        try:
            run.revision = self._fetch(run) if fetch or not self._head else self._head
            live = self._look(run)
            desired = self._converging(run, live)
            run.plan, readiness = self._decide(desired, live, run)
            run.applied = run.effects.apply(run.plan, desired, readiness.now)
            if run.applied is not None:
                self._after_apply(run, run.applied)
                live = self._look(run, phase="apply")
                readiness = self._snapshot(live)
            self._judge(run, desired, live, readiness)
            self._failures = 0
        except Exception as exc:  # every way a pass can end is a status (``_Pass.failed``)
            if isinstance(exc, TemporaryError) or not isinstance(exc, GitopsError):
                self._failures += 1  # retried with back-off; a permanent error is not
            run.failed(exc, self._failures, trigger)
        finally:
            status = run.status(self.status, self.clock())
            run.effects.report(status, run)
        return run.outcome(status)

    def _fetch(self, run: _Pass) -> str:
        self.board.fetches_started += 1
        run.fetch = self.board.fetches_started
        try:
            self._head = self.source.fetch()
        except GitopsError:
            self.metrics.fetched(False, run.lap("fetch"))
            raise
        self.metrics.fetched(True, run.lap("fetch"))
        return self._head

    def _look(self, run: _Pass, phase: str = "") -> LiveState:
        if phase:
            run.lap(phase)
        live = self._observe()
        run.lap("observe")
        return live

    def _converging(self, run: _Pass, live: LiveState) -> DesiredState:
        """The desired state this pass converges (the head if valid, else the last valid
        commit), with rollback pins applied."""
        desired, rejected = self._target(run.revision, live, run.effects.acting)
        if rejected is not None:
            run.reject(rejected)
        if desired is None:  # no valid commit yet to fall back on
            assert rejected is not None
            raise rejected
        run.target = desired.commit
        run.warnings = tuple(str(w) for w in desired.manifests.warnings)
        run.renderer = desired.manifests.renderer
        if run.warnings and self._warned != desired.commit:  # once per commit, not per pass
            self._warned = desired.commit
            for warning in run.warnings:
                log.warning("commit %s: %s", desired.commit[:12], warning)
        scaled = self.scales.scaled(desired)  # an autoscaler's scale, not the manifest's count
        return self._gated(self.revisions.apply_pins(scaled), live, run)

    def _gated(self, desired: DesiredState, live: LiveState, run: _Pass) -> DesiredState:
        """Sync hooks: the commit's workloads change once its PreSync Jobs completed (until
        then they stay at the commit they run); its PostSync Jobs run once they are Healthy."""
        gate = hooks.pre_sync(desired, live, self.clock(), self.crash.counts())
        if gate.holding:
            if gate.phase == hooks.FAILED:
                run.hook_failed(gate, self._hook_logs(desired, live, gate))
            return hooks.hold(desired, live, gate, self._loaded)
        if not hooks.post_sync_due(desired, self.status.resources, self.status.applied):
            return hooks.without_post_sync(desired)
        return desired

    def _loaded(self, commit: str) -> DesiredState | None:
        try:
            return self.commits.load(commit)
        except GitopsError as exc:
            log.warning("commit %s cannot be rebuilt to hold its workloads: %s", commit[:12], exc)
            return None

    def _hook_logs(
        self, desired: DesiredState, live: LiveState, gate: hooks.Gate
    ) -> tuple[str, ...]:
        """The failed hook's last log lines, read once from its last pod (kept by the
        reconciler: a HookFailed policy removes the pod)."""
        key = (gate.namespace, gate.job, gate.pod)
        if key not in self._hook_tails:
            dep = desired.deployment(gate.namespace, gate.job)
            pod = next((p for p in live.pods if p.name == gate.pod), None)
            text = ""
            if pod is not None and dep is not None and pod.app_containers():
                try:
                    text = "\n".join(last_lines(self.nodes[pod.node], pod.app_containers()[0].id,
                                                hooks.LOG_LINES))  # fmt: skip
                except (GitopsError, KeyError) as exc:
                    log.debug("logs of %s: %s", pod.name, exc)
            self._hook_tails = {key: hooks.log_tail(text, dep.template) if dep else ()}
        return self._hook_tails[key]

    def _decide(
        self, desired: DesiredState, live: LiveState, run: _Pass
    ) -> tuple[Plan, _Readiness]:
        readiness = self._snapshot(live)
        run.before = readiness
        run.effects.publish(desired, live)  # pods ready now serve before any is replaced
        run.cron = self._cron_times(desired, live, readiness.now)
        plan = make_plan(
            desired, live, self.cluster.views(), self.names, readiness.pods, readiness.now,
            self._restarts(live, readiness.now), self.cluster.evicted, run.cron,
        )  # fmt: skip
        run.lap("plan")
        return plan, readiness

    def _cron_times(
        self, desired: DesiredState, live: LiveState, now: float
    ) -> dict[tuple[str, str], CronTimes]:
        """What each CronJob's schedule says now: the latest schedule time since its last run
        (within its starting deadline), the next one, and the runs asked for by hand."""
        out: dict[tuple[str, str], CronTimes] = {}
        for cj in desired.cronjobs:
            assert cj.cron is not None
            manual = self._manual_runs(cj, live)
            try:
                schedule = self._schedule(cj.cron.schedule, cj.cron.time_zone)
            except cron.CronError as exc:
                out[cj.key] = CronTimes(manual=manual, error=f"spec.schedule: {exc}")
                continue
            records = [r for r in live.records if r.namespace == cj.namespace]
            last = cronjob.last_scheduled(cj, live.of(*cj.key), records)
            # Never run: from when this reconciler first saw it (a CronJob's creation time).
            after = last or self._cron_seen.setdefault(cj.key, now)
            if cj.cron.starting_deadline is not None:
                after = max(after, now - cj.cron.starting_deadline - 1e-3)
            out[cj.key] = CronTimes(schedule.latest(after, now), schedule.next_after(now), manual)
        return out

    def _schedule(self, text: str, zone: str) -> cron.Schedule:
        key = (text, zone)
        if key not in self._schedules:
            self._schedules = {**dict(list(self._schedules.items())[-63:]),
                               key: cron.Schedule(text, zone or None)}  # fmt: skip
        return self._schedules[key]

    def _manual_runs(self, cj: DesiredDeployment, live: LiveState) -> tuple[str, ...]:
        """Runs asked for by ``gitops create job --from=cronjob/NAME``, until they exist."""
        with self._manual_lock:
            asked = self._manual.get(cj.key, [])
            made = {cronjob.run_of(p) for p in live.of(*cj.key)} | {r.job for r in live.records}
            left = [n for n in asked if n not in made]
            self._manual[cj.key] = left
            return tuple(left)

    def run_cronjob(self, namespace: str, name: str) -> str | None:
        """Ask for a run of a CronJob now (its next pass makes it): the run's name, or None
        when the applied commit has no such CronJob."""
        desired = self.desired
        cj = desired.deployment(namespace, name) if desired is not None else None
        if cj is None or cj.cron is None:
            return None
        suffix = (self.names or random_suffix())()
        run = f"{name}-{cronjob.MANUAL}-{suffix}"
        with self._manual_lock:
            self._manual.setdefault(cj.key, []).append(run)
        return run

    def _snapshot(self, live: LiveState) -> _Readiness:
        now = self.clock()
        return _Readiness(live, self._readiness(live, now), now)

    def _after_apply(self, run: _Pass, applied: ApplyResult) -> None:
        """Restarts counted (and their probes started over), nodes that fell silent marked,
        a failure to apply made the pass's result."""
        assert run.plan is not None and run.before is not None
        # The back-off counts from the restart itself, as the kubelet's does, not from when the
        # pass began: a pass slow to get there must not cut the next wait short.
        self._restarted(run.plan, applied, self.clock())
        for node_name, why in applied.silent.items():
            self.cluster.silent(node_name, why)
        if applied.failures and run.rejected is None:
            run.result, run.reason = Result.FAILED, applied.failures[0].reason
            run.message = f"{len(applied.failures)} deployment(s) failed to apply"
            run.errors = tuple(f.message for f in applied.failures)

    def _judge(
        self, run: _Pass, desired: DesiredState, live: LiveState, readiness: _Readiness
    ) -> None:
        """Status of every resource, the rollouts advanced (and a rollback begun), and when to
        look again."""
        plan, applied, now = run.plan, run.applied, readiness.now
        assert plan is not None
        counted = replace(
            live, pods=tuple(p for p in live.pods if p.name not in self.cluster.evicted)
        )
        run.effects.show(applied, plan)
        resources = resource_statuses(
            desired, counted, plan, applied, self.crash.looping(now), readiness.pods, now,
            self.crash.counts(), run.cron,
        )  # fmt: skip
        manifest = self.board.desired if self.board.desired is not None else desired
        starting = {d.key: d.replicas for d in manifest.deployments}
        resources = with_status(resources, desired, starting, self.scales.found())
        run.resources = behind_head(resources, run.revision) if run.rejected else resources
        run.effects.route(desired, live)
        before = run.before
        assert before is not None

        def failure(dep: DesiredDeployment) -> str:
            found = applied.failure_for(*dep.key) if applied else None
            return found.message if found is not None else ""

        reason = self.prober.reason if self.prober is not None else lambda _: ""
        failed = self.prober.failed if self.prober is not None else lambda _: ""
        rolling_back = run.effects.track(
            desired,
            run.resources,
            now,
            Questions(
                stuck=lambda d: deployment.stuck(d, live.of(*d.key), failure(d), reason),
                failed=lambda d: deployment.failed_pod(
                    d,
                    live.of(*d.key),
                    failure(d),
                    failed,
                    lambda p, c: self.kept_logs.words(p, c, d.template),
                ),
                settled=lambda d, h: settled(d, h, before.live.of(*d.key), before.pods, before.now),
            ),
        )
        run.effects.happened(plan, applied, desired, live, now)  # right after: its notes wait
        run.effects.runs(plan, live, now)
        run.requeue = run.effects.requeue(
            requeue.after_pass(plan, run.resources, rolling_back, self.clock())
        )

    # -- stages -----------------------------------------------------------------------------
    def container_stopped(self, container_id: str) -> None:
        """The engine said a container no longer runs: its pod is not Ready from now until an
        observation made since says otherwise, and the endpoints follow at once (a pass may
        be busy for a while; a lone container's address may meanwhile go to another pod)."""
        with self._stopped_lock:
            self._stopped[container_id] = self.clock()
        self.refresh_endpoints()

    def _observe(self) -> LiveState:
        started, moved = self.clock(), self.board.moves.count  # a move during it counts
        volumes, records = self._listed()
        live = observe(list(self.nodes.values()), volumes, records)
        self.board.seen = (started, live, moved)
        if records:
            self._records_found = bool(live.records)
        self._looked = True
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
        return RestartPolicy(unhealthy, not_before, self.crash.counts(), self.settings.job_backoff)

    def _route(self, desired: DesiredState, live: LiveState) -> None:
        """Services balance over the pods that are ready now, also when reached by name."""
        self._publish(desired, live)
        # The plan makes the name proxies whether or not this process serves NodePorts (a
        # one-off sync too): they are fed here alike.
        self.service_names.publish(self.endpoints, live, self.cluster.usable)
        if self.dns is not None:
            with self._routing:
                leaving = set(self._leaving_pods)
            records = clusterdns.records(desired, live, self._ready, leaving)
            self.dns.publish(records, self._dns_addresses(desired))

    def _dns_addresses(self, desired: DesiredState) -> dict[tuple[str, str], str]:
        """Where each node's pods of each namespace ask the cluster DNS."""
        out = {}
        for name, node in self.nodes.items():  # a NotReady node's pods may still be asking
            for ns in desired.namespaces:
                try:
                    address = node.dns_address(ns)
                except GitopsError as exc:
                    log.debug("cluster DNS address of %s on %s: %s", ns, name, exc)
                    continue
                if address is not None:
                    out[(name, ns)] = address
        return out

    def refresh_endpoints(self) -> None:
        """A probe verdict changed: endpoints follow at once, from the last observation, without
        waiting for a pass (one may be busy for a while, stopping a pod in its grace period)."""
        routed = self._routed
        if routed is None or not self.leading():  # a follower leaves the proxies to the leader
            return
        try:
            self._route(*routed)
        except GitopsError as exc:
            log.warning("endpoints not refreshed: %s", exc)

    def resume(self) -> None:
        """This process became the leader: what the one before it changed in the state
        database is read again (cordons, evictions, claims' volumes, scales, rollout records,
        probe verdicts), and its proxies are driven from the next pass."""
        self.cluster.reload()
        self.scales.reload()
        self.revisions.forget()
        if self.prober is not None:
            self.prober.carry(self.history.facts.ready_containers())

    def _publish(self, desired: DesiredState, live: LiveState) -> None:
        """Endpoints from the freshest probe verdicts; pods being stopped never come back."""
        with self._routing:
            self._routed = (desired, live)
            self._leaving_pods &= {p.name for p in live.pods}
            table = endpoints.compute(desired, live, self._ready, self._leaving_pods)
            routes = ingress.compute(desired, table)
            if self.proxy is not None:
                self.proxy.update(table, routes)
            # Shown only once the proxy has them: what `get endpoints` lists answers.
            self.board.endpoints, self.board.ingress = tuple(table), routes
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
                # A start the engine refused is backed off like a crash, as the kubelet backs
                # off a failing start: not retried on every event (an engine shutting down
                # answers each one with an error, and may leak the container's mounts).
                for cid in r.container_ids:
                    self.crash.record(cid, now)
                continue
            if not r.restarts:
                continue  # first starts of an initializing pod's containers
            self.metrics.restarted(r.pod.namespace, r.pod.deployment)
            for cid in r.restarts:
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

    def _last_good(self) -> DesiredState | None:
        if self.desired is None:
            commit = self.history.facts.last_good()
            if commit:  # after a restart: rebuild from git, the source of truth
                try:
                    self.board.desired = self.commits.load(commit)
                except GitopsError as exc:
                    log.error("last good commit %s cannot be loaded: %s", commit[:12], exc)
        return self.desired


@dataclass(frozen=True)
class _Readiness:
    """The pods' readiness as one look found it, and when."""

    live: LiveState
    pods: dict[str, PodReadiness]
    now: float


class _Pass:
    """One pass's facts as it goes, and how it ended: every exit path makes one status."""

    def __init__(self, trigger: str, started: float, effects: _Effects) -> None:
        self.trigger, self.started, self.effects = trigger, started, effects
        self.revision = self.target = ""
        self.fetch = 0  # the number of the fetch this pass began, if it fetched
        self.rejected: PermanentError | None = None
        self.plan: Plan | None = None
        self.applied: ApplyResult | None = None
        self.before: _Readiness | None = None  # as found, before this pass acted
        self.resources: tuple[ResourceStatus, ...] | None = None
        self.requeue: float | None = None
        self.retry = False  # a temporary failure: the next pass reads git again
        self.result, self.reason, self.message = Result.SUCCEEDED, Reason.SUCCEEDED, ""
        self.errors: tuple[str, ...] = ()
        self.warnings: tuple[str, ...] = ()  # fields the converged commit has that are ignored
        self.renderer = ""
        self.counted_as = ""  # the metric's result when it is not the status's
        self.cron: dict[tuple[str, str], CronTimes] = {}  # what each CronJob's schedule says
        self.phases = _Phases()

    def lap(self, phase: str) -> float:
        return self.phases.lap(phase)

    def reject(self, exc: PermanentError) -> None:
        """The head commit is invalid: the pass converges the last valid one, and fails."""
        self.rejected = exc
        self.result, self.reason = Result.FAILED, exc.reason
        self.message, self.errors = str(exc).splitlines()[0], tuple(_lines(exc))

    def hook_failed(self, gate: hooks.Gate, logs: tuple[str, ...]) -> None:
        """A PreSync Job of the commit failed: nothing of it rolls, and the pass says why."""
        self.result, self.reason = Result.FAILED, Reason.HOOK_FAILED
        self.message = f"{gate.describe()}; the workloads stay at the commit they run"
        self.errors = (self.message, *(f"{gate.pod}: {line}" for line in logs))

    def failed(self, exc: Exception, failures: int, trigger: str) -> None:
        self.result = Result.FAILED
        if isinstance(exc, TemporaryError):
            self.reason, self.message, self.errors = exc.reason, str(exc), (str(exc),)
            self.requeue = requeue.after_failure(exc.delay, failures)
            self.retry = True
        elif isinstance(exc, GitopsError):
            self.reason = exc.reason
            self.message, self.errors = str(exc).splitlines()[0], tuple(_lines(exc))
        else:  # a bug or an unclassified fault: a Failed pass, never a crash
            log.exception("pass (%s) failed with an internal error", trigger)
            self.reason, self.message = Reason.INTERNAL, internal(exc)
            self.errors, self.counted_as = (self.message,), "error"
            self.requeue = requeue.after_failure(requeue.INTERNAL_RETRY, failures)
            self.retry = True

    def status(self, previous: SyncStatus, now: float) -> SyncStatus:
        return SyncStatus(
            revision=self.revision or previous.revision,
            applied=self.target or previous.applied,
            result=self.result,
            reason=self.reason,
            message=self.message,
            errors=self.errors,
            warnings=self.warnings or (previous.warnings if not self.target else ()),
            renderer=self.renderer if self.target else previous.renderer,
            time=now,
            resources=previous.resources if self.resources is None else self.resources,
        )

    def outcome(self, status: SyncStatus) -> Outcome:
        return Outcome(status, self.plan, self.applied, self.requeue, self.errors, self.retry)


class _Effects:
    """What a pass does to the world beyond deciding. ``_Acting`` does it; ``_DryRun``
    (``gitops diff``, ``--dry-run``) does none of it, so a dry run is a property of the run."""

    acting = False

    def apply(self, plan: Plan, desired: DesiredState, now: float) -> ApplyResult | None:
        return None

    def publish(self, desired: DesiredState, live: LiveState) -> None:
        """Endpoints from the readiness of this look, before the pass replaces any pod."""

    def show(self, applied: ApplyResult | None, plan: Plan) -> None:
        """What ``get pods`` shows beside the live pods: unstarted and pending ones."""

    def route(self, desired: DesiredState, live: LiveState) -> None:
        """Services balance over the pods ready now."""

    def track(
        self,
        desired: DesiredState,
        resources: tuple[ResourceStatus, ...],
        now: float,
        ask: Questions,
    ) -> bool:
        """Rollout records advanced; True when a rollback was begun."""
        return False

    def runs(self, plan: Plan, live: LiveState, now: float) -> None:
        """Jobs that ended written to the history, once."""

    def happened(
        self, plan: Plan, applied: ApplyResult | None, desired: DesiredState, live: LiveState,
        now: float,
    ) -> None:  # fmt: skip
        """The pass's events recorded."""

    def requeue(self, after: float | None) -> float | None:
        return None

    def report(self, status: SyncStatus, run: _Pass) -> None:
        log.debug("pass (%s, dry run): %s", run.trigger, run.phases)


class _DryRun(_Effects):
    pass


class _Following(_Effects):
    """Another process leads: what a pass found is shown to this process's readers (the
    board), and nothing is changed or written: not the engines, the proxies, nor the state."""

    def __init__(self, rec: Reconciler) -> None:
        self.rec = rec

    def show(self, applied: ApplyResult | None, plan: Plan) -> None:
        board = self.rec.board
        board.pending, board.blocked = plan.pending, plan.blocked
        board.changes = tuple(plan.describe())

    def report(self, status: SyncStatus, run: _Pass) -> None:
        self.rec.reporter.show(status, run.trigger)
        if run.fetch:
            self.rec.board.fetches_finished = run.fetch
        log.debug("pass (%s, following): %s", run.trigger, run.phases)


class _Acting(_Effects):
    acting = True

    def __init__(self, rec: Reconciler) -> None:
        self.rec = rec
        self._held: list[Event] = []  # notifications of judging the rollouts, not yet written

    def apply(self, plan: Plan, desired: DesiredState, now: float) -> ApplyResult | None:
        if plan.empty:
            return None
        rec = self.rec
        rec.kept_logs.before_removal(plan.remove, rec.crash.counts())
        return apply_plan(
            plan, rec.nodes, desired, rec._acting, rec.settings.workers, rec.pulls, now,
            rec._leave_services,
        )  # fmt: skip

    def publish(self, desired: DesiredState, live: LiveState) -> None:
        self.rec._publish(desired, live)

    def show(self, applied: ApplyResult | None, plan: Plan) -> None:
        self.rec.board.unstarted = tuple(applied.unstarted) if applied else ()
        self.rec.board.pending = plan.pending
        self.rec.board.blocked = plan.blocked
        self.rec.board.changes = tuple(plan.describe())
        if applied is not None and applied.changed:  # its look predates what it changed
            self.rec.board.seen = None

    def route(self, desired: DesiredState, live: LiveState) -> None:
        self.rec._route(desired, live)

    def track(
        self,
        desired: DesiredState,
        resources: tuple[ResourceStatus, ...],
        now: float,
        ask: Questions,
    ) -> bool:
        recorder = self.rec.recorder
        if recorder is None:
            return self.rec.revisions.track(desired, resources, now, ask)
        with recorder.held() as held:  # written after the pass's own events (happened)
            try:
                return self.rec.revisions.track(desired, resources, now, ask)
            finally:
                self._held = list(held)

    def runs(self, plan: Plan, live: LiveState, now: float) -> None:
        self.rec.runs.track(plan.records_write, live, now)

    def happened(
        self, plan: Plan, applied: ApplyResult | None, desired: DesiredState, live: LiveState,
        now: float,
    ) -> None:  # fmt: skip
        rec = self.rec
        if rec.recorder is None:
            return
        prober = rec.prober
        unhealthy = prober.take_unhealthy() if prober is not None else {}
        held, self._held = self._held, []
        found: list[ObjectEvent] = []
        try:
            found, rec._replicas = pass_events(plan, applied, desired, live, rec._replicas,
                                               unhealthy, now)  # fmt: skip
        finally:  # the notifications go out whatever became of the pass's own events
            rec.recorder.after_pass(held, found)

    def requeue(self, after: float | None) -> float | None:
        return after

    def report(self, status: SyncStatus, run: _Pass) -> None:
        rec = self.rec
        result = run.counted_as or status.result
        rec.reporter.report(status, run.trigger, run.started, run.applied, run.target, result)
        if run.fetch:
            rec.board.fetches_finished = run.fetch
        run.lap("report")
        log.debug("pass (%s): %s", run.trigger, run.phases)


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
