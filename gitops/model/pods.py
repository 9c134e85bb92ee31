"""Runtime value types shared by every stage: what to run, and what runs.

``PodTemplate`` is what the desired stage produces and node adapters create; ``ContainerInfo``
is what node adapters report back. Both are plain frozen dataclasses with no behaviour that
touches the outside world. Label names under ``io.gitops.`` are the contract between a
reconciler and the containers it created: live state is rebuilt from them alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Final, Literal

PREFIX: Final = "io.gitops."
L_MANAGED: Final = PREFIX + "managed"
L_INSTANCE: Final = PREFIX + "instance"  # which reconciler owns it (several may share a node)
L_NAMESPACE: Final = PREFIX + "namespace"
L_DEPLOYMENT: Final = PREFIX + "deployment"
L_POD: Final = PREFIX + "pod"
L_CONTAINER: Final = PREFIX + "container"
L_INDEX: Final = PREFIX + "container-index"
L_INIT: Final = PREFIX + "init"
L_HASH: Final = PREFIX + "pod-template-hash"
L_COMMIT: Final = PREFIX + "commit"
L_PRUNE: Final = PREFIX + "prune"
L_NODE: Final = PREFIX + "node"
L_POD_LABEL: Final = PREFIX + "label."  # + the pod template's own label key
L_CREATED: Final = PREFIX + "created"
L_GRACE: Final = PREFIX + "grace-seconds"
L_REQUESTS: Final = PREFIX + "requests"  # "cpu-millicores,memory-bytes" the pod reserves
L_INFRA: Final = PREFIX + "infra"  # the pod's pause container: holds its namespaces, runs probes
L_PROBES: Final = PREFIX + "probes"  # JSON of the container's probes, named ports resolved
L_PORTS: Final = PREFIX + "ports"  # JSON {name: containerPort} of the container's named ports
L_PRESTOP: Final = PREFIX + "prestop"  # JSON of the preStop exec command
L_SERVICE: Final = PREFIX + "service"  # a Service's in-namespace proxy container
L_SERVICE_PORTS: Final = PREFIX + "service-ports"  # its ports, comma-separated
L_PROXY: Final = PREFIX + "proxy"  # a node's own Service proxy (HAProxy, host network)
# A pod's lone container that holds the pod's network itself: no pause container. Only a
# single-container pod without init containers, whose HTTP/TCP probes need no busybox in the pod.
L_OWN_NETWORK: Final = PREFIX + "own-network"
INFRA_NAME: Final = "POD"  # container label of the pause container (app names are lowercase)

# Where a node's HTTP and TCP probes run (its ``probes`` setting).
PROBES_HERE: Final = "here"  # from the reconciler's machine to the pod's address
PROBES_IN_NODE: Final = "node"  # as an exec in the pod's pause container, on its engine
DEFAULT_MAX_PODS: Final = 110  # a node's pods at most, as the kubelet's maxPods
PROBES_AUTO: Final = "auto"  # here when the pod's address is routed from this machine

# Annotations users put on resources in git.
A_PRUNE: Final = "gitops.io/prune"  # "disabled": keep running when the manifest is deleted
A_AUTO_ROLLBACK: Final = "gitops.io/auto-rollback"  # "false": a failed rollout stays as it is
# "true": a rollout fails as soon as a pod of the new template fails, not at its deadline
A_FAIL_FAST: Final = "gitops.io/fail-fast"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    sensitive: bool = False  # from a Secret: never printed

    def __repr__(self) -> str:
        shown = "<redacted>" if self.sensitive else repr(self.value)
        return f"EnvVar({self.name}={shown})"


@dataclass(frozen=True)
class FileItem:
    """One file projected from a ConfigMap or Secret into a container."""

    path: str  # relative to the mount path
    data: bytes = field(repr=False)
    mode: int = 0o644


@dataclass(frozen=True)
class Mount:
    """``emptyDir`` mounts a per-pod volume; ``files`` writes projected files at start."""

    kind: Literal["emptyDir", "files"]
    volume: str
    path: str
    read_only: bool = False
    files: tuple[FileItem, ...] = ()
    sensitive: bool = False


@dataclass(frozen=True)
class Port:
    container_port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True)
class ProbeSpec:
    """A readiness/liveness/startup probe; handler is one of http, tcp, exec."""

    handler: Literal["http", "tcp", "exec"]
    port: int | str | None = None
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    pull_policy: Literal["Always", "IfNotPresent", "Never"]
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    working_dir: str | None = None
    env: tuple[EnvVar, ...] = ()
    ports: tuple[Port, ...] = ()
    cpu_limit_millis: int | None = None
    memory_limit: int | None = None
    cpu_request_millis: int | None = None
    memory_request: int | None = None
    mounts: tuple[Mount, ...] = ()
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    startup: ProbeSpec | None = None
    pre_stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PodTemplate:
    """Everything needed to run one replica; ``template_hash`` identifies it.

    The hash covers every input that changes what runs, including the content of ConfigMaps
    and Secrets the pod uses, so changing one of those replaces the pods.
    """

    namespace: str
    deployment: str
    template_hash: str
    containers: tuple[ContainerSpec, ...]
    init_containers: tuple[ContainerSpec, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()  # part of the hash, as in Kubernetes
    empty_dirs: tuple[str, ...] = ()
    grace_seconds: int = 30
    node_selector: tuple[tuple[str, str], ...] = ()
    prune: bool = True
    commit: str = ""

    def all_containers(self) -> tuple[ContainerSpec, ...]:
        return self.init_containers + self.containers

    @property
    def requests(self) -> tuple[int, int]:
        """(cpu millicores, memory bytes) the scheduler reserves, as Kubernetes counts them:
        the app containers together, or the largest init container if that is more."""

        def of(c: ContainerSpec) -> tuple[int, int]:
            return c.cpu_request_millis or 0, c.memory_request or 0

        apps = [of(c) for c in self.containers]
        inits = [of(c) for c in self.init_containers]
        return (
            max([sum(a[0] for a in apps), *(i[0] for i in inits)]),
            max([sum(a[1] for a in apps), *(i[1] for i in inits)]),
        )

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.image for c in self.all_containers()))


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

    @property
    def health(self) -> str | None:
        """Docker HEALTHCHECK result when the image has one: healthy, unhealthy, starting."""
        for word in ("(healthy)", "(unhealthy)", "(health: starting)"):
            if word in self.status:
                return word.strip("()").replace("health: ", "")
        return None


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
        return tuple(
            c
            for c in self.containers
            if c.labels.get(L_INIT) != "true" and c.labels.get(L_INFRA) != "true"
        )

    @property
    def infra(self) -> ContainerInfo | None:
        return next((c for c in self.containers if c.labels.get(L_INFRA) == "true"), None)

    @property
    def holder(self) -> ContainerInfo | None:
        """The container holding the pod's network: its pause container, or its lone
        container where it holds its own (``L_OWN_NETWORK``)."""
        return self.infra or next(
            (c for c in self.containers if c.labels.get(L_OWN_NETWORK) == "true"), None
        )

    @property
    def ip(self) -> str:
        holder = self.holder
        return holder.ip if holder is not None else ""

    @property
    def requests(self) -> tuple[int, int]:
        """(cpu millicores, memory bytes) it reserves on its node."""
        raw = self.containers[0].labels.get(L_REQUESTS, "") if self.containers else ""
        cpu, _, mem = raw.partition(",")
        return (int(cpu), int(mem)) if cpu.isdigit() and mem.isdigit() else (0, 0)

    def labels(self) -> dict[str, str]:
        """The pod template's own labels (what Service selectors match)."""
        first = self.containers[0].labels if self.containers else {}
        return {k[len(L_POD_LABEL) :]: v for k, v in first.items() if k.startswith(L_POD_LABEL)}

    def port(self, target: int | str) -> int | None:
        """A target port by number, or by the name a container gave it."""
        if isinstance(target, int):
            return target
        for c in self.app_containers():
            ports = json.loads(c.labels.get(L_PORTS, "{}"))
            if target in ports:
                return int(ports[target])
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


