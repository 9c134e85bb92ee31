"""The container-label codec: the one place that writes and reads the ``io.gitops.`` labels.

Live state is rebuilt from these labels alone (a restarted reconciler, even with an empty state
directory, neither duplicates nor loses a container), so they are the contract between a
reconciler and the containers it made. ``encode`` writes a container's labels from its pod
template; ``decode`` reads them back into ``ContainerLabels``; both sides round-trip (a property
test says so). Probes, named ports and the preStop command travel as compact JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from gitops.model.templates import (
    Claim,
    ContainerSpec,
    HostPort,
    PodTemplate,
    ProbeSpec,
    shared_access,
)

DEFAULT_INSTANCE: Final = "default"  # an instance that keeps the names gitops always gave

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
# "cpu-millicores,memory-bytes[,gpus]" the pod reserves
L_REQUESTS: Final = PREFIX + "requests"
L_HOST_PORTS: Final = PREFIX + "host-ports"  # the pod's published ports: "TCP/127.0.0.1/8080,…"
L_GPU_IDS: Final = PREFIX + "gpu-ids"  # the node's GPUs a container was given: "0,1"
L_CLAIMS: Final = PREFIX + "claims"  # a pod's PersistentVolumeClaims: "data,logs"
# On a claim's Docker volume: which claim it holds, of what class, size and access modes.
L_CLAIM: Final = PREFIX + "claim"
L_CLAIM_CLASS: Final = PREFIX + "storage-class"
L_CLAIM_SIZE: Final = PREFIX + "storage"
L_CLAIM_MODES: Final = PREFIX + "access-modes"
L_CLAIM_OWNER: Final = PREFIX + "delete-with"  # the StatefulSet whose deletion deletes it
L_INFRA: Final = PREFIX + "infra"  # the pod's pause container: holds its namespaces, runs probes
L_PROBES: Final = PREFIX + "probes"  # JSON of the container's probes, named ports resolved
L_PORTS: Final = PREFIX + "ports"  # JSON {name: containerPort} of the container's named ports
# A hook's command as JSON: a list runs in the container (exec); {"pod": [...]} in the pod's
# pause container (an httpGet, a sleep).
L_PRESTOP: Final = PREFIX + "prestop"
L_POSTSTART: Final = PREFIX + "poststart"
L_SERVICE: Final = PREFIX + "service"  # a Service's in-namespace proxy container
L_SERVICE_PORTS: Final = PREFIX + "service-ports"  # its ports, comma-separated
L_PROXY: Final = PREFIX + "proxy"  # a node's own Service proxy (HAProxy, host network)
# A pod's lone container that holds the pod's network itself: no pause container. Only a
# single-container pod without init containers, whose HTTP/TCP probes need no busybox in the pod.
L_OWN_NETWORK: Final = PREFIX + "own-network"
# A Job's pod: its restart policy ("Never" or "OnFailure"); a finished one is not running.
L_RESTART_POLICY: Final = PREFIX + "restart-policy"
# A Job's completion, remembered on a labelled empty volume on every node (the ``JobRecord``):
# a finished Job is not run again by a restart, a re-clone or an empty state directory.
L_JOB: Final = PREFIX + "job"
L_JOB_RESULT: Final = PREFIX + "job-result"  # Complete | Failed
L_JOB_REASON: Final = PREFIX + "job-reason"
L_JOB_MESSAGE: Final = PREFIX + "job-message"  # at most MAX_MESSAGE characters
MAX_MESSAGE: Final = 512
L_JOB_COUNTS: Final = PREFIX + "job-counts"  # "succeeded,failed"
L_JOB_TIMES: Final = PREFIX + "job-times"  # "started,finished"
INFRA_NAME: Final = "POD"  # container label of the pause container (app names are lowercase)


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


def encode(
    template: PodTemplate,
    pod: str,
    container: str,
    index: int,
    init: bool,
    node: str,
    now: float,
    instance: str = DEFAULT_INSTANCE,
    spec: ContainerSpec | None = None,
    own_network: bool = False,
) -> dict[str, str]:
    """The labels that let a reconciler rebuild its live state from the engine alone.

    ``spec`` is None for the pod's infrastructure (pause) container; ``own_network`` marks a
    lone container that holds the pod's network itself."""
    labels = {
        L_MANAGED: "true",
        L_INSTANCE: instance,
        L_NAMESPACE: template.namespace,
        L_DEPLOYMENT: template.deployment,
        L_POD: pod,
        L_CONTAINER: container,
        L_INDEX: str(index),
        L_HASH: template.template_hash,
        L_COMMIT: template.commit,
        L_NODE: node,
        L_CREATED: f"{now:.3f}",
        L_GRACE: str(template.grace_seconds),
        L_REQUESTS: ",".join(
            map(str, template.requests + ((template.gpus,) if template.gpus else ()))
        ),
    }
    if init:
        labels[L_INIT] = "true"
    if spec is None:
        labels[L_INFRA] = "true"
    else:
        if own_network:
            labels[L_OWN_NETWORK] = "true"
        probes = encode_probes(spec)
        if probes != "{}":
            labels[L_PROBES] = probes
        named = {p.name: p.container_port for p in spec.ports if p.name}
        if named:
            labels[L_PORTS] = json.dumps(named, separators=(",", ":"), sort_keys=True)
        if spec.pre_stop:
            labels[L_PRESTOP] = _encode_hook(spec.pre_stop, spec.pre_stop_in_pod)
        if spec.post_start:
            labels[L_POSTSTART] = _encode_hook(spec.post_start, spec.post_start_in_pod)
    if template.host_ports:  # pod-wide, as its requests: the scheduler reads them back
        labels[L_HOST_PORTS] = ",".join(f"{p}/{ip}/{n}" for p, ip, n in template.host_ports)
    if not template.prune:
        labels[L_PRUNE] = "disabled"
    if template.restart_policy:
        labels[L_RESTART_POLICY] = template.restart_policy
    if template.claims:
        labels[L_CLAIMS] = ",".join(c.name for c in template.claims)
    labels.update({L_POD_LABEL + k: v for k, v in template.labels})
    return labels


