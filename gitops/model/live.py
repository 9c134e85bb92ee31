"""What runs: the containers and pods a node reports, its capacity, and one observation of
every node, the value every stage after ``observe`` reads.

Built by ``gitops.act.observe`` from container labels; read by the deciding code (plan, status,
endpoints) and the cluster's memory. A plain, immutable value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from gitops.model.labels import ContainerLabels, VolumeLabels, decode
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


def completed(c: ContainerInfo) -> bool:
    """Exited with code 0 (the engine's status reads "Exited (0) 5 seconds ago")."""
    return c.state == "exited" and c.status.startswith("Exited (0)")


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

    def of(self, namespace: str, deployment: str) -> list[PodInfo]:
        return [p for p in self.pods if (p.namespace, p.deployment) == (namespace, deployment)]

    def deployments(self) -> set[tuple[str, str]]:
        return {(p.namespace, p.deployment) for p in self.pods}