PROGRESSING = "Progressing"
COMPLETE = "Complete"
FAILED = "Failed"
SUPERSEDED = "Superseded"


@dataclass(frozen=True)
class RolloutRecord:
    """One revision of a deployment: what was rolled out, from which commit, and how it ended."""

    namespace: str
    deployment: str
    commit: str
    template_hash: str
    started: float
    result: str = PROGRESSING
    revision: int = 0
    author: str = ""
    subject: str = ""
    images: tuple[str, ...] = ()
    finished: float | None = None
    reason: str = ""
    rolled_back_to: str = ""
    id: int | None = None

    @property
    def is_rollback(self) -> bool:
        return self.reason.startswith("rollback")


def encode_probes(spec: ContainerSpec) -> str:
    """The container's probes as compact JSON for a label, with named ports made numbers.

    Carried on the container so that probing is rebuilt from the engine alone, for pods of
    any template (old pods mid-rollout included)."""
    ports = {p.name: p.container_port for p in spec.ports if p.name}
    out: dict[str, dict[str, object]] = {}
    for kind, probe in (
        ("readiness", spec.readiness),
        ("liveness", spec.liveness),
        ("startup", spec.startup),
    ):
        if probe is None:
            continue
        port = ports.get(probe.port, probe.port) if isinstance(probe.port, str) else probe.port
        out[kind] = {**asdict(probe), "port": port}
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def decode_probes(text: str) -> dict[str, ProbeSpec]:
    if not text:
        return {}
    raw = json.loads(text)
    return {
        kind: ProbeSpec(
            **{
                **fields,
                "headers": tuple(tuple(h) for h in fields["headers"]),
                "command": tuple(fields["command"]),
            }
        )
        for kind, fields in raw.items()
    }
