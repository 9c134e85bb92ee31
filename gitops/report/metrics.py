"""Prometheus metrics: the one module that imports prometheus_client.

Two kinds. Counters and histograms of what this process did (reconcile passes, git fetches,
container restarts, drift corrections), fed by the reconciler once per pass. And gauges of the
current state, read at scrape time from the reconciler's last status, its cluster view and the
history database, kube-state-metrics style, so no label set goes stale: per deployment an info
gauge with sync and health status and revision, and its replica counts; per node readiness;
rollouts by result and rollbacks by reason (durable: they come from SQLite). Names start with
``gitops_``, units are in the names, and no counter carries a commit or pod name as a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from gitops.config import build
from gitops.decide.webhooks import PROVIDERS
from gitops.model.verdicts import Result, Rollout

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REASON_KINDS = ("readiness", "liveness", "startup", "pull", "exit", "deadline", "other")
ROLLOUT_RESULTS = (Rollout.COMPLETE, Rollout.FAILED, Rollout.SUPERSEDED)
REPLICAS = ("desired", "current", "updated", "ready", "available", "unavailable")


@dataclass(frozen=True)
class StateSource:
    """Where the scrape-time gauges come from (callables, so this module needs no reconciler)."""

    status: Callable[[], Any]  # SyncStatus
    nodes: Callable[[], list[dict[str, Any]]]  # Cluster.describe()
    rollout_counts: Callable[[], list[tuple[str, str, bool, int]]]  # History.rollout_counts
    source: Callable[[], tuple[str, str]]  # (repository as shown, branch)
    # Notifier.results: deliveries by (format, event, result)
    notifications: Callable[[], dict[tuple[str, str, str], int]] = dict
    # HAProxy's own exposition of its backends, and the Ingress routes (an IngressTable)
    # that say which backend is which Ingress, host and Service
    ingress: Callable[[], tuple[str, Any]] = lambda: ("", None)
    # The HorizontalPodAutoscalers' rows (``gitops.serve.autoscalers.rows``)
    autoscalers: Callable[[], list[dict[str, Any]]] = list
    # --leader-elect: (lease name, whether this process leads, times it became or stopped
    # being the leader); None without an election
    leader: Callable[[], tuple[str, bool, int] | None] = lambda: None


class _Ingress(Collector):
    """HAProxy's per-backend metrics (its built-in exporter) of the Ingress pools, under
    HAProxy's names, labelled with the namespace, Ingress, host, Service and port of each."""

    def __init__(self, source: Callable[[], tuple[str, Any]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        text, table = self.source()
        if not text or table is None:
            return
        pools = {p.name: p for p in table.pools}
        try:
            families = list(text_string_to_metric_families(text))
        except ValueError:  # a half answer of a proxy being reloaded: next scrape
            return
        for family in families:
            if not family.name.startswith("haproxy_backend_"):
                continue
            out = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                pool = pools.get(sample.labels.get("proxy", ""))
                if pool is None:
                    continue
                labels = {
                    **sample.labels, "namespace": pool.namespace, "ingress": pool.ingress,
                    "host": pool.host or "*", "service": pool.service, "port": pool.port,
                }  # fmt: skip
                out.add_sample(sample.name, labels, sample.value, sample.timestamp)
            if out.samples:
                yield out


class _Autoscalers(Collector):
    """The autoscalers in kube-state-metrics' ``kube_horizontalpodautoscaler_*`` shape, so its
    dashboards and alerts (KubeHpaMaxedOut, KubeHpaReplicasMismatch) work unchanged."""

    def __init__(self, source: Callable[[], list[dict[str, Any]]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        rows = self.source()
        key = ["namespace", "horizontalpodautoscaler"]
        info = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_info", "Information about this autoscaler (value 1)",
            labels=[*key, "scaletargetref_api_version", "scaletargetref_kind",
                    "scaletargetref_name"],
        )  # fmt: skip
        gauges = {
            name: GaugeMetricFamily(f"kube_horizontalpodautoscaler_{name}", text, labels=key)
            for name, text in (
                ("spec_min_replicas", "Lower limit for the number of pods it can scale to"),
                ("spec_max_replicas", "Upper limit for the number of pods it can scale to"),
                ("status_current_replicas", "Current number of replicas of its target"),
                ("status_desired_replicas", "Desired number of replicas of its target"),
            )
        }
        metric = ["metric_name", "metric_target_type"]
        spec_target = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_spec_target_metric",
            "The metric specifications used by this autoscaler when calculating the desired "
            "replica count", labels=[*key, *metric],
        )  # fmt: skip
        status_target = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_status_target_metric",
            "The current metric status used by this autoscaler when calculating the desired "
            "replica count", labels=[*key, *metric],
        )  # fmt: skip
        condition = GaugeMetricFamily(
            "kube_horizontalpodautoscaler_status_condition",
            "The condition of this autoscaler", labels=[*key, "condition", "status"],
        )  # fmt: skip
        for r in rows:
            ids = [r["namespace"], r["name"]]
            kind, _, target = r["reference"].partition("/")
            info.add_metric([*ids, "apps/v1", kind, target], 1.0)
            for name, field in (("spec_min_replicas", "minPods"), ("spec_max_replicas", "maxPods"),
                                ("status_current_replicas", "replicas"),
                                ("status_desired_replicas", "desired")):  # fmt: skip
                gauges[name].add_metric(ids, float(r[field]))
            for m in r["metrics"]:
                shape = "utilization" if m["targetType"] == "Utilization" else (
                    "average" if m["targetType"] == "AverageValue" else "value")  # fmt: skip
                scale = 1.0 if shape == "utilization" else 0.001  # milli-units to units
                if m["goal"] is not None:
                    spec_target.add_metric([*ids, m["name"], shape], m["goal"] * scale)
                if m["value"] is not None:
                    status_target.add_metric([*ids, m["name"], shape], m["value"] * scale)
            for c in r["conditions"]:
                for value in ("true", "false", "unknown"):
                    condition.add_metric([*ids, c["type"], value],
                                         1.0 if c["status"].lower() == value else 0.0)  # fmt: skip
        yield info
        yield from gauges.values()
        yield from (spec_target, status_target, condition)


class _State(Collector):
    def __init__(self, source: StateSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        status = self.source.status()
        repo, branch = self.source.source()
        info = GaugeMetricFamily(
            "gitops_source_info", "The source and the revision last fetched (value 1)",
            labels=["repository", "branch", "revision", "applied"],
        )  # fmt: skip
        info.add_metric([repo, branch, status.revision, status.applied], 1.0)
        yield info
        last = GaugeMetricFamily(
            "gitops_last_sync_success", "1 when the last reconcile pass succeeded, else 0"
        )
        last.add_metric([], 1.0 if status.result == Result.SUCCEEDED else 0.0)
        yield last
        dep_info = GaugeMetricFamily(
            "gitops_deployment_info", "Per deployment: sync and health status, revision (value 1)",
            labels=["namespace", "deployment", "sync_status", "health_status", "revision"],
        )  # fmt: skip
        replicas = {
            k: GaugeMetricFamily(
                f"gitops_deployment_replicas_{k}",
                f"Replicas {k}, per deployment",
                labels=["namespace", "deployment"],
            )
            for k in REPLICAS
        }
        for r in status.resources:
            if r.kind != "Deployment":
                continue
            dep_info.add_metric([r.namespace, r.name, r.sync, r.health, status.applied], 1.0)
            for k in REPLICAS:
                if r.replicas is not None and k in r.replicas:
                    replicas[k].add_metric([r.namespace, r.name], float(r.replicas[k]))
        yield dep_info
        yield from replicas.values()
        yield from _jobs(status.resources)
        yield from _cronjobs(status.resources)
        ready = GaugeMetricFamily(
            "gitops_node_ready", "1 when the node answers and is Ready", labels=["node"]
        )
        pods = GaugeMetricFamily("gitops_node_pods", "Pods on the node", labels=["node"])
        for n in self.source.nodes():
            ready.add_metric([n["name"]], 1.0 if n["status"].startswith("Ready") else 0.0)
            pods.add_metric([n["name"]], float(n["pods"]))
        yield ready
        yield pods
        rollouts = CounterMetricFamily(
            "gitops_rollouts", "Rollouts that ended, by result (from the history database)",
            labels=["result"],
        )  # fmt: skip
        rollbacks = CounterMetricFamily(
            "gitops_rollbacks", "Automatic rollbacks, by the failed rollout's reason kind",
            labels=["reason"],
        )  # fmt: skip
        # Every bounded label value from zero, so the first rollback is an increase that
        # increase() and alerts see, not a series that appears already at 1.
        totals: dict[str, int] = dict.fromkeys(ROLLOUT_RESULTS, 0)
        reasons: dict[str, int] = dict.fromkeys(REASON_KINDS, 0)
        for result, reason, rolled_back, count in self.source.rollout_counts():
            totals[result] = totals.get(result, 0) + count
            if rolled_back:
                kind = _reason_kind(reason)
                reasons[kind] = reasons.get(kind, 0) + count
        for result, count in sorted(totals.items()):
            rollouts.add_metric([result], float(count))
        for kind, count in sorted(reasons.items()):
            rollbacks.add_metric([kind], float(count))
        yield rollouts
        yield rollbacks
        notes = CounterMetricFamily(
            "gitops_notifications", "Notifications sent, by receiver format, event and result",
            labels=["format", "event", "result"],
        )  # fmt: skip
        for (fmt, event, result), count in sorted(self.source.notifications().items()):
            notes.add_metric([fmt, event, result], float(count))
        yield notes
        yield from _leader(self.source.leader())


def _leader(found: tuple[str, bool, int] | None) -> Iterator[Metric]:
    """1 on the process that holds the lease, 0 on a follower (Prometheus' own ``instance``
    label tells which process); the changes count up on each process."""
    if found is None:
        return
    lease, leading, changes = found
    leader = GaugeMetricFamily(
        "gitops_leader", "1 when this process holds the lease and acts, 0 when it follows",
        labels=["lease"],
    )  # fmt: skip
    leader.add_metric([lease], 1.0 if leading else 0.0)
    yield leader
    counted = CounterMetricFamily(
        "gitops_leader_changes", "Times this process became the leader or stopped being it",
        labels=["lease"],
    )  # fmt: skip
    counted.add_metric([lease], float(changes))
    yield counted


JOB_COUNTS = ("active", "succeeded", "failed")


def _jobs(resources: Any) -> Iterator[Metric]:
    """kube-state-metrics' Job gauges: counts, the condition with its reason, and times."""
    labels = ["namespace", "job_name"]
    counts = {
        k: GaugeMetricFamily(f"gitops_job_status_{k}", f"Pods {k}, per Job", labels=labels)
        for k in JOB_COUNTS
    }
    complete = GaugeMetricFamily("gitops_job_complete", "1 when the Job is Complete", labels=labels)
    failed = GaugeMetricFamily(
        "gitops_job_failed", "1 when the Job Failed, with the reason", labels=[*labels, "reason"]
    )
    started = GaugeMetricFamily(
        "gitops_job_status_start_time_seconds", "When the Job started (Unix time)", labels=labels
    )
    done = GaugeMetricFamily(
        "gitops_job_status_completion_time_seconds",
        "When the Job completed (Unix time)",
        labels=labels,
    )
    for r in resources:
        if r.kind != "Job" or r.replicas is None:
            continue
        key = [r.namespace, r.name]
        for k in JOB_COUNTS:
            counts[k].add_metric(key, float(r.replicas.get(k, 0)))
        complete.add_metric(key, 1.0 if r.condition == "Complete" else 0.0)
        if r.condition == "Failed":
            failed.add_metric([*key, r.reason], 1.0)
        if r.replicas.get("startTime"):
            started.add_metric(key, float(r.replicas["startTime"]))
        if r.replicas.get("completionTime"):
            done.add_metric(key, float(r.replicas["completionTime"]))
    yield from counts.values()
    yield from (complete, failed, started, done)


CRON_TIMES = {
    "lastScheduleTime": ("last_schedule_time", "When its last run was scheduled"),
    "lastSuccessfulTime": ("last_successful_time", "When a run of it last succeeded (0: never)"),
    "nextScheduleTime": ("next_schedule_time", "When its next run is due"),
}


def _cronjobs(resources: Any) -> Iterator[Metric]:
    """kube-state-metrics' CronJob gauges: active runs, the last schedule, the last success
    (so an alert fires when a nightly job stops succeeding), the next schedule."""
    labels = ["namespace", "cronjob"]
    active = GaugeMetricFamily(
        "gitops_cronjob_status_active", "Runs of the CronJob active now", labels=labels
    )
    times = {
        key: GaugeMetricFamily(
            f"gitops_cronjob_status_{name}_seconds", f"{text} (Unix time)", labels=labels
        )
        for key, (name, text) in CRON_TIMES.items()
    }
    failed = GaugeMetricFamily(
        "gitops_cronjob_last_run_failed", "1 when its run that ended last failed", labels=labels
    )
    for r in resources:
        if r.kind != "CronJob" or r.replicas is None:
            continue
        key = [r.namespace, r.name]
        active.add_metric(key, float(r.replicas.get("active", 0)))
        for k, family in times.items():
            family.add_metric(key, float(r.replicas.get(k, 0)))
        failed.add_metric(key, 1.0 if r.condition == "Failed" else 0.0)
    yield active
    yield from times.values()
    yield failed


def _reason_kind(reason: str) -> str:
    """A bounded label from a free-text reason."""
    text = reason.lower()
    for kind in REASON_KINDS[:-1]:
        if kind in text:
            return kind
    return "other"


class Metrics:
    def __init__(self, state: StateSource | None = None) -> None:
        self.registry = CollectorRegistry()
        self.passes = Counter(
            "gitops_reconcile", "Reconcile passes, by result", ["result"], registry=self.registry
        )
        self.pass_seconds = Histogram(
            "gitops_reconcile_duration_seconds", "Time one reconcile pass took",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=self.registry,
        )  # fmt: skip
        self.fetches = Counter(
            "gitops_git_fetch", "Fetches of the source, by result", ["result"],
            registry=self.registry,
        )  # fmt: skip
        self.fetch_seconds = Histogram(
            "gitops_git_fetch_duration_seconds", "Time one fetch took", registry=self.registry
        )
        self.restarts = Counter(
            "gitops_container_restarts", "Containers restarted (crashed or failing liveness)",
            ["namespace", "deployment"], registry=self.registry,
        )  # fmt: skip
        self.drift = Counter(
            "gitops_drift_corrections", "Pods created, restarted or removed without a new commit",
            ["action"], registry=self.registry,
        )  # fmt: skip
        self.webhooks = Counter(
            "gitops_webhook_requests", "Webhook requests, by provider and result",
            ["provider", "result"], registry=self.registry,
        )  # fmt: skip
        about = build.info()
        Gauge(
            "gitops_build_info", "This gitops: its version and Python's (always 1)",
            ["version", "python_version"], registry=self.registry,
        ).labels(about["gitVersion"], about["pythonVersion"]).set(1)  # fmt: skip
        if state is not None:
            self.registry.register(_State(state))
            self.registry.register(_Ingress(state.ingress))
            self.registry.register(_Autoscalers(state.autoscalers))

    def webhook(self, provider: str, result: str) -> None:
        # Unknown providers share one label value, so a scanner cannot grow the label set.
        self.webhooks.labels(provider if provider in PROVIDERS else "other", result).inc()

    def fetched(self, ok: bool, seconds: float) -> None:
        self.fetches.labels("success" if ok else "failure").inc()
        self.fetch_seconds.observe(seconds)

    def reconciled(self, result: str, seconds: float) -> None:
        self.passes.labels(result.lower()).inc()
        self.pass_seconds.observe(seconds)

    def restarted(self, namespace: str, deployment: str) -> None:
        self.restarts.labels(namespace, deployment).inc()

    def corrected(self, action: str, count: int) -> None:
        if count:
            self.drift.labels(action).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
