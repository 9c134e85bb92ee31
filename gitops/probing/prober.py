"""Runs the probes ``gitops.probing.probes`` says are due, through the node adapters, off the
main loop.

A background thread ticks every 100 ms, runs due probes in a small pool (each bounded by the
probe's timeout) and wakes the reconciler when a verdict changes: a pod turning ready lets a
rollout proceed at once; a failed liveness probe gets its container restarted by the next pass.

Where a probe runs is each node's ``probes`` setting (``Node.probes``): ``here`` (HTTP and TCP
probes from this machine to the pod's address, ``gitops.probing.podnet``), ``node`` (an exec in the
pod), or ``auto``: here when the node's engine is on this machine and the pod's address is
routed from it (``gitops.nodes.routes``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from gitops.errors import GitopsError
from gitops.model.live import PodInfo
from gitops.nodes.base import Node, probed_from_here
from gitops.probing import podnet
from gitops.probing.probes import ProbeResult, ProbeTask, ProbeTracker, exec_result

log = logging.getLogger(__name__)
TICK = 0.1


class Prober:
    def __init__(
        self,
        nodes: Mapping[str, Node],
        clock: Callable[[], float],
        notify: Callable[[str], None] = lambda _: None,
        workers: int = 8,
    ) -> None:
        self.nodes, self.clock, self.notify = nodes, clock, notify
        self.tracker = ProbeTracker()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self._thread: threading.Thread | None = None

    def carry(self, ready: Iterable[str]) -> None:
        with self._lock:
            self.tracker.carry(ready)

    def ready_containers(self) -> set[str]:
        with self._lock:
            return self.tracker.ready_containers()

    def update(self, pods: Iterable[PodInfo]) -> None:
        """The reconciler hands over each fresh observation of the nodes."""
        with self._lock:
            self.tracker.sync(pods, self.clock())

    def ready(self, container_id: str) -> bool | None:
        with self._lock:
            return self.tracker.ready(container_id)

    def reason(self, container_id: str) -> str:
        with self._lock:
            return self.tracker.reason(container_id)

    def failed(self, container_id: str) -> str:
        with self._lock:
            return self.tracker.failed(container_id)

    def take_unhealthy(self) -> dict[str, list[tuple[str, int]]]:
        with self._lock:
            return self.tracker.take_unhealthy()

    def failing(self) -> dict[str, str]:
        with self._lock:
            return self.tracker.failing()

    def forget(self, container_id: str) -> None:
        with self._lock:
            self.tracker.forget(container_id)

    def tick(self) -> None:
        with self._lock:
            tasks = self.tracker.due(self.clock())
        for task in tasks:
            self._pool.submit(self._run, task)

    def from_here(self, task: ProbeTask) -> bool:
        """Whether ``task`` runs from this machine rather than as an exec in the pod."""
        if task.spec is None or task.spec.handler == "exec" or not task.ip:
            return False
        if task.spec.handler == "grpc":
            return True  # the pod's busybox speaks no gRPC: only from here, as the kubelet
        return probed_from_here(self.nodes[task.node].probes, task.ip)

    def _run(self, task: ProbeTask) -> None:
        try:
            if task.spec is not None and self.from_here(task):
                result = podnet.probe(task.spec, task.ip)
            else:
                code, output = self.nodes[task.node].exec(
                    task.target_id, list(task.command), task.timeout
                )
                result = exec_result(code, output)
        except GitopsError as exc:  # the container went away mid-probe: a failed probe
            result = ProbeResult(False, str(exc))
        except Exception as exc:  # a probe must never kill the prober
            log.exception("probe %s of %s failed unexpectedly", task.kind, task.container_id[:12])
            result = ProbeResult(False, str(exc))
        with self._lock:
            changed = self.tracker.record(task.container_id, task.kind, result, self.clock())
        if changed:
            log.debug(
                "%s probe of %s: %s",
                task.kind,
                task.container_id[:12],
                "ok" if result.ok else result.output,
            )
            self.notify(f"probe:{task.kind}")

    def start(self, stop: threading.Event) -> None:
        def loop() -> None:
            while not stop.wait(TICK):
                try:
                    self.tick()
                except Exception:  # probing must outlive any one failure
                    log.exception("probe round failed")

        self._thread = threading.Thread(target=loop, daemon=True, name="prober")
        self._thread.start()
