"""The Docker engine adapter: the only module that imports the docker SDK.

Translates the SDK's errors into gitops' classes (``NodeUnavailable`` when the engine does not
answer, ``ImagePullError``, ``ContainerCreateError``) so no caller sees a docker exception.
Uses the SDK's low-level API: listing returns labels and state in one call per node, where the
high-level ``containers.list()`` would inspect every container.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import shutil
import socket
import tarfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import docker.tls
import docker.types
import docker.utils
import requests.exceptions
from docker.utils import parse_repository_tag

from gitops.errors import (
    ContainerConfigError,
    ContainerCreateError,
    GitopsError,
    ImagePullError,
    NodeUnavailable,
    SandboxGone,
)
from gitops.model.labels import (
    DEFAULT_INSTANCE,
    INFRA_NAME,
    L_CLAIM,
    L_CREATED,
    L_GPU_IDS,
    L_INSTANCE,
    L_JOB,
    L_MANAGED,
    L_NAMESPACE,
    L_POD,
    L_PROXY,
    JobRecord,
    claim_labels,
    decode_job_record,
    decode_volume,
    job_record_labels,
    service_labels,
)
from gitops.model.labels import decode as decode_labels
from gitops.model.labels import encode as encode_labels
from gitops.model.live import ContainerInfo, NodeCapacity, PodInfo, VolumeInfo, exited_ago
from gitops.model.logs import LogLine, LogQuery, LogStream, parse_rfc3339
from gitops.model.sessions import STDERR, STDOUT, ExecSession
from gitops.model.templates import (
    FIELD_HOST_IP,
    FIELD_POD_IP,
    PROBES_AUTO,
    ContainerSpec,
    FileItem,
    Mount,
    PodTemplate,
    RegistryAuth,
)
from gitops.nodes.base import (
    CHANGED,
    CONNECTED,
    DISCONNECTED,
    SERVICE_ROUTE,
    STOPPED,
    PodPlace,
    claim_volume_name,
    container_name,
    engine_here,
    managed_filter,
    needs_pause,
    network_name,
    probe_place,
    probed_from_here,
    record_volume_name,
    resolve_env,
    service_aliases,
    service_command,
    service_container_name,
    sized_options,
    sub_path,
    upstream_nameservers,
    volume_name,
)
from gitops.nodes.instances import NOTHING, Instances
from gitops.nodes.proxyimage import CERTS, CONFIG, DOCKERFILE, haproxy_files, image_tag
from gitops.nodes.security import engine_user, file_owner, host_options, non_root_problem

log = logging.getLogger(__name__)
PING_TIMEOUT = 3  # seconds
API_VERSION = "1.41"  # Docker 20.10, the oldest engine supported; for TLS endpoints
SETTLE_TIMEOUT = 2.0  # seconds the container list may lag behind a "die" event
EXITS = tuple(a for a in STOPPED if a != "destroy")  # told once the list shows it exited
PAUSE_IMAGE = "gitops/pause:2"
# The pause image also prepares a pod's volumes, never started: an empty volume mounted at one
# of its /emptydir/N (mode 0777) takes that mode (Docker's copy-up), as a Kubernetes emptyDir
# is world-writable; a container whose root is read-only gets its projected files in a volume
# filled at /files/N. Up to PREPARED volumes at a time.
PREPARED = 16
MAX_WAIT_SECONDS = 86_400  # the longest stop or restart grace an engine call waits
MAX_HOOK = 120.0  # the longest a postStart hook may run (the kubelet has no bound; a pass does)
# The pod's infrastructure container: holds the pod's network and IPC namespaces for the app
# containers (so they keep them across restarts) and carries busybox's wget and nc, with which
# HTTP and TCP probes run inside the pod against its own loopback.
PAUSE_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/sh", "-c", "for i in $(seq 0 15); do mkdir -p /emptydir/$i /files/$i; \\
  chmod 0777 /emptydir/$i; done"]
ENTRYPOINT ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
"""


def _ip(row: dict[str, Any]) -> str:
    """The container's address on its (first) network, from the list call's summary."""
    networks = (row.get("NetworkSettings") or {}).get("Networks") or {}
    return next((str(n.get("IPAddress")) for n in networks.values() if n.get("IPAddress")), "")


def _finished(status: str, now: float) -> float:
    """When an exited container exited, from the list call's "Exited (1) 5 seconds ago"."""
    ago = exited_ago(status)
    return 0.0 if ago is None else now - ago


def published(template: PodTemplate) -> tuple[list[Any], dict[int | str, Any]]:
    """A pod's hostPorts as the engine takes them: the container ports to expose, and each
    one's binding on the node (an address, or every address of the node)."""
    exposed: list[Any] = []
    bindings: dict[int | str, Any] = {}
    for c in template.all_containers():
        for p in c.ports:
            if p.host_port:
                key = f"{p.container_port}/{p.protocol.lower()}"
                exposed.append((p.container_port, p.protocol.lower()))
                bindings[key] = (p.host_ip, p.host_port) if p.host_ip else p.host_port
    return exposed, bindings


def _static_busybox() -> str:
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).is_file():
            head = Path(candidate).read_bytes()[:8192]
            if head.startswith(b"\x7fELF") and b"ld-linux" not in head and b"ld-musl" not in head:
                return candidate
    raise ContainerCreateError(
        "no static busybox on this machine to build the pod infrastructure image from "
        "(install Debian's busybox-static, or give a pause image in a registry)"
    )


@contextlib.contextmanager
def _translated(node: str, what: str) -> Iterator[None]:
    """Engine answered with an error -> ContainerCreateError; engine silent -> NodeUnavailable."""
    try:
        yield
    except GitopsError:
        raise
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise NodeUnavailable(f"node {node}: {what}: engine does not answer: {exc}") from exc
    except docker.errors.APIError as exc:
        raise ContainerCreateError(f"node {node}: {what}: {exc.explanation or exc}") from exc
    except docker.errors.DockerException as exc:  # e.g. no engine at the socket at all
        raise NodeUnavailable(f"node {node}: {what}: {exc}") from exc


@contextlib.contextmanager
def _sandbox(node: str) -> Iterator[None]:
    """The engine's "network … not found" on a start: the container's network is gone for
    good (the engine made its networks anew), which no retry mends."""
    try:
        yield
    except docker.errors.APIError as exc:
        said = str(exc.explanation or exc)
        if said.startswith("network ") and said.endswith(" not found"):
            raise SandboxGone(f"node {node}: {said}: its pod is made again") from exc
        raise


