"""An in-memory node: the same contract as the Docker adapter, for tests of pure logic.

It knows a set of pullable images (its "registry"), keeps containers in a dict, and lets a
test crash or delete containers and take the node down, as the real engine would behave. It has
no pod network to probe from the reconciler: its probes run in the pod (``PROBES_IN_NODE``).
"""

from __future__ import annotations

import itertools
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace

from gitops.errors import ContainerCreateError, ImagePullError, NodeUnavailable
from gitops.model.labels import (
    DEFAULT_INSTANCE,
    INFRA_NAME,
    L_INSTANCE,
    L_MANAGED,
    L_POD,
    L_PROXY,
    JobRecord,
    claim_labels,
    decode_volume,
    service_labels,
)
from gitops.model.labels import encode as encode_labels
from gitops.model.live import ContainerInfo, NodeCapacity, PodInfo, VolumeInfo
from gitops.model.logs import LogLine, LogQuery, LogStream
from gitops.model.sessions import STDOUT, ExecSession
from gitops.model.templates import PROBES_IN_NODE, PodTemplate, RegistryAuth
from gitops.nodes.base import (
    CONNECTED,
    claim_volume_name,
    container_name,
    needs_pause,
    network_name,
    record_volume_name,
    service_container_name,
)


class MemoryNode:
    def __init__(
        self,
        name: str = "memory",
        registry: set[str] | None = None,
        instance: str = DEFAULT_INSTANCE,
    ) -> None:
        self._name = name
        self._instance = instance
        self.proxy_config: bytes | None = None
        self.proxy_files: dict[str, bytes] = {}
        self.machine = NodeCapacity(cpu_millis=4000, memory=8 * 1024**3, version="memory")
        self.registry = set(registry or ())
        self.private: dict[str, tuple[str, str]] = {}  # image -> the (user, password) it needs
        self.refuse_starts = False  # a test makes the engine refuse container starts
        self.start_attempts = 0
        self.images: set[str] = set()
        self.containers: dict[str, ContainerInfo] = {}
        self.networks: set[str] = set()
        self.volumes: dict[str, VolumeInfo] = {}  # claims' volumes, by the engine's name
        self.records: dict[str, JobRecord] = {}  # finished Jobs, by the engine's name
        self.output: dict[str, str] = {}  # what a container wrote (a test says), by id
        self.previous_output: dict[str, str] = {}  # what it wrote before its last restart
        self.started: dict[str, float] = {}  # when it last started, the time of its lines
        self.used: dict[str, tuple[int, int]] = {}  # what a test says a container uses
        self.down = False
        self.calls = 0  # engine calls, for the cost assertions in tests
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._notify: Callable[[str, str], None] = lambda action, container_id: None
        self.restarts: dict[str, int] = {}
        self.service_files: dict[tuple[str, str], dict[str, bytes]] = {}
        # What an exec (a probe) returns; a test replaces it to make probes fail.
        self.exec_handler: Callable[[ContainerInfo, list[str]], tuple[int, str]] = lambda c, cmd: (
            0,
            "",
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def instance(self) -> str:
        return self._instance

    @property
    def probes(self) -> str:
        return PROBES_IN_NODE

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise NodeUnavailable(f"node {self._name} does not answer")

    def ping(self) -> None:
        self._call()

    def ensure_proxy(self, config: bytes, files: Mapping[str, bytes] | None = None) -> None:
        """As the Docker node: one managed container labelled as the node's proxy."""
        self._call()
        self.proxy_config = config
        self.proxy_files = dict(files or {})
        cid = f"{self._name}-proxy"
        labels = {L_MANAGED: "true", L_INSTANCE: self._instance, L_PROXY: "true"}
        with self._lock:
            self.containers[cid] = ContainerInfo(
                self._name, cid, f"gitops-proxy-{self._instance}", labels, "running", "Up"
            )

    def remove_proxy(self) -> None:
        self._call()
        self.proxy_config = None
        with self._lock:
            self.containers.pop(f"{self._name}-proxy", None)

    def capacity(self) -> NodeCapacity:
        self._call()
        return self.machine

    def list_containers(self) -> list[ContainerInfo]:
        self._call()
        with self._lock:
            return [
                c
                for c in self.containers.values()
                if c.labels.get(L_MANAGED) == "true" and c.labels.get(L_INSTANCE) == self._instance
            ]

    def list_networks(self) -> list[str]:
        self._call()
        return sorted(self.networks)

    def ensure_network(self, namespace: str) -> None:
        self._call()
        self.networks.add(namespace)

    def remove_network(self, namespace: str) -> None:
        self._call()
        self.networks.discard(namespace)

    def dns_address(self, namespace: str) -> str | None:
        return None  # no pod of this node asks anything: there is no network to ask from

    def has_image(self, image: str) -> bool:
        self._call()
        return image in self.images

    def pull(self, image: str, auth: RegistryAuth | None = None) -> None:
        self._call()
        if image not in self.registry:
            raise ImagePullError(f"pull {image}: manifest unknown")
        wanted = self.private.get(image)
        if wanted is not None and (auth is None or (auth.username, auth.password) != wanted):
            raise ImagePullError(f"pull {image}: unauthorized: authentication required")
        self.images.add(image)

    def create_pod(self, template: PodTemplate, pod: str) -> None:
        self._call()
        if template.namespace not in self.networks:
            raise ContainerCreateError(f"network {network_name(template.namespace)} not found")
        now = time.time()
        for claim in template.claims:  # a claim's volume is made where it is first used
            name = claim_volume_name(template.namespace, claim.name, self._instance)
            labels = claim_labels(template.namespace, claim, self._instance, now)
            with self._lock:
                self.volumes.setdefault(name, VolumeInfo(self._name, name, decode_volume(labels)))
        pause = needs_pause(template, probes_from_here=False)
        n = next(self._ids)  # the pod's address on this node's network (an engine gives one)
        ip = f"10.88.{n // 250 % 250}.{n % 250 + 2}"
        created: list[ContainerInfo] = []
        if pause:
            created.append(
                ContainerInfo(
                    node=self._name,
                    id=f"{self._name}-{next(self._ids):06d}",
                    name=container_name(template.namespace, pod, INFRA_NAME, self._instance),
                    labels=encode_labels(
                        template, pod, INFRA_NAME, -1, False, self._name, now, self._instance
                    ),
                    state="running",
                    status="Up",
                    image="gitops/pause:1",
                    created=now,
                    ip=ip,
                )
            )
        for index, spec in enumerate(template.all_containers()):
            if spec.image not in self.images:
                raise ContainerCreateError(f"no such image: {spec.image}")
            init = index < len(template.init_containers)
            labels = encode_labels(
                template,
                pod,
                spec.name,
                index,
                init,
                self._name,
                now,
                self._instance,
                spec,
                own_network=not pause,
            )
            created.append(
                ContainerInfo(
                    node=self._name,
                    id=f"{self._name}-{next(self._ids):06d}",
                    name=container_name(template.namespace, pod, spec.name, self._instance),
                    labels=labels,
                    state="exited" if init else "running",
                    status="Exited (0)" if init else "Up",
                    image=spec.image,
                    created=now,
                    ip="" if pause else ip,
                )
            )
        with self._lock:
            self.containers.update({c.id: c for c in created})
        for c in created:  # as an engine tells them, each once created, a running one started
            self._notify("create", c.id)
            if c.state == "running":
                self._notify("start", c.id)

    def start_container(self, container_id: str) -> None:
        self._call()
        self.start_attempts += 1
        if self.refuse_starts:  # as an engine shutting down answers a start
            raise ContainerCreateError(f"node {self._name}: start {container_id[:12]}: refused")
        with self._lock:
            c = self.containers[container_id]
            self.containers[container_id] = replace(c, state="running", status="Up")
            self.started[container_id] = time.time()
        self._notify("start", container_id)

    def restart_container(self, container_id: str, grace: int) -> None:
        self._call()
        with self._lock:
            c = self.containers[container_id]
            self.containers[container_id] = replace(c, state="running", status="Up")
            self.previous_output[container_id] = self.output.pop(container_id, "")
            self.started[container_id] = time.time()
        self.restarts[container_id] = self.restarts.get(container_id, 0) + 1
        self._notify("restart", container_id)

    def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        self._call()
        with self._lock:
            container = self.containers.get(container_id)
        if container is None:
            raise ContainerCreateError(f"node {self._name}: no container {container_id}")
        return self.exec_handler(container, command)

    def exec_stream(self, container_id: str, command: list[str], tty: bool) -> ExecSession:
        self._call()
        with self._lock:
            if container_id not in self.containers:
                raise ContainerCreateError(f"node {self._name}: no container {container_id}")
        return _EchoSession(command, tty)

    def usage(self, container_ids: list[str]) -> dict[str, tuple[int, int]]:
        self._call()
        with self._lock:
            running = {i for i in container_ids if getattr(self.containers.get(i), "state", "")
                       == "running"}  # fmt: skip
        return {i: self.used.get(i, (1, 1 << 20)) for i in running}

    def read_logs(self, container_id: str, query: LogQuery) -> LogStream:
        self._call()
        with self._lock:
            if container_id not in self.containers:
                raise ContainerCreateError(f"node {self._name}: no container {container_id}")
            when = self.started.get(container_id, self.containers[container_id].created)
            text = (self.previous_output if query.previous else self.output).get(container_id, "")
        lines = text.splitlines()
        if query.since is not None and when < query.since:
            lines = []
        if query.tail is not None:
            lines = lines[-query.tail :] if query.tail > 0 else []
        closed = threading.Event()
        follow = query.follow and not query.previous
        return LogStream(self._more_logs(container_id, when, lines, follow, closed), closed)

    def _more_logs(
        self,
        container_id: str,
        when: float,
        first: list[str],
        follow: bool,
        closed: threading.Event,
    ) -> Iterator[LogLine]:
        """The lines selected, then, following, what a test writes until the container stops."""
        yield from (LogLine(when, line) for line in first)
        with self._lock:
            sent = len(self.output.get(container_id, "").splitlines())
        while follow and not closed.is_set():
            with self._lock:
                c = self.containers.get(container_id)
                lines = self.output.get(container_id, "").splitlines()
            yield from (LogLine(time.time(), line) for line in lines[sent:])
            sent = len(lines)
            if c is None or c.state != "running":
                return
            closed.wait(0.02)

    def remove_pod(self, pod: PodInfo) -> None:
        self._call()
        with self._lock:
            gone = [cid for cid, c in self.containers.items() if c.labels.get(L_POD) == pod.name]
            for cid in gone:
                del self.containers[cid]
        for cid in gone:
            self._notify("destroy", cid)

    def list_volumes(self) -> list[VolumeInfo]:
        self._call()
        with self._lock:
            return list(self.volumes.values())

    def remove_volume(self, name: str) -> None:
        self._call()
        with self._lock:
            self.volumes.pop(name, None)

    def list_records(self) -> list[JobRecord]:
        self._call()
        with self._lock:
            return list(self.records.values())

    def write_record(self, record: JobRecord) -> None:
        self._call()
        with self._lock:
            name = record_volume_name(record, self._instance)
            self.records.setdefault(name, replace(record, node=self._name))

    def remove_record(self, record: JobRecord) -> None:
        self._call()
        with self._lock:
            self.records.pop(record_volume_name(record, self._instance), None)

    def watch(self, notify: Callable[[str, str], None], stop: threading.Event) -> None:
        self._notify = notify
        notify(CONNECTED, "")
        stop.wait()

    def ensure_service(self, namespace: str, name: str, ports: list[int]) -> None:
        self._call()
        now = time.time()
        labels = service_labels(namespace, name, ports, self._instance)
        cid = f"{self._name}-svc-{namespace}-{name}"
        with self._lock:
            self.containers[cid] = ContainerInfo(
                self._name,
                cid,
                service_container_name(namespace, name, self._instance),
                labels,
                "running",
                "Up",
                "gitops/pause:1",
                now,
            )
        self.service_files[(namespace, name)] = {}

    def set_service_endpoints(self, namespace: str, name: str, files: dict[str, bytes]) -> None:
        self._call()
        self.service_files.setdefault((namespace, name), {}).update(files)

    def remove_service(self, namespace: str, name: str) -> None:
        self._call()
        with self._lock:
            self.containers.pop(f"{self._name}-svc-{namespace}-{name}", None)
        self.service_files.pop((namespace, name), None)

    # Out-of-band events a test can cause.
    def crash(self, container_id: str, code: int = 1) -> None:
        with self._lock:
            c = self.containers[container_id]
            self.containers[container_id] = replace(
                c, state="exited", status=f"Exited ({code})", finished=time.time()
            )
        self._notify("die", container_id)

    def remove(self, container_id: str) -> None:
        """Removed out of band (``docker rm -f``)."""
        self.delete(container_id)

    def delete(self, container_id: str) -> None:
        with self._lock:
            del self.containers[container_id]
        self._notify("destroy", container_id)


class _EchoSession:
    """The in-memory engine's command: ``cat``. What is written comes back on stdout (with a
    terminal, as a terminal echoes it); a command ending ``exit N`` ends with N."""

    def __init__(self, command: list[str], tty: bool) -> None:
        found = re.search(r"exit (\d+)\s*$", " ".join(command))
        self._code = int(found[1]) if found else 0
        self._out: queue.Queue[bytes] = queue.Queue()
        self.size = (80, 24)

    def write(self, data: bytes) -> None:
        self._out.put(data)

    def close_stdin(self) -> None:
        self._out.put(b"")

    def read(self) -> tuple[int, bytes]:
        return STDOUT, self._out.get()

    def resize(self, columns: int, rows: int) -> None:
        self.size = (columns, rows)

    def exit_code(self) -> int:
        return self._code

    def close(self) -> None:
        self._out.put(b"")
