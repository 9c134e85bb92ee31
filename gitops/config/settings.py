"""Settings of one reconciler, from command-line flags and ``GITOPS_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitops.config.tokens import api_token, default_state_dir, read_secret
from gitops.manifests.entries import Policy
from gitops.manifests.files import Rules
from gitops.model.templates import DEFAULT_MAX_PODS

__all__ = ["NodeConfig", "Settings", "StorageClass", "api_token", "default_state_dir",
           "policy_of", "read_secret"]  # fmt: skip


@dataclass(frozen=True)
class NodeConfig:
    """One Docker engine gitops drives (``gitops.config.nodes`` reads these from a file)."""

    name: str = "local"
    docker_host: str | None = None  # None: DOCKER_HOST or the local socket
    labels: tuple[tuple[str, str], ...] = ()
    address: str | None = None  # where its NodePorts are reached; None: Settings.node_address
    tls_ca: str | None = None  # tcp:// with TLS client certificates (all three, or none)
    tls_cert: str | None = None
    tls_key: str | None = None
    reserve_cpu_millis: int = 0  # kept back from the engine's capacity for the host itself
    reserve_memory: int = 0
    # Who serves its NodePorts: "here" (the reconciler's proxy, on this machine), "node" (its
    # own proxy container), "auto" (here when the address is on this machine).
    proxy: str = "auto"
    # Where its pods' HTTP and TCP probes run: "here" (from the reconciler to the pod's
    # address, as the kubelet probes), "node" (an exec in the pod), "auto" (here when the
    # engine is on this machine and the pod's address is routed from it).
    probes: str = "auto"
    max_pods: int = DEFAULT_MAX_PODS  # beyond it a pod is Pending ("Too many pods")
    allow_privileged: bool = False  # may run pods whose securityContext is privileged
    taints: tuple[tuple[str, str, str], ...] = ()  # (key, value, effect): pods must tolerate
    gpus: int = 0  # NVIDIA GPUs (by the engine's nvidia device driver) pods may ask for
    host_paths: tuple[str, ...] = ()  # hostPath volumes may bind these paths and below them


@dataclass(frozen=True)
class StorageClass:
    """A ``storageClassName``: the Docker volume driver, and its options, a claim's volume is
    made with. ``local`` (Docker's local driver, no options) is always there."""

    name: str
    driver: str = "local"
    options: tuple[tuple[str, str], ...] = ()
    shared: bool = False  # every node reaches the same volume: ReadWriteMany may use it


def policy_of(
    nodes: tuple[NodeConfig, ...],
    classes: tuple[StorageClass, ...],
    skip_api_groups: frozenset[str] = frozenset(),
) -> Policy:
    """What the manifests may ask for beyond what every Docker host can do."""
    return Policy(
        skip_api_groups=skip_api_groups,
        allow_privileged=any(n.allow_privileged for n in nodes),
        storage_classes=tuple((c.name, c.shared) for c in classes),
        host_paths=tuple(sorted({p for n in nodes for p in n.host_paths})),
    )


@dataclass(frozen=True)
class Settings:
    repo: str
    branch: str = "main"
    path: str = ""
    interval: float = 15.0
    state_dir: Path = Path(".gitops-state")
    # The state database's URL ("": SQLite in state_dir); it may carry a password: no repr.
    state: str = field(default="", repr=False)
    listen: str = "127.0.0.1:8080"
    nodes: tuple[NodeConfig, ...] = (NodeConfig(),)
    allow_empty: bool = False
    token_env: str = "GITOPS_GIT_TOKEN"  # noqa: S105 - the variable's name, not a token
    workers: int = 8
    watch: bool = True  # watch a local repository's refs for pushes
    instance: str = "default"  # owner label: several reconcilers may share one engine
    # (initial, maximum, reset after) seconds: Kubernetes' 10 s doubling to 5 min, reset
    # after 10 min running. Applies to crashed containers and to image pulls.
    crash_backoff: tuple[float, float, float] = (10.0, 300.0, 600.0)
    # (initial, maximum) seconds before a Job's next pod after failures: the Job
    # controller's 10 s doubling to 6 min.
    job_backoff: tuple[float, float] = (10.0, 360.0)
    auto_rollback: bool = (
        True  # a rollout past its progress deadline goes back to the last good commit
    )
    node_address: str = "127.0.0.1"  # where NodePort Services listen
    # Where Ingress routes are served on this machine (a node elsewhere: on its address).
    ingress_address: str = "127.0.0.1"
    ingress_http_port: int = 80
    ingress_https_port: int = 443
    stream_listen: str = ""  # exec and port-forward: HOST:PORT; "": the API's host, a free port
    proxy_threads: int = 0  # HAProxy's threads; 0: half the cores (balancer.default_threads)
    # Where a node's own proxy tells the autoscalers what it served (0: it does not)
    node_proxy_stats_port: int = 0
    node_check_interval: float = 2.0  # each engine is pinged this often
    autoscale_interval: float = 15.0  # the autoscalers sample and decide this often
    node_grace: float = 10.0  # silent this long: NotReady (no new pods, out of endpoints)
    eviction_timeout: float = 30.0  # silent this long: its pods are replaced elsewhere
    # Mutating API calls need "Authorization: Bearer <api_token>"; webhooks are verified
    # with webhook_secret (and are off without one). Kept out of repr so no log shows them.
    api_token: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    write_back: bool = False  # the dashboard's rollout actions commit and push to the branch
    webhook_max_bytes: int = 4 * 1024 * 1024  # a larger body is refused with 413 unread
    notify: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (format, url)
    rules: Rules = field(default_factory=Rules)  # which files are manifests (--include, ...)
    skip_api_groups: frozenset[str] = frozenset()  # custom resources of these groups: Skipped
    storage_classes: tuple[StorageClass, ...] = (StorageClass("local"),)
    # Pods on engines of this machine ask gitops for headless Services' names (ready pods only)
    cluster_dns: bool = True
    # Several processes on one PostgreSQL state: only the lease's holder acts (gitops.state.lease)
    leader_elect: bool = False
    # (lease duration, renew deadline, retry period) seconds: Kubernetes' 15 s, 10 s and 2 s
    lease_timing: tuple[float, float, float] = (15.0, 10.0, 2.0)
    advertise: str = ""  # this API's URL, as followers name the leader ("": http://<listen>)

    @property
    def policy(self) -> Policy:
        return policy_of(self.nodes, self.storage_classes, self.skip_api_groups)

    def address_of(self, node: NodeConfig) -> str:
        return node.address or self.node_address

    @property
    def advertise_url(self) -> str:
        host, port = self.listen_host_port
        return self.advertise or f"http://{host}:{port}"

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return (host.strip("[]") or "127.0.0.1", int(port))
