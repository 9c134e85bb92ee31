"""The Node interface every engine adapter implements, and names derived from pods."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Protocol

from gitops.manifests.quantity import parse_quantity
from gitops.manifests.volumes import EXPR_VAR
from gitops.model.labels import (
    DEFAULT_INSTANCE,
    L_INSTANCE,
    L_MANAGED,
    JobRecord,
)
from gitops.model.live import ContainerInfo, NodeCapacity, PodInfo, VolumeInfo
from gitops.model.logs import LogQuery, LogStream
from gitops.model.sessions import ExecSession
from gitops.model.templates import (
    FIELD_HOST_IP,
    FIELD_NODE_NAME,
    FIELD_POD_IP,
    FIELD_POD_NAME,
    PROBES_AUTO,
    PROBES_HERE,
    PROBES_IN_NODE,
    EnvVar,
    Mount,
    PodTemplate,
    RegistryAuth,
)
from gitops.nodes.routes import routed

NETWORK_PREFIX = "gitops-"


def network_name(namespace: str, instance: str = DEFAULT_INSTANCE) -> str:
    """Each namespace gets one bridge network per node; pods of a namespace share it."""
    if instance == DEFAULT_INSTANCE:
        return NETWORK_PREFIX + namespace
    return f"{NETWORK_PREFIX}{instance}-{namespace}"


def namespace_of_network(network: str, instance: str = DEFAULT_INSTANCE) -> str:
    prefix = NETWORK_PREFIX if instance == DEFAULT_INSTANCE else f"{NETWORK_PREFIX}{instance}-"
    return network.removeprefix(prefix)


def managed_filter(instance: str) -> list[str]:
    """Engine label filter selecting what one reconciler instance owns, and nothing else."""
    return [f"{L_MANAGED}=true", f"{L_INSTANCE}={instance}"]


def engine_name(instance: str, *parts: str) -> str:
    """A name global to an engine (a container, a volume): it carries the instance, so two
    reconcilers sharing an engine never reach for the same name. The default instance keeps
    the names it always had (instance names are DNS labels: never mistaken for a part)."""
    joined = "_".join(parts)
    return joined if instance == DEFAULT_INSTANCE else f"{instance}_{joined}"


def container_name(
    namespace: str, pod: str, container: str, instance: str = DEFAULT_INSTANCE
) -> str:
    return engine_name(instance, namespace, pod, container)


def volume_name(namespace: str, pod: str, volume: str, instance: str = DEFAULT_INSTANCE) -> str:
    return engine_name(instance, namespace, pod, volume)


def claim_volume_name(namespace: str, claim: str, instance: str = DEFAULT_INSTANCE) -> str:
    """A PersistentVolumeClaim's Docker volume: named by namespace and claim, never by pod."""
    return engine_name(instance, namespace, claim, "PVC")


def record_volume_name(record: JobRecord, instance: str = DEFAULT_INSTANCE) -> str:
    """A finished Job's record: one per Job and template on each node."""
    return engine_name(instance, record.namespace, record.job, record.template_hash, "JOB")


def sub_path(mount: Mount, env: list[str]) -> str:
    """The mount's ``subPath``, or its ``subPathExpr`` with ``$(VAR)`` from the container's
    environment (``NAME=value`` as the engine gets it); "" for the whole volume."""
    if not mount.sub_path_expr:
        return mount.sub_path.strip("/")
    values = dict(e.split("=", 1) for e in env)
    return EXPR_VAR.sub(lambda m: values.get(m.group(1), ""), mount.sub_path_expr).strip("/")


def service_container_name(namespace: str, service: str, instance: str = DEFAULT_INSTANCE) -> str:
    return engine_name(instance, namespace, service, "SVC")


def service_aliases(namespace: str, service: str) -> list[str]:
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


# Runs in a Service's proxy container: one persistent busybox listener a port; every connection
# forks the route script, which picks a ready endpoint at random and splices the connection to it.
SERVICE_ROUTE = b"""#!/bin/sh
f=/svc/endpoints-$1
[ -s "$f" ] || exit 1
n=$(wc -l < "$f")
ep=$(sed -n "$((RANDOM % n + 1))p" "$f")
exec nc "${ep%:*}" "${ep#*:}"
"""


def service_command(ports: list[int]) -> list[str]:
    listeners = " ".join(f"nc -ll -p {p} -e /bin/sh /svc-route {p} &" for p in ports)
    return [
        "/bin/sh",
        "-c",
        f"trap 'exit 0' TERM INT; {listeners} while :; do sleep 3600 & wait $!; done",
    ]


DISCONNECTED = "disconnected"  # what ``watch`` reports when the engine's event stream ends
CONNECTED = "connected"  # and when it is open: from then on every change below is told
STOPPED = ("die", "oom", "stop", "destroy")  # a managed container no longer runs: repair it
# A managed container changed in what a look at the node shows, and needs no repair for it.
# Not an exec (a probe's, every few seconds) nor a copy into it: they change nothing listed.
CHANGED = ("create", "start", "restart", "pause", "unpause", "rename", "update", "health_status")