class _DockerSession:
    """An engine exec over its hijacked connection: raw with a terminal, else the engine's
    multiplexed frames (8 bytes: stream, 3 zero, size)."""

    def __init__(self, node: DockerNode, exec_id: str, sock: Any, tty: bool) -> None:
        self.node, self.exec_id, self.tty = node, exec_id, tty
        self._sock = getattr(sock, "_sock", sock)  # the socket under the SDK's SocketIO
        self._buf = b""

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def _recv(self, n: int) -> bytes:
        try:
            return bytes(self._sock.recv(n))
        except OSError:
            return b""

    def read(self) -> tuple[int, bytes]:
        if self.tty:
            return STDOUT, self._recv(65536)
        while len(self._buf) < 8:
            more = self._recv(65536)
            if not more:
                return STDOUT, b""
            self._buf += more
        stream, size = self._buf[0], int.from_bytes(self._buf[4:8], "big")
        while len(self._buf) < 8 + size:
            more = self._recv(65536)
            if not more:
                return STDOUT, b""
            self._buf += more
        data, self._buf = self._buf[8 : 8 + size], self._buf[8 + size :]
        return (STDERR if stream == 2 else STDOUT), data

    def resize(self, columns: int, rows: int) -> None:
        with contextlib.suppress(GitopsError), _translated(self.node.name, "exec resize"):
            self.node.api.exec_resize(self.exec_id, height=rows, width=columns)

    def exit_code(self) -> int:
        deadline = time.monotonic() + 10  # the engine may note the end a moment after it
        while True:
            with _translated(self.node.name, "exec inspect"):
                info = self.node.api.exec_inspect(self.exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                code = info.get("ExitCode")
                return int(code) if code is not None else 1
            time.sleep(0.05)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def _usage(stats: Mapping[str, Any]) -> tuple[int, int] | None:
    """(CPU millicores, working-set bytes) from one ``docker stats`` sample, as cAdvisor and
    ``kubectl top`` count them: CPU over the sample, memory less the inactive file cache."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    if not cpu.get("system_cpu_usage"):
        return None  # not running
    used = cpu["cpu_usage"]["total_usage"] - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system = cpu["system_cpu_usage"] - pre.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or [1])
    millis = round(used / system * cores * 1000) if system > 0 and used > 0 else 0
    memory = stats.get("memory_stats") or {}
    extra = memory.get("stats") or {}
    cache = extra.get("inactive_file", extra.get("total_inactive_file", 0))
    return millis, max(0, int(memory.get("usage", 0)) - int(cache))


def _log_line(raw: bytes) -> LogLine:
    """One line as the engine sends it with ``timestamps``: "<RFC 3339 time> <text>"."""
    text = raw.decode("utf-8", "replace").rstrip("\r")
    stamp, _, rest = text.partition(" ")
    try:
        return LogLine(parse_rfc3339(stamp), rest)
    except ValueError:
        return LogLine(0.0, text)


class SentLines:
    """What a followed log sent, for reopening it from the last line's time: the engine sends
    again what it holds from that time on. Those lines are skipped, and only those: the ones
    before that time, and at it the ones already sent (two lines can share a time, a float
    being coarser than the engine's nanoseconds, and both must arrive)."""

    def __init__(self) -> None:
        self.last = 0.0  # the last line's time
        self._at_last: Counter[str] = Counter()  # the texts sent at it
        self._replay: tuple[float, Counter[str]] | None = None

    def reopened(self) -> None:
        self._replay = (self.last, Counter(self._at_last))

    def new(self, line: LogLine) -> bool:
        """False for a line a reopened stream sends again; else True, and it counts as sent."""
        if self._replay is not None and line.time:
            since, repeats = self._replay
            if line.time < since:
                return False
            if line.time == since and repeats[line.text] > 0:
                repeats[line.text] -= 1
                return False
            self._replay = None  # past what was sent
        if line.time and line.time != self.last:
            self.last, self._at_last = line.time, Counter()
        self._at_last[line.text] += 1
        return True


def _dirs(paths: set[str]) -> bytes:
    """A tar of directories (and their parents), world-writable as an emptyDir is."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        made: set[str] = set()
        for path in sorted(paths):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o777
                    tar.addfile(info)
    return buf.getvalue()


def _tar(files: list[tuple[str, bytes, int]], gid: int = 0) -> bytes:
    """A tar of projected files (of group ``gid``); parent directories are created too."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs: set[str] = set()
        for path, data, mode in files:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            info.gid = gid
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class DockerNode:
    """A Docker engine reached through the SDK; API version negotiated with the engine."""

    def __init__(
        self,
        name: str = "local",
        base_url: str | None = None,
        instance: str = DEFAULT_INSTANCE,
        timeout: int = 60,
        pause_image: str = PAUSE_IMAGE,
        tls: tuple[str, str, str] | None = None,  # (ca, cert, key) for a tcp:// endpoint
        probes: str = PROBES_AUTO,  # where HTTP/TCP probes run (``Node.probes``)
        host_ip: str = "",  # the node's address for status.hostIP ("": its pods' gateway)
        gpus: int = 0,  # NVIDIA GPUs its containers may be given (device requests)
        # storageClassName -> (Docker volume driver, its options), for claims' volumes
        volume_drivers: Mapping[str, tuple[str, tuple[tuple[str, str], ...]]] | None = None,
        cluster_dns: bool = False,  # pods ask gitops' cluster DNS (an engine on this machine)
    ) -> None:
        self._cluster_dns = cluster_dns and engine_here(base_url)
        self._gateways: dict[str, str] = {}  # network -> its gateway, for the cluster DNS
        self._drivers = dict(volume_drivers or {})
        self._name = name
        self._gpus = gpus
        self._gpu_lock = threading.Lock()  # one allocation at a time: no GPU given twice
        self._sized: bool | None = None  # the storage driver bounds a writable layer's size
        self._host_ip = host_ip
        self._probes = probe_place(base_url, probes)
        self._routed: dict[str, bool] = {}  # network -> its subnet is routed from here
        self._instance = instance
        self._base_url = base_url
        self._timeout = timeout
        self._tls = tls
        self._client: docker.DockerClient | None = None
        self._pinger: docker.APIClient | None = None
        self._lock = threading.Lock()
        self.pause_image = pause_image
        self._image_lock = threading.Lock()
        self._pause_ready = False
        self._proxy_tag: str | None = None
        self._exec_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"exec-{name}")
        self._settle_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"settle-{name}")
        self._instances = Instances()  # where each container's instances begin in its log

    @property
    def name(self) -> str:
        return self._name

    @property
    def instance(self) -> str:
        return self._instance

    @property
    def probes(self) -> str:
        return self._probes

    def _probes_from_here(self, network: str) -> bool:
        """Whether the pods on ``network`` are probed from this machine (so a lone container
        needs no pause container to carry busybox for its probes). One inspect a network."""
        if self._probes != PROBES_AUTO:  # no need to ask the engine for the subnet
            return probed_from_here(self._probes, "")
        if network not in self._routed:
            ipam = self.api.inspect_network(network).get("IPAM") or {}
            subnets = [str(c.get("Subnet", "")) for c in ipam.get("Config") or []]
            self._routed[network] = any(
                probed_from_here(self._probes, n.split("/")[0]) for n in subnets if n
            )
        return self._routed[network]

    @property
    def api(self) -> docker.APIClient:
        with self._lock:
            if self._client is None:
                with _translated(self._name, "connect"):
                    self._client = docker.DockerClient(**self._connection(self._timeout))
                    self._untrusting(self._client.api)
            return self._client.api

    def _untrusting(self, client: docker.APIClient) -> docker.APIClient:
        """With our own CA, ignore REQUESTS_CA_BUNDLE and the like: requests lets them override
        a session's CA (psf/requests#3829), and the engine's certificate is not in them."""
        if self._tls is not None:
            client.trust_env = False
        return client

    def _connection(self, timeout: int) -> dict[str, Any]:
        """How to reach the engine: its endpoint, TLS client certificates for tcp://, and the
        system's ssh client for ssh:// (keys and known_hosts as the user has them)."""
        if not self._base_url:
            env = docker.utils.kwargs_from_env()
            return {**env, "version": "auto", "timeout": timeout}
        kw: dict[str, Any] = {"base_url": self._base_url, "version": "auto", "timeout": timeout}
        if self._tls is not None:
            ca, cert, key = self._tls
            kw["tls"] = docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
            kw["version"] = API_VERSION  # "auto" asks the engine before trust_env can be unset
        if self._base_url.startswith("ssh://"):
            kw["use_ssh_client"] = True
        return kw

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._pinger is not None:
                self._pinger.close()
                self._pinger = None

    def ping(self) -> None:
        with _translated(self._name, "ping"):
            with self._lock:
                if self._pinger is None:
                    # Its own short timeout: a silent machine must not hold the health check.
                    self._pinger = self._untrusting(
                        docker.APIClient(**self._connection(PING_TIMEOUT))
                    )
                pinger = self._pinger
            pinger.ping()

    def capacity(self) -> NodeCapacity:
        info = self.info()
        return NodeCapacity(
            cpu_millis=int(info.get("NCPU", 0)) * 1000,
            memory=int(info.get("MemTotal", 0)),
            version=str(info.get("ServerVersion", "")),
            os=str(info.get("OperatingSystem", "")),
        )

    def info(self) -> dict[str, Any]:
        with _translated(self._name, "info"):
            return dict(self.api.info())

    def list_containers(self) -> list[ContainerInfo]:
        with _translated(self._name, "list containers"):
            rows = self.api.containers(all=True, filters={"label": managed_filter(self._instance)})
        now = time.time()
        return [
            ContainerInfo(
                node=self._name,
                id=row["Id"],
                name=(row.get("Names") or ["/?"])[0].lstrip("/"),
                labels=dict(row.get("Labels") or {}),
                state=row.get("State", ""),
                status=row.get("Status", ""),
                image=row.get("Image", ""),
                created=float((row.get("Labels") or {}).get(L_CREATED, row.get("Created", 0))),
                ip=_ip(row),
                finished=_finished(row.get("Status", ""), now),
            )
            for row in rows
        ]

    def list_networks(self) -> list[str]:
        with _translated(self._name, "list networks"):
            nets = self.api.networks(filters={"label": managed_filter(self._instance)})
        return sorted(n["Labels"].get(L_NAMESPACE, "") for n in nets)

    def list_volumes(self) -> list[VolumeInfo]:
        with _translated(self._name, "list volumes"):
            found = (
                self.api.volumes(
                    filters={"label": [L_CLAIM, f"{L_INSTANCE}={self._instance}"]}
                ).get("Volumes")
                or []
            )
        return [
            VolumeInfo(self._name, v["Name"], decode_volume(v.get("Labels") or {})) for v in found
        ]

    def list_records(self) -> list[JobRecord]:
        with _translated(self._name, "list job records"):
            found = (
                self.api.volumes(filters={"label": [L_JOB, f"{L_INSTANCE}={self._instance}"]}).get(
                    "Volumes"
                )
                or []
            )
        return [decode_job_record(v.get("Labels") or {}, self._name) for v in found]

    def write_record(self, record: JobRecord) -> None:
        name = record_volume_name(record, self._instance)
        with _translated(self._name, f"record job {record.namespace}/{record.job}"):
            try:
                self.api.inspect_volume(name)
            except docker.errors.NotFound:
                labels = job_record_labels(record, self._instance)
                self.api.create_volume(name, labels=labels)

    def remove_record(self, record: JobRecord) -> None:
        where = f"forget job {record.namespace}/{record.job}"
        with _translated(self._name, where), contextlib.suppress(docker.errors.NotFound):
            self.api.remove_volume(record_volume_name(record, self._instance))

    def remove_volume(self, name: str) -> None:
        with _translated(self._name, f"remove volume {name}"):
            self.api.remove_volume(name)

    def _ensure_claims(self, template: PodTemplate) -> None:
        """Each claim's volume, made on first use with its storage class's driver and options
        (``volume_drivers``); an existing one, and its data, is used as it is."""
        for claim in template.claims:
            name = claim_volume_name(template.namespace, claim.name, self._instance)
            try:
                self.api.inspect_volume(name)
                continue
            except docker.errors.NotFound:
                pass
            driver, options = self._drivers.get(claim.storage_class, ("local", ()))
            labels = claim_labels(template.namespace, claim, self._instance, time.time())
            opts = sized_options(driver, dict(options), claim.size)
            self.api.create_volume(name, driver=driver, driver_opts=opts or None, labels=labels)
            log.info("node %s: made volume %s for PersistentVolumeClaim %s/%s", self._name,
                     name, template.namespace, claim.name)  # fmt: skip

    def _sub_dirs(self, volume: str, subs: set[str]) -> str:
        """Make ``subs`` inside ``volume`` (a never-started helper receives them), and say
        where the volume is on the engine's host: a subPath is bound from there."""
        self.ensure_pause_image()
        helper = self.api.create_container(
            image=self.pause_image,
            labels={L_MANAGED: "true", L_INSTANCE: self._instance},
            host_config=self.api.create_host_config(
                mounts=[docker.types.Mount(target="/v", source=volume, type="volume")],
                network_mode="none",
            ),
        )
        try:
            self.api.put_archive(helper["Id"], "/v", _dirs(subs))
        finally:
            self.api.remove_container(helper["Id"], force=True)
        return str(self.api.inspect_volume(volume)["Mountpoint"])

    def ensure_network(self, namespace: str) -> None:
        name = network_name(namespace, self._instance)
        with _translated(self._name, f"create network {name}"):
            if self.api.networks(names=[name]):
                return
            labels = {L_MANAGED: "true", L_INSTANCE: self._instance, L_NAMESPACE: namespace}
            self.api.create_network(name, driver="bridge", labels=labels)
        # Made anew (the engine may have lost its networks): its subnet may be another.
        self._routed.pop(name, None)
        self._gateways.pop(name, None)

    def dns_address(self, namespace: str) -> str | None:
        if not self._cluster_dns:
            return None
        return self._gateway(network_name(namespace, self._instance)) or None

    def _gateway(self, network: str) -> str:
        """The gateway of ``network``'s bridge, its pods' way to this node ("" while the network
        is not there). One inspect a network."""
        if network not in self._gateways:
            with _translated(self._name, f"inspect network {network}"):
                try:
                    config = (self.api.inspect_network(network).get("IPAM") or {}).get("Config")
                except docker.errors.NotFound:
                    return ""
            gateway = str((config or [{}])[0].get("Gateway", ""))
            if not gateway:
                return ""
            self._gateways[network] = gateway
        return self._gateways[network]

    def remove_network(self, namespace: str) -> None:
        name = network_name(namespace, self._instance)
        self._routed.pop(name, None)  # a network made again may get another subnet
        self._gateways.pop(name, None)
        with (
            _translated(self._name, f"remove network {name}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            self.api.remove_network(name)

    def has_image(self, image: str) -> bool:
        with _translated(self._name, f"inspect image {image}"):
            try:
                self.api.inspect_image(image)  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                return False
            return True

    def pull(self, image: str, auth: RegistryAuth | None = None) -> None:
        repo, tag = parse_repository_tag(image)
        login = {"username": auth.username, "password": auth.password} if auth else None
        started = time.monotonic()
        log.info("pulling %s on %s", image, self._name)
        try:
            with _translated(self._name, f"pull {image}"):
                events = self.api.pull(
                    repo, tag=tag or "latest", stream=True, decode=True, auth_config=login
                )
                for event in events:
                    if "error" in event:
                        raise ImagePullError(f"node {self._name}: pull {image}: {event['error']}")
        except ContainerCreateError as exc:  # the engine answered: the image is the problem
            raise ImagePullError(str(exc)) from exc
        log.info("pulled %s on %s in %.1fs", image, self._name, time.monotonic() - started)

    def ensure_pause_image(self) -> None:
        """Make sure the pod infrastructure image exists on this node (once per process).

        A reference with a registry is pulled; a plain name (the default) is built on the node
        from a static busybox on this machine, so no registry is needed for it."""
        with self._image_lock:
            if self._pause_ready:
                return
            if not self.has_image(self.pause_image):
                first = self.pause_image.split("/", 1)[0]
                if "/" in self.pause_image and (
                    "." in first or ":" in first or first == "localhost"
                ):
                    self.pull(self.pause_image)
                else:
                    self._build_pause()
            self._pause_ready = True

    def _build_pause(self) -> None:
        busybox = _static_busybox()
        context = [
            ("Dockerfile", PAUSE_DOCKERFILE.encode(), 0o644),
            ("busybox", Path(busybox).read_bytes(), 0o755),
        ]
        log.info("building %s on %s from %s", self.pause_image, self._name, busybox)
        self._build(context, self.pause_image, "pause image")

    def _build(self, context: list[tuple[str, bytes, int]], tag: str, what: str) -> None:
        """Build ``tag`` on this node from files sent along (no registry, no pull)."""
        with _translated(self._name, f"build {tag}"):
            for event in self.api.build(
                fileobj=io.BytesIO(_tar(context)),
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                labels={L_MANAGED: "true"},
            ):
                if "error" in event:
                    raise ContainerCreateError(f"node {self._name}: build {what}: {event['error']}")

    def _pod_network(self, template: PodTemplate, pod: str) -> dict[str, Any]:
        """What the container holding the pod's network is created with: the namespace's
        bridge, the pod's name as its DNS alias and hostname."""
        network = network_name(template.namespace, self._instance)
        dns = template.dns
        hostname = (dns.hostname if dns else "") or pod[:63]
        aliases = list(dict.fromkeys([pod, hostname]))
        if dns is not None and dns.subdomain:  # hostname.subdomain resolves, as in Kubernetes
            name = f"{hostname}.{dns.subdomain}"
            ns = template.namespace
            aliases += [name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]
        if self.dns_address(template.namespace) is None:
            # No cluster DNS to ask: a headless Service's name is each pod's own alias, which
            # the engine answers whether or not the pod is ready.
            for service in template.headless:
                aliases += service_aliases(template.namespace, service)
        endpoint = self.api.create_endpoint_config(aliases=aliases)
        # The SDK's stub says one EndpointConfig; the engine takes a map by network name.
        networking = self.api.create_networking_config({network: endpoint})  # type: ignore[arg-type]
        out: dict[str, Any] = {"hostname": hostname, "networking_config": networking}
        if dns is not None and dns.subdomain:
            out["domainname"] = f"{dns.subdomain}.{template.namespace}.svc.cluster.local"
        return out

    def _dns_options(self, template: PodTemplate) -> dict[str, Any]:
        """The host-config part of ``dnsConfig``, for the container holding the pod's network:
        the embedded DNS forwards what it does not know to these servers, in order; gitops'
        cluster DNS first when it serves this node, then ``dnsConfig``'s or the node's own."""
        dns = template.dns
        servers = list(dns.nameservers) if dns else []
        cluster = self.dns_address(template.namespace)
        if cluster is not None:
            servers = [cluster, *(servers or upstream_nameservers())]
        if dns is None and not servers:
            return {}
        return {
            "dns": servers or None,
            "dns_search": (list(dns.searches) or None) if dns else None,
            "dns_opt": (list(dns.options) or None) if dns else None,
        }

    def _create_pause(self, template: PodTemplate, pod: str) -> str:
        network = network_name(template.namespace, self._instance)
        exposed, bindings = published(template)
        host_config = self.api.create_host_config(
            network_mode=network,
            ipc_mode="shareable",
            restart_policy={"Name": "no"},
            sysctls=dict(template.sysctls) or None,  # the pod's namespaces are the pause's
            port_bindings=bindings or None,  # hostPort: on the container holding the network
            **self._dns_options(template),
        )
        created = self.api.create_container(
            image=self.pause_image,
            name=container_name(template.namespace, pod, INFRA_NAME, self._instance),
            labels=encode_labels(
                template, pod, INFRA_NAME, -1, False, self._name, time.time(), self._instance
            ),
            host_config=host_config,
            stop_timeout=2,
            ports=exposed or None,
            **self._pod_network(template, pod),
        )
        return str(created["Id"])

    def _place(self, template: PodTemplate, pod: str, pause: str | None) -> PodPlace:
        """The downward API's runtime fields, looked up only when some container asks."""
        fields = {e.field for c in template.all_containers() for e in c.env if e.field}
        if not fields:
            return PodPlace(pod, self._name)
        network = network_name(template.namespace, self._instance)
        pod_ip = host_ip = ""
        if pause is not None and FIELD_POD_IP in fields:
            found = self.api.inspect_container(pause)
            pod_ip = str(found["NetworkSettings"]["Networks"][network]["IPAddress"])
        if FIELD_HOST_IP in fields:
            # The node as its pods reach it: the gateway of their bridge, unless configured.
            host_ip = self._host_ip or self._gateway(network)
        wants_capacity = any(f.startswith(("limits.", "requests.")) for f in fields)
        return PodPlace(
            pod, self._name, host_ip, pod_ip, self.capacity() if wants_capacity else None
        )

    def _image_user(self, image: str) -> str:
        found = self.api.inspect_image(image)  # type: ignore[no-untyped-call]
        config = found.get("Config") or {}
        return str(config.get("User") or "")

    def _create_container(
        self,
        template: PodTemplate,
        pod: str,
        spec: ContainerSpec,
        index: int,
        pause: str | None,
        filled: dict[str, str],
        place: PodPlace,
    ) -> str:
        """One container of the pod: in the namespaces ``pause`` holds, or (None) holding the
        pod's network itself. ``filled``: projected volumes already written to a Docker volume
        (for a read-only root), by the pod's volume name."""
        ns = template.namespace
        init = index < len(template.init_containers)
        sec = spec.security
        image_user = self._image_user(spec.image) if sec is not None else ""
        problem = non_root_problem(sec, image_user)
        if problem:
            raise ContainerConfigError(f"container {spec.name} of pod {ns}/{pod}: {problem}")
        env = resolve_env(spec.env, place)
        volumes = [self._volume_mount(m, ns, pod, env) for m in spec.mounts
                   if m.kind in ("emptyDir", "claim", "host")]  # fmt: skip
        binds = [v for v in volumes if isinstance(v, str)]
        mounts = [v for v in volumes if not isinstance(v, str)] + [
            docker.types.Mount(
                target=m.path, source=filled[m.volume], type="volume", read_only=True
            )
            for m in spec.mounts
            if m.kind == "files" and m.volume in filled
        ]
        exposed, bindings = published(template) if pause is None else ([], {})
        if pause is not None:  # the pod's namespaces, held by its pause container
            shared: dict[str, Any] = {
                "network_mode": f"container:{pause}",
                "ipc_mode": f"container:{pause}",
            }
        else:
            shared = {"network_mode": network_name(ns, self._instance)}
            shared.update(self._dns_options(template))
            if exposed:  # this container holds the pod's network: its hostPorts are here
                shared["port_bindings"] = bindings
            if template.sysctls:  # this container holds the pod's namespaces
                shared["sysctls"] = dict(template.sysctls)
        host_config = self.api.create_host_config(
            init=True,  # reaps zombies and delivers SIGTERM to a PID 1 that ignores it
            mounts=mounts,
            binds=binds or None,
            nano_cpus=spec.cpu_limit_millis * 1_000_000 if spec.cpu_limit_millis else None,
            mem_limit=spec.memory_limit,
            cpu_shares=max(2, spec.cpu_request_millis * 1024 // 1000)
            if spec.cpu_request_millis
            else None,
            mem_reservation=spec.memory_request if spec.memory_limit else None,
            restart_policy={"Name": "no"},  # restarts are the reconciler's, with its back-off
            storage_opt=self._storage(spec, pod),
            **host_options(sec),
            **shared,
        )
        own = self._pod_network(template, pod) if pause is None else {}
        labels = encode_labels(
            template, pod, spec.name, index, init, self._name, time.time(), self._instance,
            spec, own_network=pause is None,
        )  # fmt: skip
        create: dict[str, Any] = dict(
            ports=exposed or None,
            image=spec.image,
            name=container_name(ns, pod, spec.name, self._instance),
            entrypoint=list(spec.command) if spec.command is not None else None,
            command=list(spec.args) if spec.args is not None else None,
            environment=env,
            working_dir=spec.working_dir,
            user=engine_user(sec, image_user),
            tty=spec.tty,
            stdin_open=spec.stdin,
            labels=labels,
            host_config=host_config,
            stop_timeout=template.grace_seconds,
            **own,
        )
        with self._gpu_lock if spec.gpus else contextlib.nullcontext():
            if spec.gpus:  # these GPUs of the node, and no other container's
                ids = self._free_gpus(spec.gpus, f"container {spec.name} of pod {ns}/{pod}")
                labels[L_GPU_IDS] = ",".join(ids)
                host_config["DeviceRequests"] = [
                    {"Driver": "nvidia", "DeviceIDs": ids, "Capabilities": [["gpu"]]}
                ]
            cid = str(self.api.create_container(**create)["Id"])
        for m in spec.mounts:
            if m.kind == "files" and m.files and m.volume not in filled:
                gid, items = self._projected(spec, m.path, m.files)
                self.api.put_archive(cid, "/", _tar(items, gid))
        return cid

    def _free_gpus(self, count: int, what: str) -> list[str]:
        """``count`` of the node's GPUs that no container of any instance holds."""
        held: set[str] = set()
        for row in self.api.containers(all=True, filters={"label": L_GPU_IDS}):
            held.update(x for x in (row.get("Labels") or {}).get(L_GPU_IDS, "").split(",") if x)
        free = [str(i) for i in range(self._gpus) if str(i) not in held]
        if len(free) < count:
            raise ContainerCreateError(
                f"node {self._name}: {what}: {count} nvidia.com/gpu wanted, "
                f"{len(free)} of the node's {self._gpus} free"
            )
        return free[:count]

    def _storage(self, spec: ContainerSpec, pod: str) -> dict[str, str] | None:
        """The writable layer's size for an ephemeral-storage limit, where the storage driver
        can bound it (overlay2 on xfs with project quotas, btrfs, zfs); elsewhere said once."""
        if spec.ephemeral_storage is None:
            return None
        if self._sized is None:
            info = self.api.info()
            status = dict(tuple(x) for x in info.get("DriverStatus") or [] if len(x) == 2)
            driver = info.get("Driver", "")
            backing = status.get("Backing Filesystem", "")
            self._sized = driver in ("btrfs", "zfs") or (driver == "overlay2" and backing == "xfs")
            if not self._sized:
                log.warning(
                    "node %s: ephemeral-storage limits are not enforced: storage driver %s on "
                    "%s cannot bound a container's writable layer (overlay2 on xfs with pquota, "
                    "btrfs or zfs can); first of pod %s",
                    self._name, driver, backing or "an unknown filesystem", pod,
                )  # fmt: skip
        return {"size": str(spec.ephemeral_storage)} if self._sized else None

    def _volume_mount(
        self, m: Mount, ns: str, pod: str, env: list[str]
    ) -> docker.types.Mount | str:
        """An emptyDir's, a claim's or a node path's mount; a subPath of a volume is bound from
        the volume's place on the engine's host (Docker 20.10 mounts no volume subpath)."""
        sub = sub_path(m, env)
        if m.kind == "host":
            source = f"{m.volume.rstrip('/')}/{sub}" if sub else m.volume
            # Bound as -v binds it: a missing directory is made, as DirectoryOrCreate makes it
            # (and as "" leaves it to the runtime); Directory and File must exist already.
            if m.host_type in ("", "DirectoryOrCreate"):
                return f"{source}:{m.path}:{'ro' if m.read_only else 'rw'}"
            return docker.types.Mount(m.path, source, type="bind", read_only=m.read_only)
        if m.kind == "claim":
            volume = claim_volume_name(ns, m.volume, self._instance)
        else:
            volume = volume_name(ns, pod, m.volume, self._instance)
        if sub:
            root = self._sub_dirs(volume, {sub})
            return docker.types.Mount(m.path, f"{root}/{sub}", type="bind", read_only=m.read_only)
        # A volume starts empty, whatever the image holds there (Kubernetes' emptyDir and PV).
        return docker.types.Mount(m.path, volume, type="volume", read_only=m.read_only,
                                  no_copy=True)  # fmt: skip

    @staticmethod
    def _projected(
        spec: ContainerSpec, root: str, files: tuple[FileItem, ...]
    ) -> tuple[int, list[tuple[str, bytes, int]]]:
        gid = file_owner(spec.security, 0)[0]
        return gid, [
            (f"{root.rstrip('/')}/{f.path}", f.data, file_owner(spec.security, f.mode)[1])
            for f in files
        ]

    def _prepare(self, template: PodTemplate, pod: str, volumes: list[str]) -> dict[str, str]:
        """Give the pod's emptyDirs mode 0777 and write the projected files of containers with
        a read-only root into volumes of their own, with never-started pause containers
        (``PAUSE_IMAGE`` says how). Returns the filled volumes by the pod's volume name."""
        ns = template.namespace
        in_memory = {v for v, _ in template.memory_dirs}  # their mode is set by the tmpfs
        empty = [
            volume_name(ns, pod, v, self._instance)
            for v in template.empty_dirs
            if v not in in_memory
        ]
        readonly = {
            m.volume: (spec, m)
            for spec in template.all_containers()
            if spec.security is not None and spec.security.read_only_root
            for m in spec.mounts
            if m.kind == "files"
        }
        if not empty and not readonly:
            return {}
        self.ensure_pause_image()
        labels = {L_MANAGED: "true", L_INSTANCE: self._instance, L_POD: pod}
        filled: dict[str, str] = {}
        jobs: list[tuple[str, str, tuple[ContainerSpec, Mount] | None]] = [
            (name, "/emptydir", None) for name in empty
        ]
        for volume, (spec, mount) in readonly.items():
            name = volume_name(ns, pod, f"files.{volume}", self._instance)
            self.api.create_volume(name, labels=labels)
            volumes.append(name)
            filled[volume] = name
            jobs.append((name, "/files", (spec, mount)))
        for start in range(0, len(jobs), PREPARED):
            batch = jobs[start : start + PREPARED]
            mounts = [
                docker.types.Mount(target=f"{root}/{i}", source=name, type="volume")
                for i, (name, root, _) in enumerate(batch)
            ]
            helper = self.api.create_container(
                image=self.pause_image,
                labels=labels,
                host_config=self.api.create_host_config(mounts=mounts, network_mode="none"),
            )
            try:
                for i, (_, root, job) in enumerate(batch):
                    if job is not None:
                        spec, mount = job
                        gid, items = self._projected(spec, "", mount.files)
                        self.api.put_archive(helper["Id"], f"{root}/{i}", _tar(items, gid))
            finally:
                self.api.remove_container(helper["Id"], force=True)
        return filled

    def create_pod(self, template: PodTemplate, pod: str) -> None:
        ns = template.namespace
        created: list[str] = []
        volumes: list[str] = []
        try:
            with _translated(self._name, f"create pod {ns}/{pod}"):
                network = network_name(ns, self._instance)
                with_pause = needs_pause(template, self._probes_from_here(network))
                if with_pause:
                    self.ensure_pause_image()
                in_memory = dict(template.memory_dirs)
                for vol in template.empty_dirs:
                    name = volume_name(ns, pod, vol, self._instance)
                    labels = {L_MANAGED: "true", L_INSTANCE: self._instance, L_POD: pod}
                    opts = None
                    if vol in in_memory:  # a tmpfs the pod's containers share, world-writable
                        size = in_memory[vol]
                        o = "mode=1777" + (f",size={size}" if size else "")
                        opts = {"type": "tmpfs", "device": "tmpfs", "o": o}
                    self.api.create_volume(name, labels=labels, driver_opts=opts)
                    volumes.append(name)
                filled = self._prepare(template, pod, volumes)
                self._ensure_claims(template)
                pause: str | None = None
                if with_pause:
                    pause = self._create_pause(template, pod)
                    created.append(pause)
                    self.api.start(pause)
                first = len(created)  # the pod's own containers start here
                n_init = len(template.init_containers)
                place = self._place(template, pod, pause)
                for index, spec in enumerate(template.all_containers()):
                    created.append(
                        self._create_container(template, pod, spec, index, pause, filled, place)
                    )
                    self._instances.created(created[-1])
                if n_init:
                    # The first init container only: the reconciler starts each next one once
                    # the one before it completed, then the app containers, as the kubelet
                    # does (``decide.actions.RestartPolicy``); no pass waits for them.
                    self.api.start(created[first])
                else:
                    specs = template.all_containers()
                    for spec, cid in zip(specs, created[first:], strict=True):
                        self.api.start(cid)
                        if spec.post_start:  # the next container starts once it returned
                            hook = (spec.post_start, spec.post_start_in_pod, spec.name)
                            self._post_start(cid, pod, hook, template.grace_seconds, pause)
        except BaseException:
            self._cleanup(created, volumes)
            raise

    def _cleanup(self, containers: list[str], volumes: list[str]) -> None:
        for cid in containers:
            with contextlib.suppress(Exception):
                self.api.remove_container(cid, force=True, v=True)
        for vol in volumes:
            with contextlib.suppress(Exception):
                self.api.remove_volume(vol, force=True)

    def start_container(self, container_id: str) -> None:
        with _translated(self._name, f"start {container_id[:12]}"), _sandbox(self._name):
            self._start_stopped(container_id)

    def restart_container(self, container_id: str, grace: int) -> None:
        # Stop, then start (what the engine's restart does), so that where the stopped
        # instance ended is read in between: a quick process may have ended its next
        # instance too by the time a look after the start is taken.
        with _translated(self._name, f"restart {container_id[:12]}"), _sandbox(self._name):
            self.api.stop(container_id, timeout=min(grace, MAX_WAIT_SECONDS))
            self._start_stopped(container_id)

    def _start_stopped(self, container_id: str) -> None:
        """Starts a stopped container: where its last instance ended is written down first
        (its next one begins there in its log); then its postStart hook runs."""
        self._instances.stopped(self.api.inspect_container(container_id)["State"], container_id)
        self.api.start(container_id)
        self._started(container_id)

    def _started(self, container_id: str) -> None:
        """A container (re)started: its postStart hook, which its labels carry, runs now."""
        info = self.api.inspect_container(container_id)
        meta = decode_labels(info["Config"].get("Labels") or {})
        if not meta.post_start:
            return
        mode = str(info["HostConfig"].get("NetworkMode") or "")
        pause = mode.removeprefix("container:") if mode.startswith("container:") else None
        hook = (meta.post_start, meta.post_start_in_pod, meta.container)
        self._post_start(container_id, meta.pod, hook, meta.grace, pause)

    def _post_start(
        self,
        container_id: str,
        pod: str,
        hook: tuple[tuple[str, ...], bool, str],
        grace: int,
        pause: str | None,
    ) -> None:
        """Run a postStart hook (an exec in the container; an httpGet or sleep in the pod's
        pause container). One that fails kills the container, as the kubelet kills it
        (``FailedPostStartHook``); it is then restarted with the crash back-off."""
        command, in_pod, name = hook
        target = pause if in_pod and pause else container_id
        try:
            code, output = self.exec(target, list(command), float(min(max(grace, 1), MAX_HOOK)))
        except GitopsError as exc:  # the container exited already, or the engine went away
            code, output = -1, str(exc)
        if code == 0:
            return
        log.warning(
            "FailedPostStartHook: container %s of pod %s on %s: %s exited %d: %s; killed",
            name, pod, self._name, " ".join(command)[:200], code, output[:200],
        )  # fmt: skip
        with contextlib.suppress(docker.errors.APIError):
            self.api.kill(container_id)

    def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        """Run a command in a container; the engine has no exec timeout, so bound the wait."""
        with _translated(self._name, f"exec in {container_id[:12]}"):
            exec_id = self.api.exec_create(container_id, command, stdin=False)["Id"]
            future = self._exec_pool.submit(self.api.exec_start, exec_id)
            try:
                output = future.result(timeout=timeout + 1.0)
            except FutureTimeout:
                return 124, f"probe timed out after {timeout:g}s"
            code = self.api.exec_inspect(exec_id).get("ExitCode")
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        return (int(code) if code is not None else 124), text.strip()

    def exec_stream(self, container_id: str, command: list[str], tty: bool) -> ExecSession:
        with _translated(self._name, f"exec in {container_id[:12]}"):
            exec_id = self.api.exec_create(container_id, command, stdin=True, tty=tty)["Id"]
            sock = self.api.exec_start(exec_id, socket=True, tty=tty)
        return _DockerSession(self, exec_id, sock, tty)

    def usage(self, container_ids: list[str]) -> dict[str, tuple[int, int]]:
        """The engine's own stats, each over its one-second sample, all at once."""
        if not container_ids:
            return {}

        def one(cid: str) -> tuple[str, tuple[int, int] | None]:
            try:
                with _translated(self._name, f"stats of {cid[:12]}"):
                    return cid, _usage(self.api.stats(cid, stream=False))
            except GitopsError:
                return cid, None  # it stopped meanwhile

        with ThreadPoolExecutor(max_workers=min(16, len(container_ids))) as pool:
            found = dict(pool.map(one, container_ids))
        return {cid: u for cid, u in found.items() if u is not None}

    def read_logs(self, container_id: str, query: LogQuery) -> LogStream:
        what = f"logs of {container_id[:12]}"
        with _translated(self._name, what):
            # Restarted in place, a container's log holds every instance: which span is the
            # current one's, or the previous one's, ``gitops.nodes.instances`` says.
            state = self.api.inspect_container(container_id)["State"]
            span = self._instances.span(container_id, state, query.previous)
            if span == NOTHING:
                return LogStream(iter(()))
            begin, until = span
            since = max(query.since or 0.0, begin or 0.0) or None
            # The engine applies a tail before ``until``: that tail is kept here instead.
            tail: int | Literal["all"] = (
                "all" if query.tail is None or until is not None else max(0, query.tail)
            )
            held = [self._log_stream(container_id, tail, since, query.follow, until)]
        closed = threading.Event()
        lines = self._log_lines(container_id, held, query, until, closed)
        if until is not None and query.tail is not None:
            return LogStream(iter(deque(lines, maxlen=max(0, query.tail))))
        return LogStream(lines, closed, lambda: held[0].close())  # noqa: PLW0108 - held[0] is replaced on a reopen

    def _log_stream(
        self, container_id: str, tail: int | Literal["all"], since: float | None, follow: bool,
        until: float | None,
    ) -> Any:  # fmt: skip
        return self.api.logs(
            container_id, stdout=True, stderr=True, stream=True, timestamps=True, tail=tail,
            since=since if since and since > 0 else None, follow=follow and until is None,
            until=until,
        )  # fmt: skip

    def _log_lines(
        self,
        container_id: str,
        held: list[Any],
        query: LogQuery,
        until: float | None,
        closed: threading.Event,
    ) -> Iterator[LogLine]:
        """Lines from the engine's stream (``held[0]``, which ``LogStream.close`` closes). A
        followed stream the client's read timeout cut (a quiet container) is opened again from
        the last line's time, skipping what was sent (``SentLines``)."""
        sent = SentLines()
        try:
            while not closed.is_set():
                buf = b""
                try:
                    for chunk in held[0]:
                        buf += chunk
                        while b"\n" in buf:
                            raw, buf = buf.split(b"\n", 1)
                            line = _log_line(raw)
                            if sent.new(line):
                                yield line
                    if buf:
                        yield _log_line(buf)
                    return
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                    held[0].close()
                    if closed.is_set():
                        return
                    if not query.follow or until is not None:
                        raise NodeUnavailable(f"node {self._name}: logs: {exc}") from exc
                sent.reopened()
                with _translated(self._name, f"logs of {container_id[:12]}"):
                    since = sent.last or query.since
                    held[0] = self._log_stream(container_id, "all", since, True, None)
        except (AttributeError, ValueError, OSError):  # the stream was closed under it
            if not closed.is_set():
                raise
        finally:
            held[0].close()

    def remove_pod(self, pod: PodInfo) -> None:
        with _translated(self._name, f"remove pod {pod.namespace}/{pod.name}"):
            apps = [c for c in pod.app_containers() if c.state == "running"]
            # SIGTERM every app container of the pod at once, as a kubelet does; the pause
            # container goes last, so the pod keeps its network until its apps have stopped.
            if apps:
                infra = pod.infra.id if pod.infra is not None else None
                with ThreadPoolExecutor(max_workers=len(apps)) as pool:
                    list(pool.map(lambda c: self._stop(c, infra), apps))
            for c in pod.containers:
                with contextlib.suppress(docker.errors.NotFound):
                    self.api.remove_container(c.id, force=True, v=True)
            for vol in (
                self.api.volumes(
                    filters={"label": [f"{L_POD}={pod.name}", f"{L_INSTANCE}={self._instance}"]}
                ).get("Volumes")
                or []
            ):
                with contextlib.suppress(docker.errors.NotFound):
                    self.api.remove_volume(vol["Name"], force=True)

    def ensure_service(self, namespace: str, name: str, ports: list[int]) -> None:
        self.ensure_pause_image()
        cname = service_container_name(namespace, name, self._instance)
        network = network_name(namespace, self._instance)
        with _translated(self._name, f"create service proxy {namespace}/{name}"):
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_container(cname, force=True)
            endpoint = self.api.create_endpoint_config(aliases=service_aliases(namespace, name))
            networking = self.api.create_networking_config({network: endpoint})  # type: ignore[arg-type]
            labels = service_labels(namespace, name, ports, self._instance)
            created = self.api.create_container(
                image=self.pause_image,
                name=cname,
                entrypoint=service_command(ports),
                labels=labels,
                host_config=self.api.create_host_config(
                    network_mode=network, restart_policy={"Name": "no"}
                ),
                networking_config=networking,
                stop_timeout=2,
            )
            cid = str(created["Id"])
            self.api.put_archive(
                cid, "/", _tar([("svc-route", SERVICE_ROUTE, 0o755), ("svc/.keep", b"", 0o644)])
            )
            self.api.start(cid)

    def set_service_endpoints(self, namespace: str, name: str, files: dict[str, bytes]) -> None:
        cname = service_container_name(namespace, name, self._instance)
        with _translated(self._name, f"update service proxy {namespace}/{name}"):
            self.api.put_archive(
                cname, "/", _tar([(f"svc/{f}", data, 0o644) for f, data in files.items()])
            )

    def ensure_proxy(self, config: bytes, files: Mapping[str, bytes] | None = None) -> None:
        """This node's own Service proxy: HAProxy in a host-network container, given
        ``config`` and its certificates (``files``), both owner-only (0600); reloaded in
        place (SIGUSR2, seamless) when it runs, else (re)created."""
        content = [(CONFIG, config, 0o600)]
        content += [(f"{CERTS}/{n}", data, 0o600) for n, data in sorted((files or {}).items())]
        name = f"gitops-proxy-{self._instance}"
        with _translated(self._name, "node proxy"):
            tag = self._proxy_image()
            try:
                info = self.api.inspect_container(name)
            except docker.errors.NotFound:
                info = None
            if info and (not info["State"]["Running"] or info["Config"]["Image"] != tag):
                self.api.remove_container(name, force=True)
                info = None
            if info is None:
                created = self.api.create_container(
                    image=tag,
                    name=name,
                    labels={L_MANAGED: "true", L_INSTANCE: self._instance, L_PROXY: "true"},
                    host_config=self.api.create_host_config(
                        network_mode="host", restart_policy={"Name": "unless-stopped"}
                    ),
                )
                self.api.put_archive(created["Id"], "/", _tar(content))
                self.api.start(created["Id"])
                return
            self.api.put_archive(name, "/", _tar(content))
            since = int(time.time())
            self.api.kill(name, signal="SIGUSR2")
            # Back only once the new worker took over: a pod dropped from the configuration
            # must get no new connection once this returns.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                logs = self.api.logs(name, stdout=True, stderr=True, since=since)
                done = logs.decode(errors="replace").count("Loading success")
                if done or b"Loading failure" in logs:
                    return
                time.sleep(0.02)
            log.warning("node proxy on %s: reload not confirmed within 5s", self._name)

    def remove_proxy(self) -> None:
        with (
            _translated(self._name, "remove node proxy"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            self.api.remove_container(f"gitops-proxy-{self._instance}", force=True)

    def _proxy_image(self) -> str:
        with self._image_lock:
            if self._proxy_tag is None:
                files = haproxy_files()
                tag = image_tag(files)
                if not self.has_image(tag):
                    log.info("building %s on %s from this machine's haproxy", tag, self._name)
                    self._build([("Dockerfile", DOCKERFILE, 0o644), *files], tag, "node proxy")
                self._proxy_tag = tag
            return self._proxy_tag

    def remove_service(self, namespace: str, name: str) -> None:
        what = f"remove service proxy {namespace}/{name}"
        with _translated(self._name, what), contextlib.suppress(docker.errors.NotFound):
            self.api.remove_container(
                service_container_name(namespace, name, self._instance), force=True
            )

    def watch(self, notify: Callable[[str, str], None], stop: threading.Event) -> None:
        """Follow the engine's event stream for our containers; reconnect with back-off."""
        delay = 1.0
        since = int(time.time())  # resume from here after a reconnect: no event is lost
        while not stop.is_set():
            try:
                stream = self.api.events(
                    since=since,
                    filters={
                        "type": "container",
                        "event": [*STOPPED, *CHANGED],
                        "label": managed_filter(self._instance),
                    },
                    decode=True,
                )
                delay = 1.0
                notify(CONNECTED, "")
                for event in stream:
                    since = int(event.get("time", since))
                    action = str(event.get("Action") or event.get("status") or "event")
                    cid = str(event.get("id") or "")
                    if action in EXITS and cid:
                        self._settle_pool.submit(self._when_listed_stopped, cid, notify, action)
                    else:
                        notify(action, cid)
                    if stop.is_set():
                        break
            except Exception as exc:  # the stream ends when the engine goes away
                if stop.is_set():
                    return
                log.debug("event stream of %s ended: %s; retrying in %.0fs", self._name, exc, delay)
            if not stop.is_set():
                # An engine that is shutting down closes the stream: no more work for it.
                notify(DISCONNECTED, "")
            stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def _when_listed_stopped(
        self, container_id: str, notify: Callable[[str, str], None], action: str
    ) -> None:
        """Notify once the container list no longer shows the container running. The engine
        sends "die" before its list says so (about 0.1 s later on 20.10): a pass woken at once
        would see it running, find nothing to do, and leave the exit unrepaired until some
        other wake-up. Off the event thread, so a burst of exits is not handled in a queue."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        try:
            while time.monotonic() < deadline:
                rows = self.api.containers(all=True, filters={"id": container_id})
                if not rows or rows[0].get("State") != "running":
                    break
                time.sleep(0.02)
        except Exception as exc:  # the engine went away: the pass will find out
            log.debug("settling %s on %s: %s", container_id[:12], self._name, exc)
        notify(action, container_id)

    def _stop(self, container: ContainerInfo, infra: str | None = None) -> None:
        """preStop hook, then SIGTERM, then SIGKILL when the grace period (for both) is over.
        An httpGet or sleep hook runs in the pod's pause container (``infra``)."""
        # Kubernetes allows any int64; no engine call may wait longer than a day.
        grace = float(min(container.meta.grace, MAX_WAIT_SECONDS))
        started = time.monotonic()
        hook = list(container.meta.pre_stop)
        if hook:
            target = infra if container.meta.pre_stop_in_pod and infra else container.id
            code, output = self.exec(target, hook, grace)
            if code != 0:
                log.warning("preStop of %s exited %d: %s", container.name, code, output[:200])
        # The grace period covers hook and SIGTERM together, rounded up (not cut short); a hook
        # that used it all still leaves the process 2 s after SIGTERM, as the kubelet does.
        left = max(2 if hook else 0, math.ceil(grace - (time.monotonic() - started)))
        with contextlib.suppress(docker.errors.NotFound):
            self.api.stop(container.id, timeout=left)
