"""Probe bookkeeping per container, with Kubernetes' semantics. Pure: the clock is passed in.

In: the live pods (probe specs ride on container labels) and probe results. Out: which probes
are due (``ProbeTask``), each container's readiness, and the containers whose liveness or
startup probe failed (to be restarted). Rules, as the kubelet applies them:

- a startup probe, while it has not succeeded, is the only probe run; readiness and liveness
  start after it (their ``initialDelaySeconds`` still counted from the container's start);
- readiness starts False and turns True after ``successThreshold`` consecutive successes, False
  again after ``failureThreshold`` consecutive failures;
- liveness and startup fail after ``failureThreshold`` consecutive failures: restart;
- each probe runs every ``periodSeconds``, never twice at once.

One addition, Docker's start interval: until a container's readiness probe first succeeds, and
for one period after its ``initialDelaySeconds``, a failure that no server gave (a refused or
timed-out connection, a failed command) does not count and the probe runs again after
``START_INTERVAL``. A server still binding its port is seen ready within a tenth of a second
instead of a period later, and is not taken for failing (which would fail a fail-fast rollout
with ``failureThreshold: 1``). An HTTP server that answers with an error status is up and says
it is not well: that counts at once, as Kubernetes counts every failure.

HTTP and TCP probes run from the reconciler against the pod's address where its network is
routed from there (``gitops.probing.podnet``, as the kubelet probes), else in the pod's pause
container against the pod's loopback (busybox ``wget``/``nc``, bounded by ``timeout``); exec
probes run in the container itself. ``ProbeTask`` carries what either way needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from gitops.model.labels import decode_probes
from gitops.model.live import PodInfo
from gitops.model.templates import ProbeSpec, wget_command

START_INTERVAL: Final = 0.1  # seconds between readiness probes while a container starts
READINESS: Final = "readiness"
LIVENESS: Final = "liveness"
STARTUP: Final = "startup"
MAX_UNTOLD: Final = 10_000  # distinct failure messages kept between two passes' events


@dataclass(frozen=True)
class ProbeTask:
    container_id: str
    kind: str
    target_id: str  # where the command runs: the pause container, or the container itself
    command: tuple[str, ...]
    timeout: float
    node: str
    spec: ProbeSpec | None = None  # for a probe run from the reconciler: what to send
    ip: str = ""  # the pod's address ("" when the engine has not said it)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    output: str
    # A server answered with a failure (an HTTP error status): it is up and says no. Counted
    # even while the container starts, when a refused connection is not.
    answered: bool = False


# What busybox wget prints when the server answered with an error status (probes run in the pod).
WGET_ANSWERED: Final = "server returned error"


def exec_result(code: int, output: str) -> ProbeResult:
    """A probe run as a command in the pod: exit code 0 passes."""
    return ProbeResult(code == 0, output, answered=code != 0 and WGET_ANSWERED in output)


def probe_command(spec: ProbeSpec) -> tuple[Literal["infra", "app"], tuple[str, ...]]:
    t = str(spec.timeout)
    if spec.handler == "http":
        host = "127.0.0.1"
        path = spec.path if spec.path.startswith("/") else "/" + spec.path
        url = f"{spec.scheme.lower()}://{host}:{spec.port}{path}"
        return "infra", wget_command(url, spec.headers, spec.timeout)
    if spec.handler == "tcp":
        return "infra", ("timeout", t, "nc", "-w", t, "127.0.0.1", str(spec.port))
    if spec.handler == "grpc":
        return "infra", ()  # run from the reconciler only (``gitops.probing.grpcprobe``)
    return "app", spec.command


@dataclass
class _Probe:
    spec: ProbeSpec
    next_at: float
    successes: int = 0
    failures: int = 0
    result: bool | None = None
    output: str = ""
    busy: bool = False
    ever_ok: bool = False


@dataclass
class _Container:
    node: str
    infra_id: str
    started_at: float
    ip: str = ""
    probes: dict[str, _Probe] = field(default_factory=dict)

    @property
    def started(self) -> bool:
        startup = self.probes.get(STARTUP)
        return startup is None or startup.result is True


class ProbeTracker:
    def __init__(self) -> None:
        self._containers: dict[str, _Container] = {}
        self._carried: set[str] = set()
        # Failed probe runs not yet told as Unhealthy events: (container, message) -> runs, as
        # the kubelet records one event a failed run (folded into a count).
        self._unhealthy: Counter[tuple[str, str]] = Counter()

    def carry(self, ready: Iterable[str]) -> None:
        """Containers a previous reconciler had found ready. At the first ``sync`` those still
        running start ready (their probes run at once to confirm), as a kubelet restart keeps
        pod readiness: a reconciler restart must not empty every Service for a probe period."""
        self._carried = set(ready)

    def ready_containers(self) -> set[str]:
        return {cid for cid in self._containers if self.ready(cid)}

    def sync(self, pods: Iterable[PodInfo], now: float) -> None:
        """Track every running app container that has probes; forget the others."""
        seen: dict[str, _Container] = {}
        for pod in pods:
            holder = pod.holder  # where HTTP/TCP probes run when they run in the pod
            for c in pod.app_containers():
                specs = decode_probes(c.meta.probes)
                if c.state != "running" or not specs or holder is None:
                    continue
                known = self._containers.get(c.id)
                if known is None:
                    known = _Container(pod.node, holder.id, now)
                    for kind, spec in specs.items():
                        known.probes[kind] = _Probe(spec, now + spec.initial_delay)
                        if kind == LIVENESS:
                            known.probes[kind].result = True  # alive until proven otherwise
                    if c.id in self._carried:
                        for kind in (STARTUP, READINESS):
                            if kind in known.probes:
                                known.probes[kind].result = True
                                known.probes[kind].ever_ok = True
                                known.probes[kind].next_at = now
                known.ip = pod.ip or known.ip
                seen[c.id] = known
        self._containers = seen
        self._carried = set()  # only for the first look: a container restarted since starts over

    def due(self, now: float) -> list[ProbeTask]:
        tasks = []
        for cid, c in self._containers.items():
            kinds = [STARTUP] if not c.started else [READINESS, LIVENESS]
            for kind in kinds:
                probe = c.probes.get(kind)
                if probe is None or probe.busy or probe.next_at > now:
                    continue
                if kind == STARTUP and probe.result is False:
                    continue  # failed: waiting for the restart
                where, command = probe_command(probe.spec)
                target = c.infra_id if where == "infra" else cid
                probe.busy = True
                timeout = float(probe.spec.timeout)
                tasks.append(
                    ProbeTask(cid, kind, target, command, timeout, c.node, probe.spec, c.ip)
                )
        return tasks

    def record(self, container_id: str, kind: str, result: ProbeResult, now: float) -> bool:
        """Take one result; True when the probe's verdict changed."""
        ok = result.ok
        c = self._containers.get(container_id)
        probe = c.probes.get(kind) if c else None
        if c is None or probe is None:
            return False
        probe.busy = False
        probe.next_at = now + probe.spec.period
        probe.output = result.output
        before = probe.result
        starting = now < c.started_at + probe.spec.initial_delay + probe.spec.period
        if kind == READINESS and not ok and not result.answered and not probe.ever_ok and starting:
            probe.next_at = now + START_INTERVAL  # not up yet: look again soon, count nothing
            return False
        probe.ever_ok |= ok
        told = (container_id, f"{kind.capitalize()} probe failed: {result.output or 'no output'}")
        if not ok and (len(self._unhealthy) < MAX_UNTOLD or told in self._unhealthy):
            self._unhealthy[told] += 1
        if ok:
            probe.successes, probe.failures = probe.successes + 1, 0
            needed = probe.spec.success_threshold if kind == READINESS else 1
            if probe.successes >= needed:
                probe.result = True
        else:
            probe.failures, probe.successes = probe.failures + 1, 0
            if probe.failures >= probe.spec.failure_threshold:
                probe.result = False
        if kind == STARTUP and probe.result is True and before is not True:
            for other in (READINESS, LIVENESS):  # they start now, their delay from container start
                if other in c.probes:
                    c.probes[other].next_at = max(
                        now, c.started_at + c.probes[other].spec.initial_delay
                    )
        return probe.result != before

    def ready(self, container_id: str) -> bool | None:
        """None when the container has no readiness or startup probe (the engine decides)."""
        c = self._containers.get(container_id)
        if c is None or (READINESS not in c.probes and STARTUP not in c.probes):
            return None
        if not c.started:
            return False
        readiness = c.probes.get(READINESS)
        return True if readiness is None else readiness.result is True

    def failing(self) -> dict[str, str]:
        """Containers to restart, with the reason (probe kind and its last output)."""
        out = {}
        for cid, c in self._containers.items():
            for kind in (LIVENESS, STARTUP):
                probe = c.probes.get(kind)
                if probe is not None and probe.result is False:
                    what = "Liveness" if kind == LIVENESS else "Startup"
                    out[cid] = f"{what} probe failed: {probe.output or 'no output'}"
        return out

    def failed(self, container_id: str) -> str:
        """Why the container's startup or readiness probe has failed ``failureThreshold``
        times in a row ("" while it is undecided, passing, or has no such probe)."""
        c = self._containers.get(container_id)
        for kind in (STARTUP, READINESS):
            probe = c.probes.get(kind) if c else None
            if probe is not None and probe.result is False:
                return (
                    f"{kind.capitalize()} probe failed {probe.failures} time(s): "
                    f"{probe.output or 'no output'}"
                )
        return ""

    def take_unhealthy(self) -> dict[str, list[tuple[str, int]]]:
        """The failed probe runs since the last take, by container: (message, runs)."""
        out: dict[str, list[tuple[str, int]]] = {}
        for (cid, said), runs in self._unhealthy.items():
            out.setdefault(cid, []).append((said, runs))
        self._unhealthy.clear()
        return out

    def reason(self, container_id: str) -> str:
        """Why a container is not ready, for status: the readiness probe's last output."""
        c = self._containers.get(container_id)
        if c is None:
            return ""
        for kind in (STARTUP, READINESS):
            probe = c.probes.get(kind)
            if probe is not None and probe.result is not True and probe.output:
                return f"{kind.capitalize()} probe failed: {probe.output}"
        return ""

    def forget(self, container_id: str) -> None:
        """After a restart the container's probes start over."""
        self._containers.pop(container_id, None)
