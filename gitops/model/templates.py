"""What to run: the pod templates the desired stage makes and node adapters create.

Plain frozen values with no behaviour that touches the outside world. ``template_hash``
identifies a template; node settings and user annotations that shape templates are named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

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


# Pod fields an environment variable may name that only the node knows at creation.
FIELD_POD_NAME: Final = "metadata.name"
FIELD_NODE_NAME: Final = "spec.nodeName"
FIELD_HOST_IP: Final = "status.hostIP"
FIELD_POD_IP: Final = "status.podIP"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    sensitive: bool = False  # from a Secret: never printed
    # A field only the node knows when it creates the pod (``FIELD_*``): ``value`` is then
    # filled there (``gitops.nodes.base.resolve_env``).
    field: str = ""

    def __repr__(self) -> str:
        shown = "<redacted>" if self.sensitive else repr(self.value)
        return f"EnvVar({self.name}={shown})"


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry, from a pod's ``imagePullSecrets``: never printed."""

    registry: str
    username: str = field(repr=False)
    password: str = field(repr=False)


@dataclass(frozen=True)
class FileItem:
    """One file projected from a ConfigMap or Secret into a container."""

    path: str  # relative to the mount path
    data: bytes = field(repr=False)
    mode: int = 0o644


@dataclass(frozen=True)
class Mount:
    """``emptyDir`` mounts a per-pod volume; ``files`` writes projected files at start;
    ``claim`` mounts a PersistentVolumeClaim's volume (``volume``: the claim's name); ``host``
    binds a node's path (``volume``: the path; ``host_type``: hostPath's type)."""

    kind: Literal["emptyDir", "files", "claim", "host"]
    volume: str
    path: str
    read_only: bool = False
    files: tuple[FileItem, ...] = ()
    sensitive: bool = False
    sub_path: str = ""  # within the volume
    sub_path_expr: str = ""  # $(VAR) expanded from the container's environment on the node
    host_type: str = ""


SHARED_MODES = ("ReadWriteMany", "ReadOnlyMany")


def shared_access(modes: tuple[str, ...]) -> bool:
    """Whether a claim's volume is reached alike from every node: a ReadWriteMany or
    ReadOnlyMany claim, which validation accepts only of a storage class with a shared driver
    (``shared: true``). Its pods are not tied to the node that first made it."""
    return any(m in SHARED_MODES for m in modes)


@dataclass(frozen=True)
class Claim:
    """A PersistentVolumeClaim a pod uses: a Docker named volume on one node, made there when
    a pod first uses it (its driver and options are the node's storage class); a shared one is
    a volume of that name on each node that runs one of its pods, of one shared storage."""

    name: str
    storage_class: str = "local"
    size: str = ""  # requests.storage, as written: recorded on the volume and shown
    access_modes: tuple[str, ...] = ("ReadWriteOnce",)
    owner: str = ""  # a StatefulSet whose deletion deletes the claim (whenDeleted: Delete)

    @property
    def once_pod(self) -> bool:
        return "ReadWriteOncePod" in self.access_modes

    @property
    def shared(self) -> bool:
        return shared_access(self.access_modes)


@dataclass(frozen=True)
class Port:
    container_port: int
    protocol: str = "TCP"
    name: str | None = None
    host_port: int | None = None  # published on the node, at host_ip ("": every address)
    host_ip: str = ""


HostPort = tuple[str, str, int]  # (protocol, host IP or "", port): one the node publishes


def ports_clash(a: HostPort, b: HostPort) -> bool:
    """Two published ports cannot share a node: one protocol and port, and one address or
    every address (Kubernetes' NodePorts filter)."""
    return a[0] == b[0] and a[2] == b[2] and (a[1] == b[1] or not a[1] or not b[1])


@dataclass(frozen=True)
class ProbeSpec:
    """A readiness/liveness/startup probe; handler is one of http, tcp, grpc, exec."""

    handler: Literal["http", "tcp", "grpc", "exec"]
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
    service: str = ""  # a gRPC probe's service name


def wget_command(url: str, headers: tuple[tuple[str, str], ...], timeout: float) -> tuple[str, ...]:
    """An HTTP GET by the pause container's busybox: exit 0 for a 2xx or 3xx answer."""
    pairs = [arg for name, value in headers for arg in ("--header", f"{name}: {value}")]
    # busybox wget's own -T crashes in Debian's static build: bound it with timeout(1)
    return ("timeout", f"{timeout:g}", "wget", "-q", "-O", "/dev/null", *pairs, url)


@dataclass(frozen=True)
class Security:
    """A container's effective ``securityContext``: the pod's, with the container's winning
    (``gitops.decide.security`` merges them). Only what differs from the engine's default."""

    user: int | None = None  # runAsUser; None: the image's user
    group: int | None = None  # runAsGroup; None: the user's group
    non_root: bool = False  # runAsNonRoot: checked against the image's user before start
    groups: tuple[int, ...] = ()  # fsGroup and supplementalGroups
    fs_group: int | None = None  # projected files belong to this group
    read_only_root: bool = False
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: str = ""  # "": the runtime's default profile; "unconfined"
    apparmor: str = ""  # "": the runtime's default; "unconfined"; a profile loaded on the node
    selinux: tuple[str, ...] = ()  # "user:…", "role:…", "type:…", "level:…"
    unmasked_proc: bool = False  # procMount: Unmasked


