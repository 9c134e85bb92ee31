"""Crashed containers' last words: their logs kept after their pods are removed, and the last
lines a failure reason quotes.

The kubelet keeps a crashed container's last instance until the pod's next restart, and
``kubectl logs --previous`` reads it. gitops restarts containers in place, so the engine keeps
that instance's output itself (``gitops.nodes``, ``LogQuery.previous``); but a pod removed
(a failed rollout's pod, when the rollback replaces it) takes its containers with it. Before
such a pod is removed the reconciler copies its containers' last lines here, and the log API
serves them for a pod that is gone. Bounded in pods, lines and age: it is for finding out why a
rollout failed, not an archive; kept in the state database too (``db``), so a restart of
the reconciler keeps them.

A failed rollout's reason quotes its crashed container's last lines (``words``), read once
per exit, as the kubelet's ``FallbackToLogsOnError`` termination message does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gitops.decide.actions import Remove
from gitops.errors import GitopsError
from gitops.model.live import ContainerInfo, PodInfo
from gitops.model.logs import LogLine, LogQuery, log_tail
from gitops.model.templates import PodTemplate
from gitops.nodes.base import Node
from gitops.state.database import Database
from gitops.state.schema import migrate

log = logging.getLogger(__name__)

TAIL = 3  # lines a failure reason quotes
MAX_PODS = 100
MAX_LINES = 1000  # of each container
MAX_LINE = 4 * 1024  # bytes of a line: 4 MiB a container at most
RETENTION = 3600.0  # seconds after its removal


@dataclass(frozen=True)
class KeptPod:
    namespace: str
    name: str
    node: str
    workload: str  # the pod's Deployment, StatefulSet, ... (its owner's name)
    removed: float
    containers: tuple[tuple[str, tuple[LogLine, ...]], ...]  # (container, its last lines)

    def lines(self, container: str) -> tuple[LogLine, ...] | None:
        return next((lines for name, lines in self.containers if name == container), None)


class KeptLogs:
    def __init__(
        self,
        nodes: Mapping[str, Node],
        clock: Callable[[], float] = time.time,
        db: Database | None = None,
    ) -> None:
        self.nodes, self.clock, self.db = nodes, clock, db
        self._pods: OrderedDict[tuple[str, str], KeptPod] = OrderedDict()
        self._words: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()
        if db is not None:
            self._load(db)

    def _load(self, database: Database) -> None:
        try:
            migrate(database)
            with database.transaction() as db:
                rows = db.execute(
                    "SELECT namespace, name, node, workload, removed, containers FROM kept_logs "
                    "WHERE removed >= ? ORDER BY removed", (self.clock() - RETENTION,),
                ).fetchall()  # fmt: skip
        except GitopsError as exc:  # without the database, memory alone
            log.warning("kept logs: %s", exc)
            self.db = None
            return
        for ns, name, node, workload, removed, text in rows:
            containers = tuple((c, tuple(LogLine(t, x) for t, x in lines))
                               for c, lines in json.loads(text))  # fmt: skip
            self._pods[(ns, name)] = KeptPod(ns, name, node, workload, removed, containers)

    def _save(self, kept: KeptPod, gone: list[tuple[str, str]]) -> None:
        if self.db is None:
            return
        text = json.dumps([[c, [[x.time, x.text] for x in lines]] for c, lines in kept.containers])
        try:
            with self.db.transaction() as db:
                db.execute("INSERT INTO kept_logs VALUES (?,?,?,?,?,?) ON CONFLICT"
                           " (namespace, name) DO UPDATE SET node = excluded.node, workload ="
                           " excluded.workload, removed = excluded.removed, containers ="
                           " excluded.containers",
                           (kept.namespace, kept.name, kept.node, kept.workload, kept.removed,
                            text))  # fmt: skip
                db.execute("DELETE FROM kept_logs WHERE removed < ?",
                           (self.clock() - RETENTION,))  # fmt: skip
                db.executemany("DELETE FROM kept_logs WHERE namespace = ? AND name = ?", gone)
        except GitopsError as exc:  # kept in memory all the same
            log.warning("kept logs not saved: %s", exc)

    def before_removal(self, removals: Iterable[Remove], restarts: Mapping[str, int]) -> None:
        """Copy the logs of each pod about to be removed that has a crashed container (one
        that exited with an error, or was restarted)."""
        for r in removals:
            pod = r.pod
            apps = pod.app_containers()
            if not any(_crashed(c) or restarts.get(c.id, 0) for c in apps):
                continue
            node = self.nodes.get(pod.node)
            if node is None:
                continue
            found: dict[str, list[LogLine]] = {}
            for c in apps:
                try:
                    found[c.meta.container or c.name] = list(
                        node.read_logs(c.id, LogQuery(tail=MAX_LINES))
                    )
                except GitopsError as exc:  # that node is silent: nothing to keep of it
                    log.debug("logs of %s before its removal: %s", pod.name, exc)
            if found:
                self.keep(pod.namespace, pod.name, pod.node, pod.deployment, found)

    def words(self, pod: PodInfo, c: ContainerInfo, template: PodTemplate | None) -> str:
        """A crashed container's last lines for a failure reason ("" for one running), read
        from its node once per exit, its Secrets' values masked."""
        if not _crashed(c):
            return ""
        key = (c.id, c.status.split(")")[0])  # one read per container and exit code
        with self._lock:
            said = self._words.get(key)
        if said is None:
            node = self.nodes.get(pod.node)
            try:
                lines = [x.text for x in node.read_logs(c.id, LogQuery(tail=TAIL))] if node else []
            except GitopsError as exc:
                log.debug("last lines of %s: %s", pod.name, exc)
                lines = []
            said = log_tail(lines, template, TAIL)
            with self._lock:
                self._words[key] = said
                while len(self._words) > MAX_PODS:
                    self._words.popitem(last=False)
        return " | ".join(said)

    def keep(
        self,
        namespace: str,
        name: str,
        node: str,
        workload: str,
        containers: dict[str, list[LogLine]],
    ) -> None:
        kept = tuple(
            (c, tuple(LogLine(x.time, x.text[:MAX_LINE]) for x in lines[-MAX_LINES:]))
            for c, lines in containers.items()
        )
        made = KeptPod(namespace, name, node, workload, self.clock(), kept)
        gone = []
        with self._lock:
            self._pods.pop((namespace, name), None)
            self._pods[(namespace, name)] = made
            while len(self._pods) > MAX_PODS:
                gone.append(self._pods.popitem(last=False)[0])
        self._save(made, gone)

    def get(self, namespace: str, name: str) -> KeptPod | None:
        with self._lock:
            self._expire()
            return self._pods.get((namespace, name))

    def list(self, namespace: str | None = None) -> list[KeptPod]:
        with self._lock:
            self._expire()
            return [p for p in self._pods.values() if namespace in (None, p.namespace)]

    def _expire(self) -> None:
        cutoff = self.clock() - RETENTION
        for key in [k for k, p in self._pods.items() if p.removed < cutoff]:
            del self._pods[key]


def _crashed(c: ContainerInfo) -> bool:
    return c.state in ("exited", "dead") and (c.exit_code or 0) != 0