def _encode_hook(command: tuple[str, ...], in_pod: bool) -> str:
    return json.dumps({"pod": list(command)} if in_pod else list(command))


def _decode_hook(text: str | None) -> tuple[tuple[str, ...], bool]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return (), False
    if isinstance(value, dict) and isinstance(value.get("pod"), list):
        return tuple(str(x) for x in value["pod"]), True
    return (tuple(str(x) for x in value), False) if isinstance(value, list) else ((), False)


def claim_labels(namespace: str, claim: Claim, instance: str, now: float) -> dict[str, str]:
    return {
        L_MANAGED: "true",
        L_INSTANCE: instance,
        L_NAMESPACE: namespace,
        L_CLAIM: claim.name,
        L_CLAIM_CLASS: claim.storage_class,
        L_CLAIM_SIZE: claim.size,
        L_CLAIM_MODES: ",".join(claim.access_modes),
        L_CREATED: f"{now:.3f}",
    } | ({L_CLAIM_OWNER: claim.owner} if claim.owner else {})


@dataclass(frozen=True)
class VolumeLabels:
    """A claim volume's labels, read back (``decode_volume``)."""

    namespace: str = ""
    claim: str = ""
    storage_class: str = "local"
    size: str = ""
    access_modes: tuple[str, ...] = ()
    created: float = 0.0
    owner: str = ""  # deleted with this StatefulSet

    @property
    def shared(self) -> bool:
        return shared_access(self.access_modes)


def decode_volume(labels: Mapping[str, str]) -> VolumeLabels:
    get = labels.get
    try:
        created = float(get(L_CREATED, "0") or 0)
    except ValueError:
        created = 0.0
    return VolumeLabels(
        namespace=get(L_NAMESPACE, ""),
        claim=get(L_CLAIM, ""),
        storage_class=get(L_CLAIM_CLASS, "local"),
        size=get(L_CLAIM_SIZE, ""),
        access_modes=tuple(m for m in get(L_CLAIM_MODES, "").split(",") if m),
        created=created,
        owner=get(L_CLAIM_OWNER, ""),
    )


@dataclass(frozen=True)
class JobRecord:
    """A Job's end, as a node remembers it (``job_record_labels``, ``decode_job_record``)."""

    namespace: str
    job: str
    template_hash: str
    result: str  # Complete | Failed
    reason: str = ""
    succeeded: int = 0
    failed: int = 0
    started: float = 0.0
    finished: float = 0.0
    commit: str = ""
    node: str = ""
    message: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.job)


def job_record_labels(rec: JobRecord, instance: str) -> dict[str, str]:
    return {
        L_MANAGED: "true",
        L_INSTANCE: instance,
        L_NAMESPACE: rec.namespace,
        L_JOB: rec.job,
        L_HASH: rec.template_hash,
        L_COMMIT: rec.commit,
        L_JOB_RESULT: rec.result,
        L_JOB_REASON: rec.reason,
        L_JOB_MESSAGE: rec.message[:MAX_MESSAGE],
        L_JOB_COUNTS: f"{rec.succeeded},{rec.failed}",
        L_JOB_TIMES: f"{rec.started:.3f},{rec.finished:.3f}",
    }


def decode_job_record(labels: Mapping[str, str], node: str) -> JobRecord:
    get = labels.get
    succeeded, _, failed = get(L_JOB_COUNTS, "").partition(",")
    started, _, finished = get(L_JOB_TIMES, "").partition(",")
    return JobRecord(
        namespace=get(L_NAMESPACE, ""),
        job=get(L_JOB, ""),
        template_hash=get(L_HASH, ""),
        result=get(L_JOB_RESULT, ""),
        reason=get(L_JOB_REASON, ""),
        succeeded=_int(succeeded, 0),
        failed=_int(failed, 0),
        started=_float(started),
        finished=_float(finished),
        commit=get(L_COMMIT, ""),
        node=node,
        message=get(L_JOB_MESSAGE, ""),
    )