class Node(Protocol):
    """One container engine. Methods raise ``NodeUnavailable`` when the engine does not answer,
    ``ImagePullError`` when an image cannot be had, ``ContainerCreateError`` when the engine
    refuses a container."""

    @property
    def name(self) -> str: ...

    @property
    def instance(self) -> str:
        """The reconciler instance whose containers this adapter sees and manages."""
        ...

    @property
    def probes(self) -> str:
        """Where its pods' HTTP and TCP probes run: ``PROBES_HERE`` (from the reconciler to the
        pod's address), ``PROBES_IN_NODE`` (an exec in the pod) or ``PROBES_AUTO`` (here when
        the address is routed from this machine)."""
        ...

    def ping(self) -> None:
        """Quick (a few seconds at most): the health check asks this every couple of seconds."""
        ...

    def capacity(self) -> NodeCapacity: ...

    def list_containers(self) -> list[ContainerInfo]:
        """Every container labelled as managed by gitops, in any state, in one engine call."""
        ...

    def list_networks(self) -> list[str]:
        """Namespaces that have a managed network on this node."""
        ...

    def ensure_network(self, namespace: str) -> None: ...

    def remove_network(self, namespace: str) -> None: ...

    def dns_address(self, namespace: str) -> str | None:
        """The address on this machine where this node's pods in ``namespace`` ask gitops'
        cluster DNS (``traffic.clusterdns``), or None: the node's pods do not ask it (it is
        off, the engine is on another machine, or the namespace has no network yet)."""
        ...

    def list_volumes(self) -> list[VolumeInfo]:
        """The PersistentVolumeClaims' volumes gitops made on this node, in one engine call."""
        ...

    def remove_volume(self, name: str) -> None:
        """Delete a claim's volume and its data: only ``gitops delete pvc`` asks for this."""
        ...

    def list_records(self) -> list[JobRecord]:
        """The finished Jobs this node remembers, in one engine call."""
        ...

    def write_record(self, record: JobRecord) -> None:
        """Remember a finished Job (idempotent): a labelled empty volume on the engine."""
        ...

    def remove_record(self, record: JobRecord) -> None:
        """Forget one: its Job left git, or its template changed (so it runs again)."""
        ...

    def has_image(self, image: str) -> bool: ...

    def pull(self, image: str, auth: RegistryAuth | None = None) -> None:
        """Pull ``image``, with the credentials of its registry when the pod has them."""
        ...

    def create_pod(self, template: PodTemplate, pod: str) -> None:
        """Create and start every container of one replica, init containers first.

        All or nothing: on failure whatever was created for the pod is removed again."""
        ...

    def start_container(self, container_id: str) -> None: ...

    def restart_container(self, container_id: str, grace: int) -> None:
        """SIGTERM, SIGKILL after ``grace`` seconds, and start again (liveness failure)."""
        ...

    def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        """Run ``command`` in a running container: (exit code, output). Code 124 on timeout."""
        ...

    def read_logs(self, container_id: str, query: LogQuery) -> LogStream:
        """What a container wrote (stdout and stderr), running or not, as ``query`` selects.
        The engine is asked at once (an error is raised here, before the first line); with
        ``follow`` the stream then blocks for new lines until the container stops, and
        closing it (from any thread) ends the read."""
        ...

    def exec_stream(self, container_id: str, command: list[str], tty: bool) -> ExecSession:
        """Start ``command`` in a running container with its stdin open (and a terminal with
        ``tty``): the session, to write to, read from and wait on."""
        ...

    def usage(self, container_ids: list[str]) -> dict[str, tuple[int, int]]:
        """What running containers use now: (CPU millicores over about a second, working-set
        memory in bytes) by id; one that has stopped is left out."""
        ...

    def remove_pod(self, pod: PodInfo) -> None:
        """Stop (SIGTERM, then SIGKILL after the pod's grace period) and remove a replica."""
        ...

    def ensure_service(self, namespace: str, name: str, ports: list[int]) -> None:
        """(Re)create the Service's proxy container on the namespace network, reachable from
        the namespace's pods as NAME, NAME.NAMESPACE and NAME.NAMESPACE.svc."""
        ...

    def set_service_endpoints(self, namespace: str, name: str, files: dict[str, bytes]) -> None:
        """Write the endpoint files (``endpoints-PORT``: one ``ip:port`` a line) it picks from."""
        ...

    def remove_service(self, namespace: str, name: str) -> None: ...

    def ensure_proxy(self, config: bytes, files: Mapping[str, bytes] | None = None) -> None:
        """Run this node's own Service proxy with ``config`` (HAProxy's), reloading it;
        ``files`` (the Ingress certificates, by name) are its certificate directory's whole
        content, owner-only."""
        ...

    def remove_proxy(self) -> None: ...

    def watch(self, notify: Callable[[str, str], None], stop: threading.Event) -> None:
        """Call ``notify(action, container_id)`` whenever a managed container dies or
        disappears (``STOPPED``), once the container list agrees it no longer runs, and when
        it changes otherwise (``CHANGED``; a health status as ``health_status: healthy``),
        until ``stop``; ``notify(CONNECTED, "")`` once the engine's event stream is open, and
        ``notify(DISCONNECTED, "")`` when it ends: a reader may trust a look at the node until
        the next notification only while the stream is open.

        Blocks; runs in its own thread. Reconnects after the engine goes away."""
        ...