@dataclass(frozen=True)
class Requirement:
    """``key operator values`` of a node or pod selector (``matchLabels`` are ``In``)."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodTerm:
    """Pods matching ``selector`` in ``namespaces`` ("": the pod's own), counted per
    ``topology_key`` domain of the nodes they run on; ``weight`` for a preferred term."""

    selector: tuple[Requirement, ...]
    topology_key: str
    namespaces: tuple[str, ...] = ()
    weight: int = 0


@dataclass(frozen=True)
class Spread:
    max_skew: int
    topology_key: str
    hard: bool  # DoNotSchedule; else ScheduleAnyway (a preference)
    selector: tuple[Requirement, ...]


@dataclass(frozen=True)
class Placement:
    """Where a pod may and would rather run (affinity, tolerations, topology spread)."""

    required_nodes: tuple[tuple[Requirement, ...], ...] = ()  # terms, any of which matches
    preferred_nodes: tuple[tuple[int, tuple[Requirement, ...]], ...] = ()  # (weight, term)
    affinity: tuple[PodTerm, ...] = ()
    anti_affinity: tuple[PodTerm, ...] = ()
    preferred_affinity: tuple[PodTerm, ...] = ()
    preferred_anti_affinity: tuple[PodTerm, ...] = ()
    tolerations: tuple[tuple[str, str, str, str], ...] = ()  # key, operator, value, effect
    spread: tuple[Spread, ...] = ()


@dataclass(frozen=True)
class Dns:
    """A pod's ``hostname``, ``subdomain`` and ``dnsConfig``: set on the container that holds
    its network (Docker's embedded DNS then forwards to ``nameservers``)."""

    hostname: str = ""
    subdomain: str = ""
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # "ndots:2", "edns0"


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
    gpus: int = 0  # nvidia.com/gpu: whole GPUs of the node's, by Docker device request
    ephemeral_storage: int | None = None  # bytes of writable layer, where the driver bounds it
    mounts: tuple[Mount, ...] = ()
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    startup: ProbeSpec | None = None
    pre_stop: tuple[str, ...] | None = None
    # A hook run in the pod's pause container (httpGet, sleep), not in the container (exec).
    pre_stop_in_pod: bool = False
    post_start: tuple[str, ...] | None = None
    post_start_in_pod: bool = False
    security: Security | None = None  # None: no securityContext applies
    stdin: bool = False
    tty: bool = False
    # Where it is in git, for errors: "path:doc: Deployment/name: spec.template.spec.
    # containers[0]". Not part of the template hash: moving a file replaces no pod.
    source: str = ""


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
    # Of those, the ones in memory (``medium: Memory``): a tmpfs of at most this many bytes
    # (None: the engine's default, half the node's memory).
    memory_dirs: tuple[tuple[str, int | None], ...] = ()
    grace_seconds: int = 30
    node_selector: tuple[tuple[str, str], ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()  # set in the pod's namespaces
    pull_secrets: tuple[str, ...] = ()  # imagePullSecrets: Secrets of its namespace, by name
    placement: Placement | None = None
    dns: Dns | None = None
    # Headless Services (clusterIP: None) that select it: their names are its DNS aliases.
    headless: tuple[str, ...] = ()
    # The PersistentVolumeClaims it mounts; not part of the hash (a claim's size or class is
    # about its volume, not the pod; the mounts name the claims).
    claims: tuple[Claim, ...] = ()
    prune: bool = True
    commit: str = ""
    # A Job's pods: "Never" or "OnFailure" ("" is Always: every other kind's). The node reads
    # it back from the labels, so that a finished pod is not counted as running.
    restart_policy: str = ""

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
    def host_paths(self) -> tuple[str, ...]:
        """The node paths its hostPath volumes bind."""
        return tuple(sorted({m.volume for c in self.all_containers() for m in c.mounts
                             if m.kind == "host"}))  # fmt: skip

    @property
    def host_ports(self) -> tuple[HostPort, ...]:
        """The ports its containers publish on the node."""
        return tuple(sorted({(p.protocol, p.host_ip, p.host_port) for c in self.all_containers()
                             for p in c.ports if p.host_port}))  # fmt: skip

    @property
    def gpus(self) -> int:
        """GPUs the scheduler reserves, counted as ``requests`` counts cpu and memory."""
        return max([sum(c.gpus for c in self.containers), *(c.gpus for c in self.init_containers)])

    @property
    def needs_pod_ip(self) -> bool:
        """Some container's environment names the pod's address, which is known before its
        processes start only when a pause container holds the pod's network."""
        return any(e.field == FIELD_POD_IP for c in self.all_containers() for e in c.env)

    @property
    def privileged(self) -> bool:
        return any(c.security is not None and c.security.privileged for c in self.all_containers())

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.image for c in self.all_containers()))
