"""The nodes as the reconciler knows them: health, capacity, cordons, and what a lost node had.

Between the node adapters and the deciding code. ``check`` pings every node (the runner calls it
every couple of seconds); a pass's own observation counts as contact too. ``merge`` gives the
planner a full picture while a node is silent: its last known pods stay counted (not replaced)
until the eviction timeout; then they are *evicted*: replaced elsewhere, and removed as soon as
their node answers again, before they can take traffic. ``views`` is what the scheduler sees.
Cordons and drains, and the evicted pods, are kept in the history database, so they survive a
restart of the reconciler.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gitops.config.settings import NodeConfig, Settings
from gitops.decide.health import NodeTracker
from gitops.decide.schedule import NodeView
from gitops.errors import GitopsError
from gitops.model.events import NODE_NOT_READY, NODE_READY, Event
from gitops.model.labels import VolumeLabels
from gitops.model.live import LiveState, NodeCapacity, PodInfo, VolumeInfo
from gitops.nodes.base import Node, claim_volume_name
from gitops.state.history import History

log = logging.getLogger(__name__)
CAPACITY_EVERY = 30.0  # seconds between `docker info` calls per node


class NodeNotFound(GitopsError):
    pass


@dataclass(frozen=True)
class NodeRow:
    """One line of ``gitops get nodes``."""

    name: str
    status: str  # Ready | NotReady, with ",SchedulingDisabled" when cordoned
    address: str
    endpoint: str
    labels: dict[str, str]
    cpu_millis: int | None  # allocatable
    memory: int | None
    requested_cpu_millis: int
    requested_memory: int
    pods: int
    version: str
    message: str


class Cluster:
    def __init__(
        self,
        settings: Settings,
        nodes: Mapping[str, Node],
        history: History,
        clock: Callable[[], float] = time.time,
        notify: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self.settings, self.nodes, self.history, self.clock = settings, nodes, history, clock
        self.notify = notify
        self.config: dict[str, NodeConfig] = {n.name: n for n in settings.nodes}
        self.tracker = NodeTracker(settings.node_grace, settings.eviction_timeout)
        now = clock()
        for name in nodes:
            self.tracker.track(name, now)
        self._lock = threading.Lock()
        self._capacity: dict[str, tuple[NodeCapacity, float]] = {}
        self._reported = {n: self.tracker.state(n, now) for n in nodes}
        self._known: dict[str, tuple[PodInfo, ...]] = {}  # last answered pods per node
        self._pods: tuple[PodInfo, ...] = ()
        self._dead: set[str] = set()
        self.cordons: dict[str, str] = {}
        self.evicted: set[str] = set()
        self._evicted_saved: set[str] = set()
        # Each node's claims' volumes when it last answered: a silent node still holds them,
        # so no pod of those claims starts elsewhere on no data.
        self._volumes: dict[str, set[tuple[str, str]]] = {}
        self.reload()

    def reload(self) -> None:
        """What the state database remembers: at start, and when this process becomes the
        leader (the one before it may have cordoned, evicted or moved a claim since)."""
        facts = self.history.facts
        cordons, evicted, volumes = facts.cordons(), facts.evicted(), facts.volumes()
        with self._lock:
            self.cordons, self.evicted, self._evicted_saved = cordons, evicted, set(evicted)
            self._volumes = {}
            for (ns, claim), node in volumes.items():
                self._volumes.setdefault(node, set()).add((ns, claim))

    # -- health ---------------------------------------------------------------------------
    def check(self) -> bool:
        """Ping every node (and refresh its capacity now and then). True when a node's state
        changed in a way a pass must act on."""
        now = self.clock()
        for name, node in self.nodes.items():
            try:
                node.ping()
                self._refresh_capacity(name, now)
            except GitopsError as exc:
                with self._lock:
                    self.tracker.contact(name, now, str(exc))
                continue
            with self._lock:
                self.tracker.contact(name, now)
        after = {n: self.tracker.state(n, now) for n in self.nodes}
        before = self._reported
        changed = [n for n in self.nodes if before.get(n) != after[n]]
        self._reported = after
        for n in changed:
            ready, usable, lost = after[n]
            log.warning(
                "node %s: %s%s", n, "Ready" if usable else "NotReady" if not ready else "silent",
                " (lost: its pods are replaced elsewhere)" if lost else "",
            )  # fmt: skip
            if ready != before[n][0]:
                why = self.tracker.error(n) if not ready else ""
                text = (
                    f"NotReady: no answer for {self.settings.node_grace:g}s"
                    + (f" ({why})" if why else "")
                    + f"; its pods move elsewhere after {self.settings.eviction_timeout:g}s"
                    if not ready
                    else "Ready again"
                )
                self.notify(Event(NODE_READY if ready else NODE_NOT_READY, text, now, name=n))
        return bool(changed)

    def _refresh_capacity(self, name: str, now: float) -> None:
        if now - self._capacity.get(name, (None, -CAPACITY_EVERY))[1] >= CAPACITY_EVERY:
            self._capacity[name] = (self.nodes[name].capacity(), now)

    def merge(self, live: LiveState) -> LiveState:
        """The observation, with the last known pods of nodes that did not answer; records
        contact, evicts the pods of nodes silent past the eviction timeout."""
        now = self.clock()
        with self._lock:
            for name in self.nodes:
                self.tracker.contact(name, now, live.unreachable.get(name))
            dead = [p for p in live.pods if all(c.state == "dead" for c in p.containers)]
            for p in dead:
                if p.name not in self._dead:
                    # Docker could not remove it (e.g. its engine stopped mid-start and left
                    # the root filesystem mounted): nothing runs; it retries on its own restart.
                    log.warning("pod %s on %s: all containers Dead; not counted", p.name, p.node)
                    self._dead.add(p.name)
            if dead:
                live = replace(live, pods=tuple(p for p in live.pods if p not in dead))
            for name in self.nodes:
                if name not in live.unreachable:
                    self._known[name] = tuple(p for p in live.pods if p.node == name)
                    if name not in self._capacity:  # the first pass must not place blind
                        with contextlib.suppress(GitopsError):
                            self._refresh_capacity(name, now)
            kept = [p for name in live.unreachable for p in self._known.get(name, ())]
            for name in live.unreachable:
                if self.tracker.lost(name, now):
                    fresh = {p.name for p in self._known.get(name, ())} - self.evicted
                    if fresh:
                        log.warning(
                            "node %s silent for %.0fs: evicting %d pod(s)",
                            name, self.tracker.silent_for(name, now), len(fresh),
                        )  # fmt: skip
                        self.evicted |= fresh
            # An evicted pod is forgotten once its node answered without it.
            self.evicted &= {p.name for p in (*live.pods, *kept)}
            self._save_evicted()
            volumes = self._merge_volumes(live)
        pods = tuple(sorted((*live.pods, *kept), key=lambda p: (p.namespace, p.deployment,
                                                                 p.created, p.name)))  # fmt: skip
        merged = replace(live, pods=pods, volumes=volumes)
        self._pods = merged.pods
        return merged

    def _bindings(self) -> dict[tuple[str, str], str]:
        """claim -> the node holding its volume, as the state database keeps it."""
        return {k: n for n, keys in self._volumes.items() for k in keys}

    def _merge_volumes(self, live: LiveState) -> tuple[VolumeInfo, ...]:
        before = self._bindings()
        for name in self.nodes:
            if name not in live.unreachable:
                self._volumes[name] = {v.key for v in live.volumes if v.node == name}
        after = self._bindings()
        if after != before:
            self.history.facts.set_volumes(after)
        return (*live.volumes, *self.remembered(live.unreachable))

    def holds_volumes(self) -> bool:
        """Whether some node was last seen holding a claim's volume."""
        with self._lock:
            return any(self._volumes.values())

    def remembered(self, silent: Collection[str]) -> list[VolumeInfo]:
        """The claims' volumes of nodes that do not answer, as they were when they last did."""
        return [
            VolumeInfo(name, claim_volume_name(ns, claim, self.settings.instance),
                       VolumeLabels(namespace=ns, claim=claim))
            for name in sorted(silent)
            for ns, claim in sorted(self._volumes.get(name, ()))
        ]  # fmt: skip

    def delete_volume(self, volume: VolumeInfo) -> None:
        """Remove a claim's volume and its data (``gitops delete pvc``), and record it."""
        self.nodes[volume.node].remove_volume(volume.name)
        with self._lock:
            self._volumes.get(volume.node, set()).discard(volume.key)
            self.history.facts.set_volumes(self._bindings())
            self.history.facts.add_deletion(
                {"time": self.clock(), "namespace": volume.meta.namespace,
                 "claim": volume.meta.claim, "node": volume.node, "volume": volume.name}
            )  # fmt: skip
        log.warning("deleted volume %s of PersistentVolumeClaim %s/%s on %s, and its data",
                    volume.name, volume.meta.namespace, volume.meta.claim, volume.node)  # fmt: skip

    def silent(self, node: str, why: str) -> None:
        """A sign the engine went away (its event stream ended): stop acting on it now; the
        next answered ping makes it usable again."""
        with self._lock:
            self.tracker.contact(node, self.clock(), why)

    def usable(self, node: str) -> bool:
        return self.tracker.usable(node, self.clock())

    def views(self) -> list[NodeView]:
        now = self.clock()
        out = []
        for name in self.nodes:
            cfg = self.config.get(name, NodeConfig(name))
            cap = self._capacity.get(name)
            cordon = self.cordons.get(name)
            out.append(
                NodeView(
                    name=name,
                    labels=dict(cfg.labels),
                    ready=self.tracker.usable(name, now),
                    cordoned=cordon is not None,
                    draining=cordon == "draining",
                    cpu_millis=max(0, cap[0].cpu_millis - cfg.reserve_cpu_millis) if cap else None,
                    memory=max(0, cap[0].memory - cfg.reserve_memory) if cap else None,
                    max_pods=cfg.max_pods,
                    allow_privileged=cfg.allow_privileged,
                    taints=cfg.taints,
                    gpus=cfg.gpus,
                    host_paths=cfg.host_paths,
                )
            )
        return out

    # -- cordon and drain -----------------------------------------------------------------
    def cordon(self, node: str, drain: bool = False) -> None:
        self._known_node(node)
        with self._lock:
            self.cordons[node] = "draining" if drain else "cordoned"
            self.history.facts.set_cordons(self.cordons)

    def uncordon(self, node: str) -> None:
        self._known_node(node)
        with self._lock:
            self.cordons.pop(node, None)
            self.history.facts.set_cordons(self.cordons)

    def _known_node(self, node: str) -> None:
        if node not in self.nodes:
            raise NodeNotFound(f"no node {node!r} (nodes: {', '.join(sorted(self.nodes))})")

    def _save_evicted(self) -> None:
        """Written when it changed (compared in memory: this runs on every pass)."""
        if self.evicted != self._evicted_saved:
            self.history.facts.set_evicted(self.evicted)
            self._evicted_saved = set(self.evicted)

    # -- what `get nodes` shows -----------------------------------------------------------
    def rows(self) -> list[NodeRow]:
        now = self.clock()
        views = {v.name: v for v in self.views()}
        rows = []
        for name in sorted(self.nodes):
            cfg = self.config.get(name, NodeConfig(name))
            pods = [p for p in self._pods if p.node == name]
            cap = self._capacity.get(name)
            status = "Ready" if self.tracker.ready(name, now) else "NotReady"
            if name in self.cordons:
                status += ",SchedulingDisabled"
            message = self.tracker.error(name)
            if self.tracker.lost(name, now):
                message = f"lost {self.tracker.silent_for(name, now):.0f}s ago: {message}"
            rows.append(
                NodeRow(
                    name=name,
                    status=status,
                    address=self.settings.address_of(cfg),
                    endpoint=cfg.docker_host or "(local)",
                    labels=dict(cfg.labels),
                    cpu_millis=views[name].cpu_millis,
                    memory=views[name].memory,
                    requested_cpu_millis=sum(p.requests[0] for p in pods),
                    requested_memory=sum(p.requests[1] for p in pods),
                    pods=len(pods),
                    version=cap[0].version if cap else "",
                    message=message,
                )
            )
        return rows

    def describe(self) -> list[dict[str, Any]]:
        return [row.__dict__ for row in self.rows()]
