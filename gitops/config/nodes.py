"""The node list: from the configuration file (``--config``) or ``--node`` specs.

A file::

    nodes:
      - name: node-1
        endpoint: tcp://10.0.0.11:2376          # or unix:///var/run/docker.sock, ssh://user@host
        tls: {ca: /etc/gitops/ca.pem, cert: /etc/gitops/cert.pem, key: /etc/gitops/key.pem}
        address: 10.0.0.11                      # where its NodePort Services are reached
        labels: {zone: a, disk: ssd}            # what nodeSelector matches
        reserve: {cpu: 500m, memory: 512Mi}     # kept back from the engine's capacity
        proxy: auto                             # NodePorts served here, or by the node (node)
        probes: auto                            # HTTP/TCP probes from here, or in the pod (node)
        maxPods: 110                            # beyond it a pod is Pending (Too many pods)
        allowPrivileged: false                  # may run securityContext.privileged pods
        taints: [{key: gpu, value: "true", effect: NoSchedule}]  # only tolerating pods
        gpus: 2                                 # NVIDIA GPUs pods ask for (nvidia.com/gpu)
        hostPaths: [/srv/gitops]                # hostPath volumes may bind these and below
    storageClasses:                             # storageClassName -> Docker volume driver
      fast: {driver: local, options: {type: tmpfs, device: tmpfs, o: size=1g}}
      nfs: {driver: local, options: {type: nfs, o: "addr=10.0.0.2,rw", device: ":/export"},
            shared: true}                       # every node reaches it: ReadWriteMany
    nodeGracePeriod: 10s                        # silent this long: NotReady
    evictionTimeout: 30s                        # silent this long: pods replaced elsewhere
    skipApiGroups: [monitoring.coreos.com]      # custom resources of these groups: Skipped
    clusterDNS: true                            # headless Services resolve to ready pods

A spec on the command line says the same in one line:
``name=node-1,endpoint=tcp://10.0.0.11:2376,address=10.0.0.11,label.zone=a,reserve.cpu=500m``
(TLS files: ``tls.ca=…,tls.cert=…,tls.key=…``). Errors name the file, the node and the field.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gitops.config.durations import parse_duration
from gitops.config.settings import NodeConfig, StorageClass
from gitops.errors import GitopsError
from gitops.manifests.quantity import cpu_millis, memory_bytes
from gitops.model.templates import DEFAULT_MAX_PODS

ENDPOINT_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")


class NodeConfigError(GitopsError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Tls(_Strict):
    ca: str
    cert: str
    key: str


class _Reserve(_Strict):
    cpu: str | int = 0
    memory: str | int = 0


class _Taint(_Strict):
    key: str = Field(min_length=1, max_length=316)
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class _Node(_Strict):
    name: str = Field(pattern=r"\A[a-z0-9]([-a-z0-9.]*[a-z0-9])?\z", max_length=63)
    endpoint: str | None = None
    tls: _Tls | None = None
    address: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    reserve: _Reserve = Field(default_factory=_Reserve)
    proxy: Literal["auto", "here", "node"] = "auto"
    probes: Literal["auto", "here", "node"] = "auto"
    # The kubelet's maxPods: beyond it a pod is Pending ("Too many pods").
    max_pods: int = Field(default=DEFAULT_MAX_PODS, ge=1, le=100_000, alias="maxPods")
    allow_privileged: bool = Field(default=False, alias="allowPrivileged")
    taints: list[_Taint] = Field(default_factory=list)  # only pods that tolerate them go there
    gpus: int = Field(default=0, ge=0, le=1024)  # NVIDIA GPUs pods may ask for (nvidia.com/gpu)
    # hostPath volumes may bind these paths of the node, and what is below them
    host_paths: list[Annotated[str, Field(pattern=r"\A/")]] = Field(
        default_factory=list, alias="hostPaths"
    )

    @field_validator("endpoint")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(ENDPOINT_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(ENDPOINT_SCHEMES)}")
        return v


class _StorageClass(_Strict):
    driver: str = Field(default="local", min_length=1)
    options: dict[str, str] = Field(default_factory=dict)
    shared: bool = False  # every node reaches the same volume (ReadWriteMany, ReadOnlyMany)


class _File(_Strict):
    nodes: list[_Node] = Field(min_length=1)
    storage_classes: dict[str, _StorageClass] = Field(default_factory=dict, alias="storageClasses")
    node_grace_period: str | None = Field(default=None, alias="nodeGracePeriod")
    eviction_timeout: str | None = Field(default=None, alias="evictionTimeout")
    skip_api_groups: list[str] = Field(default_factory=list, alias="skipApiGroups")
    cluster_dns: bool | None = Field(default=None, alias="clusterDNS")


def _node(n: _Node, where: str) -> NodeConfig:
    try:
        cpu, memory = cpu_millis(n.reserve.cpu), memory_bytes(n.reserve.memory)
    except ValueError as exc:
        raise NodeConfigError(f"{where}: node {n.name}: reserve: {exc}") from exc
    if n.tls is not None and not (n.endpoint or "").startswith("tcp://"):
        raise NodeConfigError(f"{where}: node {n.name}: tls: only for a tcp:// endpoint")
    return NodeConfig(
        name=n.name,
        docker_host=n.endpoint,
        labels=tuple(sorted(n.labels.items())),
        address=n.address,
        tls_ca=n.tls.ca if n.tls else None,
        tls_cert=n.tls.cert if n.tls else None,
        tls_key=n.tls.key if n.tls else None,
        reserve_cpu_millis=cpu,
        reserve_memory=memory,
        proxy=n.proxy,
        probes=n.probes,
        max_pods=n.max_pods,
        allow_privileged=n.allow_privileged,
        taints=tuple((t.key, t.value, t.effect) for t in n.taints),
        gpus=n.gpus,
        host_paths=tuple(posixpath.normpath(p) for p in n.host_paths),
    )


def _errors(exc: ValidationError, where: str, raw: Any) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        prefix = where
        if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
            nodes = raw.get("nodes") if isinstance(raw, dict) else None
            entry = nodes[loc[1]] if isinstance(nodes, list) and loc[1] < len(nodes) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            prefix += f": node {name or '#' + str(loc[1])}"
            loc = loc[2:]
        field = ".".join(str(x) for x in loc) or "(document)"
        lines.append(f"{prefix}: {field}: {err['msg']}")
    return "\n".join(lines)


def _check_unique(nodes: list[NodeConfig], where: str) -> None:
    seen: set[str] = set()
    for n in nodes:
        if n.name in seen:
            raise NodeConfigError(f"{where}: node {n.name}: name: given twice")
        seen.add(n.name)


def load_file(path: Path) -> tuple[tuple[NodeConfig, ...], dict[str, Any]]:
    """Nodes, and the other settings the file gives (``node_grace``, ``eviction_timeout``,
    ``skip_api_groups``), named as ``Settings`` names them."""
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise NodeConfigError(f"{where}: {exc}") from exc
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise NodeConfigError(_errors(exc, where, raw)) from exc
    nodes = [_node(n, where) for n in parsed.nodes]
    _check_unique(nodes, where)
    timing: dict[str, Any] = {}
    if parsed.skip_api_groups:
        timing["skip_api_groups"] = frozenset(parsed.skip_api_groups)
    if parsed.cluster_dns is not None:
        timing["cluster_dns"] = parsed.cluster_dns
    if parsed.storage_classes:
        classes = {"local": StorageClass("local")}
        classes.update(
            (name, StorageClass(name, c.driver, tuple(sorted(c.options.items())), c.shared))
            for name, c in parsed.storage_classes.items()
        )
        timing["storage_classes"] = tuple(classes[k] for k in sorted(classes))
    for key, value in (
        ("node_grace", parsed.node_grace_period),
        ("eviction_timeout", parsed.eviction_timeout),
    ):
        if value is not None:
            try:
                timing[key] = parse_duration(value)
            except ValueError as exc:
                raise NodeConfigError(f"{where}: {key}: {exc}") from exc
    return tuple(nodes), timing


def parse_spec(spec: str) -> NodeConfig:
    """One ``--node`` value: comma-separated ``key=value`` pairs (see the module doc)."""
    fields: dict[str, Any] = {"labels": {}, "reserve": {}}
    tls: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise NodeConfigError(f"--node {spec!r}: {part!r}: expected key=value")
        if key.startswith("label."):
            fields["labels"][key[len("label.") :]] = value
        elif key.startswith("reserve."):
            fields["reserve"][key[len("reserve.") :]] = value
        elif key.startswith("tls."):
            tls[key[len("tls.") :]] = value
        else:
            fields[key] = value
    if tls:
        fields["tls"] = tls
    where = f"--node {spec!r}"
    try:
        node = _Node.model_validate(fields)
    except ValidationError as exc:
        raise NodeConfigError(_errors(exc, where, {})) from exc
    return _node(node, where)


def node_list(specs: list[str], path: Path | None) -> tuple[tuple[NodeConfig, ...], dict[str, Any]]:
    """The file's nodes, then the specs' (a spec may not repeat a file's node)."""
    nodes: list[NodeConfig] = []
    timing: dict[str, Any] = {}
    if path is not None:
        from_file, timing = load_file(path)
        nodes += from_file
    nodes += [parse_spec(s) for s in specs]
    _check_unique(nodes, "nodes")
    return tuple(nodes), timing