def last_lines(node: Node, container_id: str, count: int) -> list[str]:
    """A container's last ``count`` lines, running or not."""
    return [line.text for line in node.read_logs(container_id, LogQuery(tail=count))]


def probe_place(endpoint: str | None, setting: str) -> str:
    """Where a node's HTTP and TCP probes run (``PROBES_*``). ``auto`` may probe from here only
    for an engine on this machine: a pod's address elsewhere may equal a local bridge's."""
    if setting != PROBES_AUTO:
        return setting
    return PROBES_AUTO if engine_here(endpoint) else PROBES_IN_NODE


def engine_here(endpoint: str | None) -> bool:
    """Whether an engine runs on this machine (its socket is), so its bridges' addresses are
    this machine's."""
    return (endpoint or os.environ.get("DOCKER_HOST") or "unix://").startswith("unix://")


def sized_options(driver: str, options: dict[str, str], size: str) -> dict[str, str]:
    """A claim volume's driver options with ``requests.storage`` enforced where the driver
    can: Docker's local driver mounting a tmpfs takes ``size=`` (a class's own size wins).
    The local driver on disk has no size limit (validation warns), nor does a bind."""
    if driver != "local" or options.get("type") != "tmpfs" or not size:
        return options
    mount = [o for o in options.get("o", "").split(",") if o]
    if any(o.startswith("size=") for o in mount):
        return options
    return options | {"o": ",".join([*mount, f"size={int(parse_quantity(size))}"])}


RESOLV_CONF = ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf")


def nameservers(text: str) -> list[str]:
    """The IPv4 nameservers a resolv.conf lists that a container can reach: not loopback ones
    (the container's loopback is its own), as the engine filters them."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                ip = IPv4Address(words[1])
            except ValueError:  # IPv6, or not an address
                continue
            if not ip.is_loopback:
                out.append(str(ip))
    return out


def upstream_nameservers() -> list[str]:
    """This machine's nameservers, as an engine here gives its containers when told none
    (systemd-resolved's own list when resolv.conf names only its loopback stub)."""
    for path in RESOLV_CONF:
        try:
            found = nameservers(Path(path).read_text())
        except OSError:
            continue
        if found:
            return found
    return []


def probed_from_here(place: str, address: str) -> bool:
    """Whether probes of a pod at ``address`` (or on a network there) run from this machine,
    given its node's resolved ``probe_place``."""
    return place == PROBES_HERE or (place == PROBES_AUTO and routed(address))


def needs_pause(template: PodTemplate, probes_from_here: bool) -> bool:
    """Whether a pod runs an infrastructure (pause) container: when its containers share
    namespaces (more than one, or init containers that must see the same network), or when its
    HTTP/TCP probes must run inside the pod with the pause container's busybox because they
    cannot run from the reconciler. A lone container otherwise holds its own network: one
    container a replica, half the engine's work (its address may change when it restarts, and
    the Services follow it)."""
    if len(template.all_containers()) > 1 or template.needs_pod_ip:
        return True
    if any(c.pre_stop_in_pod or c.post_start_in_pod for c in template.containers):
        return True  # an httpGet or sleep hook runs with the pause container's busybox
    in_pod = [
        p
        for c in template.containers
        for p in (c.readiness, c.liveness, c.startup)
        if p is not None and p.handler in ("http", "tcp")
    ]
    return bool(in_pod) and not probes_from_here


@dataclass(frozen=True)
class PodPlace:
    """What only the node knows of a pod it creates: the downward API's runtime fields."""

    pod: str
    node: str
    host_ip: str = ""
    pod_ip: str = ""
    capacity: NodeCapacity | None = None


def resolve_env(env: tuple[EnvVar, ...], place: PodPlace) -> list[str]:
    """``NAME=value`` for the engine, the fields only the node knows filled in (``fieldRef``,
    and ``resourceFieldRef`` of a resource without a limit: the node's capacity)."""
    out = []
    for e in env:
        value = e.value
        if e.field == FIELD_POD_NAME:
            value = place.pod
        elif e.field == FIELD_NODE_NAME:
            value = place.node
        elif e.field == FIELD_HOST_IP:
            value = place.host_ip
        elif e.field == FIELD_POD_IP:
            value = place.pod_ip
        elif e.field.startswith(("limits.", "requests.")) and place.capacity is not None:
            resource, _, divisor = e.field.partition(":")
            total = place.capacity.cpu_millis if resource.endswith("cpu") else place.capacity.memory
            unit = parse_quantity(divisor or "1") * (1000 if resource.endswith("cpu") else 1)
            value = str(max(1, math.ceil(total / unit)))
        out.append(f"{e.name}={value}")
    return out
