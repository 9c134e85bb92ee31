"""What a Job adds to a workload: its run-to-completion fields, its pods' identities, and the
sync hook it may be. Pure.

``Batch`` holds the Job's own fields (``batch_of``); ``indexed_template`` makes the template of
the pod of completion index i (``completionMode: Indexed``): the index in the label and
annotation Kubernetes gives it, and in ``JOB_COMPLETION_INDEX`` in every container. The
template hash is the Job's: a Job runs once per distinct template.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gitops.manifests import model as m
from gitops.model.live import PodInfo
from gitops.model.templates import EnvVar, PodTemplate

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
# The labels Kubernetes gives a Job's pods, so Services and `-l job-name=…` find them.
JOB_NAME_KEYS = ("batch.kubernetes.io/job-name", "job-name")
# Sync hooks: gitops' annotation, and Argo CD's, read alike.
HOOK_KEYS = ("gitops.io/hook", "argocd.argoproj.io/hook")
HOOK_DELETE_KEYS = ("gitops.io/hook-delete-policy", "argocd.argoproj.io/hook-delete-policy")
PRE_SYNC, POST_SYNC = "PreSync", "PostSync"
HOOKS = (PRE_SYNC, POST_SYNC)


@dataclass(frozen=True)
class FailureRule:
    """One ``podFailurePolicy`` rule: what a failed pod matching it does to the Job."""

    action: str  # FailJob | Ignore | Count
    container: str = ""  # onExitCodes.containerName ("" any)
    operator: str = "In"
    values: tuple[int, ...] = ()

    def matches(self, pod: PodInfo) -> str:
        """The container whose exit code matches, "" when none does."""
        for c in (*pod.init_containers(), *pod.app_containers()):
            code = c.exit_code
            if code is None or code == 0 or (self.container and c.meta.container != self.container):
                continue
            if (code in self.values) == (self.operator == "In"):
                return f"container {c.meta.container} exited with {code}"
        return ""


@dataclass(frozen=True)
class Batch:
    completions: int | None = 1  # None: a work queue (done when one pod succeeded)
    parallelism: int = 1
    indexed: bool = False
    backoff_limit: int = 6
    active_deadline: int | None = None
    ttl: int | None = None  # ttlSecondsAfterFinished
    suspend: bool = False
    rules: tuple[FailureRule, ...] = ()
    on_failure: bool = False  # restartPolicy OnFailure: containers restart in place
    hook: str = ""  # PreSync | PostSync | "" (a plain Job)
    hook_delete: tuple[str, ...] = ()

    def deletes_on(self, policy: str) -> bool:
        return policy in self.hook_delete


def _annotation(meta: m.ObjectMeta, keys: tuple[str, ...]) -> str:
    return next((meta.annotations[k] for k in keys if k in meta.annotations), "")


def hook_of(meta: m.ObjectMeta) -> tuple[str, tuple[str, ...]]:
    """The sync hook an object's annotations make it (``""`` none), and its delete policies."""
    hook = _annotation(meta, HOOK_KEYS).strip()
    policies = _annotation(meta, HOOK_DELETE_KEYS)
    return hook, tuple(p.strip() for p in policies.split(",") if p.strip())


@dataclass(frozen=True)
class Cron:
    """A CronJob's own fields (its Jobs' are its ``Batch``)."""

    schedule: str
    time_zone: str = ""
    concurrency: str = "Allow"  # Allow | Forbid | Replace
    starting_deadline: int | None = None
    suspend: bool = False
    keep_succeeded: int = 3
    keep_failed: int = 1


@dataclass(frozen=True)
class CronTimes:
    """What a CronJob's schedule says now: the latest time a run is due for (None: none is),
    and the next time it fires; ``manual``: runs asked for by hand, by name."""

    due: float | None = None
    next: float | None = None
    manual: tuple[str, ...] = ()
    error: str = ""


def cron_of(res: m.CronJob) -> Cron:
    spec = res.spec
    return Cron(
        spec.schedule,
        spec.time_zone or "",
        spec.concurrency_policy,
        spec.starting_deadline_seconds,
        spec.suspend,
        spec.successful_jobs_history_limit,
        spec.failed_jobs_history_limit,
    )


def batch_of(res: m.Job | m.CronJob) -> Batch:
    spec = res.spec if isinstance(res, m.Job) else res.spec.job_template.spec
    completions = spec.completions
    if completions is None and spec.parallelism <= 1:
        completions = 1  # Kubernetes' default: one pod to succeed
    rules = spec.pod_failure_policy.rules if spec.pod_failure_policy else []
    hook, deletes = hook_of(res.metadata)
    return Batch(
        completions=completions,
        parallelism=spec.parallelism,
        indexed=spec.completion_mode == "Indexed",
        backoff_limit=spec.backoff_limit,
        active_deadline=spec.active_deadline_seconds,
        ttl=spec.ttl_seconds_after_finished,
        suspend=spec.suspend,
        rules=tuple(
            FailureRule(
                r.action,
                r.on_exit_codes.container_name or "",
                r.on_exit_codes.operator,
                tuple(r.on_exit_codes.values),
            )
            for r in rules
            if r.on_exit_codes is not None  # pod conditions: gitops' pods carry none
        ),
        on_failure=spec.template.spec.restart_policy == "OnFailure",
        hook=hook if hook in HOOKS else "",
        hook_delete=deletes,
    )


def job_labels(name: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, name) for k in JOB_NAME_KEYS)


def indexed_template(template: PodTemplate, index: int) -> PodTemplate:
    """The template of the pod of completion ``index``; its hash stays the Job's."""
    value = str(index)
    env = EnvVar(INDEX_ENV, value)
    return replace(
        template,
        labels=tuple(sorted((*template.labels, (INDEX_KEY, value)))),
        annotations=tuple(sorted((*template.annotations, (INDEX_KEY, value)))),
        containers=tuple(replace(c, env=(*c.env, env)) for c in template.containers),
        init_containers=tuple(replace(c, env=(*c.env, env)) for c in template.init_containers),
    )


def index_of(pod: PodInfo) -> int | None:
    text = pod.labels().get(INDEX_KEY, "")
    return int(text) if text.isascii() and text.isdigit() else None
