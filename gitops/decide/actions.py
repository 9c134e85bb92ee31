"""The actions a plan holds, and why each is taken: pods to create, restart, remove, or that
no node can take now. Plain values; ``gitops.decide.plan`` gathers them into the ``Plan``.

Pure. Pod names come from an injected ``NameSource`` (random suffixes in Kubernetes'
alphabet; a counter in tests and dry runs, so they are deterministic).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gitops.model.live import PodInfo
from gitops.model.templates import PodTemplate


class Why:
    """Why a pod is created, removed or restarted (shown by ``diff`` and in events)."""

    MISSING = "missing replica"
    OUTDATED = "template changed"
    SURPLUS = "surplus replica"
    PRUNED = "manifest deleted"
    BROKEN = "incomplete pod"
    EXITED = "container exited"
    INIT = "initializing"
    UNHEALTHY_OLD = "template changed, not available"
    DRAINED = "node drained"
    TAINTED = "node taint not tolerated (NoExecute)"
    EVICTED = "node was lost; replaced elsewhere"
    JOB_RUN = "job run"
    JOB_ENDED = "job ended"
    JOB_TTL = "job finished longer ago than ttlSecondsAfterFinished"
    JOB_SUSPENDED = "job suspended"
    JOB_HISTORY = "job past the cronjob's history limit"
    JOB_REPLACED = "job replaced by the cronjob's next run (concurrencyPolicy Replace)"


NameSource = Callable[[], str]
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet: no vowels, no lookalikes


@dataclass(frozen=True)
class NameProxy:
    """A Service's name proxy on a node: what pods of its namespace reach by the Service's
    name (a container in the namespace's network with the name as its DNS aliases)."""

    node: str
    namespace: str
    service: str
    ports: tuple[int, ...] = ()


def random_suffix(length: int = 5) -> NameSource:
    rng = random.SystemRandom()
    return lambda: "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(length))


def counter_suffix() -> NameSource:
    """Deterministic names for tests and dry runs."""
    n = iter(range(10**9))
    return lambda: "".join(string.ascii_lowercase[int(d)] for d in f"{next(n):05d}")


@dataclass(frozen=True)
class Create:
    template: PodTemplate
    pod: str
    node: str
    why: str


@dataclass(frozen=True)
class Remove:
    pod: PodInfo
    why: str


@dataclass(frozen=True)
class Restart:
    pod: PodInfo
    container_ids: tuple[str, ...]
    why: str
    running: tuple[str, ...] = ()  # of those, the ones still running (failed liveness): stop first
    # of those, the ones never started (the next init container, or the app containers once
    # the init containers completed): a first start, not a restart (no back-off, not counted)
    fresh: tuple[str, ...] = ()

    @property
    def restarts(self) -> tuple[str, ...]:
        return tuple(cid for cid in self.container_ids if cid not in self.fresh)


@dataclass(frozen=True)
class Pending:
    """Replicas no node can take now, and why (kube-scheduler's words)."""

    namespace: str
    deployment: str
    count: int
    reason: str
    refused: bool = False  # by the namespace's ResourceQuota, not for want of a node


@dataclass(frozen=True)
class RestartPolicy:
    """Which containers to restart now: exited ones, and running ones that failed liveness or
    startup (``unhealthy``: id -> reason), each once its back-off (``not_before``) allows."""

    unhealthy: Mapping[str, str] = field(default_factory=dict)
    not_before: Mapping[str, float] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)  # container id -> its restarts
    # A Job's next pod after failures: 10 s doubling to 6 min, as the Job controller waits.
    pod_backoff: tuple[float, float] = (10.0, 360.0)

    def restarted(self, container_id: str) -> int:
        return self.counts.get(container_id, 0)

    def pending(self, pod: PodInfo) -> list[tuple[str, bool, str]]:
        """(container id, running now, why) of each container to (re)start. While an init
        container has not completed, it alone: the next one starts once the one before it
        exited with 0, a failed one restarts (with back-off), the app containers wait."""
        waiting = pod.initializing
        if waiting is not None:
            name = waiting.meta.container or waiting.name
            if waiting.state == "created":
                return [(waiting.id, False, f"{Why.INIT}: start init container {name}")]
            if waiting.state in ("exited", "dead"):
                return [
                    (waiting.id, False, f"{Why.EXITED}: init container {name} {waiting.status}")
                ]
            return []  # running: the app containers wait for it
        out = []
        for c in pod.app_containers():
            if c.state == "created":
                out.append((c.id, False, f"{Why.INIT}: init containers completed"
                            if pod.init_containers() else f"{Why.EXITED}: {c.status}"))  # fmt: skip
            elif c.state in ("exited", "dead"):
                out.append((c.id, False, f"{Why.EXITED}: {c.status}"))
            elif c.state == "running" and c.id in self.unhealthy:
                out.append((c.id, True, self.unhealthy[c.id]))
        return out

    def due(self, pod: PodInfo, now: float) -> Restart | None:
        ready = [p for p in self.pending(pod) if self.not_before.get(p[0], now) <= now]
        if not ready:
            return None
        # Never started, in a pod whose init containers order the starts. (A lone "created"
        # container elsewhere failed to start, and is restarted with back-off as before.)
        fresh = (
            {c.id for c in pod.containers if c.state == "created"}
            if pod.init_containers()
            else set()
        )
        return Restart(
            pod,
            tuple(cid for cid, _, _ in ready),
            "; ".join(why for _, _, why in ready),
            tuple(cid for cid, running, _ in ready if running),
            tuple(cid for cid, _, _ in ready if cid in fresh),
        )

    def next_wake(self, pods: Sequence[PodInfo], now: float) -> float | None:
        times = [
            self.not_before[cid]
            for pod in pods
            for cid, _, _ in self.pending(pod)
            if self.not_before.get(cid, now) > now
        ]
        return min(times, default=None)
