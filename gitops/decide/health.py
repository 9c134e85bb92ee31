"""Health of each kind, as pure functions of desired and live state (Argo CD's vocabulary).

Deciding code: imports nothing that talks to the outside world.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gitops.decide.desired import DesiredDeployment
from gitops.model.live import ContainerInfo, PodInfo
from gitops.model.verdicts import Health


@dataclass(frozen=True)
class PodReadiness:
    """Whether a pod serves, and since when (to apply ``minReadySeconds``)."""

    ready: bool
    since: float = 0.0


@dataclass(frozen=True)
class Replicas:
    desired: int
    current: int  # every live pod of the deployment
    updated: int  # pods of the current template
    ready: int  # updated pods that are running and pass their health check
    available: int
    # Ready pods of any template: the pods that serve (Kubernetes' readyReplicas, kubectl's
    # READY), old ones among them while a rollout is paused or under way.
    serving: int = 0

    @property
    def unavailable(self) -> int:
        return max(0, self.desired - self.available)


def count_replicas(
    dep: DesiredDeployment,
    pods: list[PodInfo],
    readiness: Mapping[str, PodReadiness] | None = None,
    now: float = math.inf,
) -> Replicas:
    """Ready: passes readiness now; available: ready for ``minReadySeconds`` (any template)."""
    if readiness is None:
        readiness = {p.name: PodReadiness(p.healthy) for p in pods}
    # A ReplicaSet's pods of an older template are its replicas all the same: it never rolls.
    updated = [p for p in pods if p.template_hash == dep.template.template_hash or not dep.rolls]

    def is_ready(p: PodInfo) -> bool:
        r = readiness.get(p.name)
        return r is not None and r.ready

    ready = sum(1 for p in updated if is_ready(p))
    available = sum(
        1 for p in pods if is_ready(p) and now - readiness[p.name].since >= dep.min_ready_seconds
    )
    serving = sum(1 for p in pods if is_ready(p))
    return Replicas(
        dep.replicas, len(pods), len(updated), ready, min(available, dep.replicas), serving
    )


def _exited(pods: list[PodInfo], looping: Mapping[str, int]) -> str | None:
    for pod in pods:
        for c in pod.app_containers():
            if c.id in looping:
                name = c.meta.container or c.name
                return (
                    f"CrashLoopBackOff: container {name} of pod {pod.name} restarted "
                    f"{looping[c.id]} times; now {c.status or c.state}"
                )
            if c.state in ("exited", "dead"):
                name = c.meta.container or c.name
                return f"container {name} of pod {pod.name}: {c.status}"
    return None


def deployment_health(
    dep: DesiredDeployment,
    pods: list[PodInfo],
    failure: str | None,
    looping: Mapping[str, int] | None = None,
    readiness: Mapping[str, PodReadiness] | None = None,
    now: float = math.inf,
) -> tuple[str, str, Replicas]:
    """(health, message, replica counts) of one deployment."""
    reps = count_replicas(dep, pods, readiness, now)
    if failure:
        return Health.DEGRADED, failure, reps
    if dep.rolled_back:
        return Health.DEGRADED, dep.rolled_back, reps
    if dep.paused:
        return Health.SUSPENDED, "deployment is paused", reps
    if dep.replicas == 0:
        return (
            (Health.HEALTHY, "scaled to zero", reps)
            if not pods
            else (Health.PROGRESSING, "scaling down", reps)
        )
    if not pods:
        return Health.MISSING, "no pod exists", reps
    current = [p for p in pods if p.template_hash == dep.template.template_hash or not dep.rolls]
    crashed = _exited(current, looping or {})
    if crashed:
        return Health.DEGRADED, crashed, reps
    if (
        reps.ready >= dep.replicas
        and reps.available >= dep.replicas
        and reps.current == dep.replicas
    ):
        return Health.HEALTHY, f"{reps.ready}/{dep.replicas} ready", reps
    return (
        Health.PROGRESSING,
        f"{reps.updated} updated, {reps.ready} ready of {dep.replicas}; {reps.current} pods in all",
        reps,
    )


class ReadinessTracker:
    """Remembers since when each pod has been ready, so ``minReadySeconds`` can be applied.

    Pure state fed with observations and the injected clock. After a reconciler restart it
    starts afresh: a pod counts as ready from the first observation, which only delays.
    """

    def __init__(self) -> None:
        self._state: dict[str, PodReadiness] = {}

    def observe(self, ready: Mapping[str, bool], now: float) -> dict[str, PodReadiness]:
        state: dict[str, PodReadiness] = {}
        for name, is_ready in ready.items():
            before = self._state.get(name)
            if before is not None and before.ready == is_ready:
                state[name] = before
            else:
                state[name] = PodReadiness(is_ready, now)
        self._state = state
        return dict(state)

    def last(self) -> Mapping[str, PodReadiness]:
        """As the last observation left it (read from other threads: replaced whole)."""
        return self._state


class Backoff:
    """Exponential back-off per key (a container to restart, an image to pull).

    The first retry may happen at once; each further one waits ``initial`` doubling up to
    ``maximum``; a key left alone for ``reset_after`` seconds starts over. Kubernetes' crash
    loop back-off is 10 s doubling to 5 min, reset after 10 min running.
    """

    def __init__(
        self, initial: float = 10.0, maximum: float = 300.0, reset_after: float = 600.0
    ) -> None:
        self.initial, self.maximum, self.reset_after = initial, maximum, reset_after
        self._attempts: dict[str, tuple[int, float]] = {}  # key -> (retries so far, last retry)
        self._total: dict[str, int] = {}  # never reset: the restart count users see

    def not_before(self, key: str, now: float) -> float:
        attempts, last = self._attempts.get(key, (0, 0.0))
        if attempts and now - last >= self.reset_after:
            self._attempts.pop(key, None)
            return now
        if attempts == 0:
            return now
        return last + min(self.maximum, self.initial * 2.0 ** (attempts - 1))

    def record(self, key: str, now: float) -> None:
        attempts, _ = self._attempts.get(key, (0, 0.0))
        self._attempts[key] = (attempts + 1, now)
        self._total[key] = self._total.get(key, 0) + 1

    def count(self, key: str) -> int:
        """Retries since the last reset (what the delay is computed from)."""
        return self._attempts.get(key, (0, 0.0))[0]

    def clear(self, key: str) -> None:
        self._attempts.pop(key, None)

    def counts(self) -> dict[str, int]:
        """Every retry ever recorded per key (a container's restart count)."""
        return dict(self._total)

    def looping(self, now: float) -> dict[str, int]:
        """Keys retried more than once within ``reset_after``: in a crash loop."""
        return {
            k: n
            for k, (n, last) in self._attempts.items()
            if n >= 2 and now - last < self.reset_after
        }


def pod_ready(pod: PodInfo, probe_ready: Callable[[str], bool | None]) -> bool:
    """All app containers running and ready: by their readiness probe where they have one,
    else by the image's own HEALTHCHECK where it has one, else by running."""
    return pod.running and all(container_ready(c, probe_ready) for c in pod.app_containers())


def container_ready(c: ContainerInfo, probe_ready: Callable[[str], bool | None]) -> bool:
    """Running, and passing its readiness probe, or else its image's HEALTHCHECK if it has one."""
    if c.state != "running":
        return False
    verdict = probe_ready(c.id)
    return c.health in (None, "healthy") if verdict is None else verdict


class NodeTracker:
    """When each node last answered, and what follows: Ready, NotReady after ``grace``
    seconds of silence, lost (its pods to be replaced) after ``eviction`` seconds.

    Pure state fed with contact results and the injected clock. A node counts as answering from
    when it is first tracked, as the Kubernetes node controller gives a node its grace period.
    """

    def __init__(self, grace: float, eviction: float) -> None:
        self.grace, self.eviction = grace, max(grace, eviction)
        self._last_ok: dict[str, float] = {}
        self._error: dict[str, str] = {}

    def track(self, node: str, now: float) -> None:
        self._last_ok.setdefault(node, now)

    def contact(self, node: str, now: float, error: str | None = None) -> None:
        self.track(node, now)
        if error is None:
            self._last_ok[node] = now
            self._error.pop(node, None)
        else:
            self._error[node] = error

    def ready(self, node: str, now: float) -> bool:
        """Its status: Ready until it has been silent for the grace period."""
        return now - self._last_ok.get(node, now) < self.grace

    def usable(self, node: str, now: float) -> bool:
        """Ready and its last contact answered: gets new pods, and its pods get traffic."""
        return self.ready(node, now) and node not in self._error

    def lost(self, node: str, now: float) -> bool:
        return now - self._last_ok.get(node, now) >= self.eviction

    def silent_for(self, node: str, now: float) -> float:
        return now - self._last_ok.get(node, now)

    def error(self, node: str) -> str:
        return self._error.get(node, "")

    def state(self, node: str, now: float) -> tuple[bool, bool, bool]:
        """(ready, usable, lost): a change of any is worth a pass."""
        return self.ready(node, now), self.usable(node, now), self.lost(node, now)
