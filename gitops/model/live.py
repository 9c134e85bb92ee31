"""What runs: the containers and pods a node reports, its capacity, and one observation of
every node, the value every stage after ``observe`` reads.

Built by ``gitops.act.observe`` from container labels; read by the deciding code (plan, status,
endpoints) and the cluster's memory. A plain, immutable value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from gitops.model.labels import ContainerLabels, JobRecord, VolumeLabels, decode
from gitops.model.templates import HostPort


@dataclass(frozen=True)
class NodeCapacity:
    """What an engine says of its machine (``docker info``)."""

    cpu_millis: int
    memory: int
    version: str = ""
    os: str = ""


ContainerState = Literal["created", "running", "restarting", "paused", "exited", "dead", "removing"]


@dataclass(frozen=True)
class ContainerInfo:
    """One managed container as a node reports it (from a single list call)."""

    node: str
    id: str
    name: str
    labels: dict[str, str]
    state: str
    status: str = ""  # engine's human text, e.g. "Up 5 seconds (healthy)"
    image: str = ""
    created: float = 0.0
    ip: str = ""  # on the pod's network (set on the pause container, which holds it)
    finished: float = 0.0  # when it last exited, as near as the engine's listing tells

    @property
    def exit_code(self) -> int | None:
        """The code it exited with ("Exited (137) 2 seconds ago"), while it is exited."""
        found = _EXITED.match(self.status) if self.state in ("exited", "dead") else None
        return int(found[1]) if found else None

    @cached_property
    def meta(self) -> ContainerLabels:
        """Its labels, read once through the codec (``gitops.model.labels``)."""
        return decode(self.labels)

    @property
    def health(self) -> str | None:
        """Docker HEALTHCHECK result when the image has one: healthy, unhealthy, starting."""
        for word in ("(healthy)", "(unhealthy)", "(health: starting)"):
            if word in self.status:
                return word.strip("()").replace("health: ", "")
        return None


_EXITED = re.compile(r"Exited \((-?\d{1,10})\)")
_AGO = re.compile(r"Exited \(-?\d+\) (.+) ago$")
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800,
          "month": 2592000, "year": 31536000}  # fmt: skip


def exited_ago(status: str) -> float | None:
    """How long ago a container exited, from the engine's human text ("Exited (1) 5 seconds
    ago", "About a minute ago", "Less than a second ago"): Docker's list call says no more
    (its inspect call does, one container at a time). Exact to the second below a minute."""
    found = _AGO.search(status)
    if found is None:
        return None
    words = found[1].lower().split()
    if words[:2] == ["less", "than"]:
        return 0.0
    count = 1 if words[0] in ("about", "a", "an") else int(words[0]) if words[0].isdigit() else 0
    unit = _UNITS.get(words[-1].rstrip("s"))
    return None if unit is None or not count else float(count * unit)


def completed(c: ContainerInfo) -> bool:
    """Exited with code 0 (the engine's status reads "Exited (0) 5 seconds ago")."""
    return c.state == "exited" and c.exit_code == 0


@dataclass(frozen=True)
class PodInfo:
    """Containers sharing one ``io.gitops.pod`` label on one node: one live replica."""

    node: str
    namespace: str
    deployment: str
    name: str
    template_hash: str
    commit: str
    containers: tuple[ContainerInfo, ...]
    prune: bool = True

    @property
    def created(self) -> float:
        return min((c.created for c in self.containers), default=0.0)

    def app_containers(self) -> tuple[ContainerInfo, ...]:
        return tuple(c for c in self.containers if not c.meta.init and not c.meta.infra)

    def init_containers(self) -> tuple[ContainerInfo, ...]:
        return tuple(
            sorted((c for c in self.containers if c.meta.init), key=lambda c: c.meta.index)
        )

    @property
    def initializing(self) -> ContainerInfo | None:
        """The first init container that has not completed (exited with code 0): the pod's
        app containers wait for it, as the kubelet runs init containers one at a time."""
        return next((c for c in self.init_containers() if not completed(c)), None)

    @property
    def infra(self) -> ContainerInfo | None:
        return next((c for c in self.containers if c.meta.infra), None)

    @property
    def holder(self) -> ContainerInfo | None:
        """The container holding the pod's network: its pause container, or its lone
        container where it holds its own (``L_OWN_NETWORK``)."""
        return self.infra or next((c for c in self.containers if c.meta.own_network), None)

    @property
    def ip(self) -> str:
        holder = self.holder
        return holder.ip if holder is not None else ""

    @property
    def requests(self) -> tuple[int, int]:
        """(cpu millicores, memory bytes) it reserves on its node."""
        return self.containers[0].meta.requests if self.containers else (0, 0)

    @property
    def gpus(self) -> int:
        return self.containers[0].meta.gpus if self.containers else 0

    @property
    def host_ports(self) -> tuple[HostPort, ...]:
        return self.containers[0].meta.host_ports if self.containers else ()

    @property
    def claims(self) -> tuple[str, ...]:
        """The PersistentVolumeClaims it mounts."""
        return self.containers[0].meta.claims if self.containers else ()

    def labels(self) -> dict[str, str]:
        """The pod template's own labels (what Service selectors match)."""
        return dict(self.containers[0].meta.pod_labels) if self.containers else {}

    def port(self, target: int | str) -> int | None:
        """A target port by number, or by the name a container gave it."""
        if isinstance(target, int):
            return target
        for c in self.app_containers():
            if target in c.meta.ports:
                return c.meta.ports[target]
        return None

    @property
    def running(self) -> bool:
        apps = self.app_containers()
        infra = self.infra
        infra_ok = infra is None or infra.state == "running"
        return infra_ok and bool(apps) and all(c.state == "running" for c in apps)

    @property
    def restart_policy(self) -> str:
        """A Job's pod: Never or OnFailure; "" for every other kind's (Always)."""
        return self.containers[0].meta.restart_policy if self.containers else ""

    @property
    def phase(self) -> str:
        """Kubernetes' pod phase: a Job's pod ends Succeeded (every app container exited 0)
        or, under restartPolicy Never, Failed (an init container failed, or every app
        container exited and one did not exit 0); an OnFailure pod is restarted in place."""
        apps = self.app_containers()
        ended = [c for c in apps if c.state in ("exited", "dead")]
        if self.restart_policy:
            if apps and all(completed(c) for c in apps):
                return "Succeeded"
            waiting = self.initializing
            if self.restart_policy == "Never":
                if waiting is not None and waiting.state in ("exited", "dead"):
                    return "Failed"
                if apps and len(ended) == len(apps):
                    return "Failed"
        return "Running" if any(c.state == "running" for c in apps) else "Pending"

    @property
    def finished(self) -> bool:
        """A Job's pod that ended (Succeeded or Failed): it holds no resources of its node."""
        return self.phase in ("Succeeded", "Failed")

    @property
    def finished_at(self) -> float:
        """When the last of its containers exited (0 when none did)."""
        return max((c.finished for c in self.containers if c.state in ("exited", "dead")),
                   default=0.0)  # fmt: skip

    @property
    def healthy(self) -> bool:
        """Running, and no container reports an unhealthy or starting Docker HEALTHCHECK."""
        return self.running and all(c.health in (None, "healthy") for c in self.app_containers())


@dataclass(frozen=True)
class VolumeInfo:
    """A PersistentVolumeClaim's Docker volume on a node, read back from its labels."""

    node: str
    name: str  # the engine's name for it
    meta: VolumeLabels

    @property
    def key(self) -> tuple[str, str]:
        return (self.meta.namespace, self.meta.claim)


@dataclass(frozen=True)
class LiveState:
    pods: tuple[PodInfo, ...]
    networks: dict[str, frozenset[str]]  # node -> namespaces that have a network there
    unreachable: dict[str, str]  # node -> error
    services: dict[tuple[str, str, str], ContainerInfo] = field(default_factory=dict)
    # (node, namespace, name) -> the Service's in-namespace proxy container
    volumes: tuple[VolumeInfo, ...] = ()  # PersistentVolumeClaims' volumes on reachable nodes
    records: tuple[JobRecord, ...] = ()  # finished Jobs, as the reachable nodes remember them

    def record_of(self, namespace: str, job: str, template_hash: str) -> JobRecord | None:
        return next((r for r in self.records if (r.namespace, r.job, r.template_hash)
                     == (namespace, job, template_hash)), None)  # fmt: skip

    def of(self, namespace: str, deployment: str) -> list[PodInfo]:
        return list(self._by_workload.get((namespace, deployment), ()))

    @cached_property
    def _by_workload(self) -> dict[tuple[str, str], list[PodInfo]]:
        """The pods by workload, built once: asked once a workload, a scan each would be
        quadratic in a fleet's pods."""
        out: dict[tuple[str, str], list[PodInfo]] = {}
        for p in self.pods:
            out.setdefault((p.namespace, p.deployment), []).append(p)
        return out

    def deployments(self) -> set[tuple[str, str]]:
        return {(p.namespace, p.deployment) for p in self.pods}