def _float(text: str) -> float:
    try:
        value = float(text or 0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0


def service_labels(namespace: str, service: str, ports: list[int], instance: str) -> dict[str, str]:
    return {
        L_MANAGED: "true",
        L_INSTANCE: instance,
        L_NAMESPACE: namespace,
        L_SERVICE: service,
        L_SERVICE_PORTS: ",".join(str(p) for p in ports),
    }


@dataclass(frozen=True)
class ContainerLabels:
    """A container's labels, read back (``decode``). A label that is missing or unreadable
    gives the default, never an error: the engine may hold containers of older versions."""

    managed: bool = False
    instance: str = ""
    namespace: str = ""
    deployment: str = ""
    pod: str = ""
    container: str = ""
    index: int = 0
    init: bool = False
    infra: bool = False
    own_network: bool = False
    template_hash: str = ""
    commit: str = ""
    node: str = ""
    created: float = 0.0
    grace: int = 30
    requests: tuple[int, int] = (0, 0)
    gpus: int = 0
    claims: tuple[str, ...] = ()
    host_ports: tuple[HostPort, ...] = ()
    probes: str = ""  # JSON; ``decode_probes`` reads it
    ports: dict[str, int] = field(default_factory=dict)  # named container ports
    pre_stop: tuple[str, ...] = ()
    pre_stop_in_pod: bool = False  # run in the pod's pause container, not in this one
    post_start: tuple[str, ...] = ()
    post_start_in_pod: bool = False
    prune: bool = True
    restart_policy: str = ""  # a Job's pod: Never or OnFailure
    pod_labels: dict[str, str] = field(default_factory=dict)  # the pod template's own labels
    service: str = ""  # a Service's in-namespace name proxy
    service_ports: tuple[int, ...] = ()


def _int(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isascii() and text.isdigit() else default


def _json(text: str | None, kind: type) -> Any:
    try:
        value = json.loads(text) if text else kind()
    except ValueError:
        return kind()
    return value if isinstance(value, kind) else kind()


def _host_ports(text: str) -> tuple[HostPort, ...]:
    out = []
    for item in text.split(","):
        proto, _, rest = item.partition("/")
        ip, _, port = rest.rpartition("/")
        if proto and port.isdigit():
            out.append((proto, ip, int(port)))
    return tuple(out)


def decode(labels: Mapping[str, str]) -> ContainerLabels:
    get = labels.get
    cpu, _, memory = get(L_REQUESTS, "").partition(",")
    memory, _, gpus = memory.partition(",")
    try:
        created = float(get(L_CREATED, "0") or 0)
    except ValueError:
        created = 0.0
    ports = _json(get(L_PORTS), dict)
    pre_stop, pre_stop_in_pod = _decode_hook(get(L_PRESTOP))
    post_start, post_start_in_pod = _decode_hook(get(L_POSTSTART))
    return ContainerLabels(
        managed=get(L_MANAGED) == "true",
        instance=get(L_INSTANCE, ""),
        namespace=get(L_NAMESPACE, ""),
        deployment=get(L_DEPLOYMENT, ""),
        pod=get(L_POD, ""),
        container=get(L_CONTAINER, ""),
        index=_int(get(L_INDEX), 0),
        init=get(L_INIT) == "true",
        infra=get(L_INFRA) == "true",
        own_network=get(L_OWN_NETWORK) == "true",
        template_hash=get(L_HASH, ""),
        commit=get(L_COMMIT, ""),
        node=get(L_NODE, ""),
        created=created,
        grace=_int(get(L_GRACE), 30),
        requests=(_int(cpu, 0), _int(memory, 0)) if cpu and memory else (0, 0),
        gpus=_int(gpus, 0),
        claims=tuple(c for c in get(L_CLAIMS, "").split(",") if c),
        host_ports=_host_ports(get(L_HOST_PORTS, "")),
        probes=get(L_PROBES, ""),
        ports={str(k): int(v) for k, v in ports.items() if isinstance(v, int)},
        pre_stop=pre_stop,
        pre_stop_in_pod=pre_stop_in_pod,
        post_start=post_start,
        post_start_in_pod=post_start_in_pod,
        prune=get(L_PRUNE, "enabled") != "disabled",
        restart_policy=get(L_RESTART_POLICY, ""),
        pod_labels={
            k[len(L_POD_LABEL) :]: v for k, v in labels.items() if k.startswith(L_POD_LABEL)
        },
        service=get(L_SERVICE, ""),
        service_ports=tuple(
            _int(p, 0) for p in get(L_SERVICE_PORTS, "").split(",") if p.isascii() and p.isdigit()
        ),
    )
