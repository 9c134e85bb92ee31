"""What a pod template holds: containers, their probes, environment, volumes, resources and
security context, and the pod-level fields around them.

Stage: manifests. Shapes and single-field rules only (``gitops.manifests.validate`` relates
fields to each other). Field names and defaults are Kubernetes'.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator

from gitops.manifests.fields import (
    Annotations,
    DnsLabel,
    EnvName,
    HeaderName,
    HeaderValue,
    IntOrString,
    Labels,
    LocalPath,
    NonNegative,
    NonNegative64,
    PortName,
    PortNumber,
    Positive,
    Quantity,
    Spec,
    UrlPath,
)
from gitops.manifests.scheduling import Affinity, Toleration, TopologySpreadConstraint
from gitops.manifests.security import PodSecurityContext, SecurityContext


class KeyToPath(Spec):
    key: str
    path: LocalPath
    mode: Annotated[int, Field(ge=0, le=0o777)] | None = None


class ConfigMapVolumeSource(Spec):
    name: str
    items: list[KeyToPath] = Field(default_factory=list)
    default_mode: Annotated[int, Field(ge=0, le=0o777)] = 0o644
    optional: bool = False


class SecretVolumeSource(Spec):
    secret_name: str
    items: list[KeyToPath] = Field(default_factory=list)
    default_mode: Annotated[int, Field(ge=0, le=0o777)] = 0o644
    optional: bool = False


class EmptyDirVolumeSource(Spec):
    medium: Literal["", "Memory"] = ""
    size_limit: Quantity | None = None


class PersistentVolumeClaimVolumeSource(Spec):
    claim_name: Annotated[str, Field(min_length=1)]
    read_only: bool = False


HostPathType = Literal[
    "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
    "BlockDevice",
]  # fmt: skip


class HostPathVolumeSource(Spec):
    path: Annotated[str, Field(min_length=1)]
    type: HostPathType = ""


class Volume(Spec):
    name: DnsLabel
    empty_dir: EmptyDirVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None


VOLUME_SOURCES: Final = (
    "empty_dir",
    "config_map",
    "secret",
    "persistent_volume_claim",
    "host_path",
)


class VolumeMount(Spec):
    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str | None = None
    sub_path_expr: str | None = None  # $(VAR) from the container's environment


class KeySelector(Spec):
    name: str
    key: str
    optional: bool = False


class ObjectFieldSelector(Spec):
    field_path: str
    api_version: str | None = None


class ResourceFieldSelector(Spec):
    resource: Literal["limits.cpu", "limits.memory", "requests.cpu", "requests.memory"]
    container_name: str | None = None
    divisor: Quantity | None = None


class EnvVarSource(Spec):
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None


class EnvVar(Spec):
    name: EnvName
    value: str | None = None
    value_from: EnvVarSource | None = None


class PodDNSConfigOption(Spec):
    name: str
    value: str | None = None


class PodDNSConfig(Spec):
    nameservers: list[str] = Field(default_factory=list, max_length=3)
    searches: list[str] = Field(default_factory=list, max_length=32)
    options: list[PodDNSConfigOption] = Field(default_factory=list)


class LocalObjectReference(Spec):
    name: str


class NamedRef(Spec):
    name: str
    optional: bool = False


class EnvFromSource(Spec):
    prefix: str = ""
    config_map_ref: NamedRef | None = None
    secret_ref: NamedRef | None = None


class ContainerPort(Spec):
    container_port: PortNumber
    name: PortName | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"
    # Published on the node (Docker's port binding on the container holding the pod's
    # network); hostIP "" is every address of the node, as in Kubernetes.
    host_port: PortNumber | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")

    @field_validator("host_ip")
    @classmethod
    def _ipv4(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                IPv4Address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 address") from None
        return value


# The resources gitops honours: cpu and memory; ephemeral-storage (the writable layer's size,
# where the node's storage driver can bound it); nvidia.com/gpu (Docker device requests, on
# the GPUs a node's configuration declares).
ResourceName = Literal["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"]
GPU: Final = "nvidia.com/gpu"


class ResourceRequirements(Spec):
    requests: dict[ResourceName, Quantity] = Field(default_factory=dict)
    limits: dict[ResourceName, Quantity] = Field(default_factory=dict)


class HTTPHeader(Spec):
    name: HeaderName
    value: HeaderValue


class HTTPGetAction(Spec):
    path: UrlPath = "/"
    port: IntOrString
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    http_headers: list[HTTPHeader] = Field(default_factory=list)


class TCPSocketAction(Spec):
    port: IntOrString
    host: str | None = None


class GRPCAction(Spec):
    port: PortNumber
    service: str | None = None  # the name in the gRPC health request; "" or absent: the server


class ExecAction(Spec):
    command: list[str] = Field(min_length=1)


class Probe(Spec):
    """A health probe; Kubernetes' defaults. Exactly one handler (checked in validate)."""

    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    exec_: ExecAction | None = Field(default=None, alias="exec")
    grpc: GRPCAction | None = None
    initial_delay_seconds: NonNegative = 0
    period_seconds: Positive = 10
    timeout_seconds: Positive = 1
    success_threshold: Positive = 1
    failure_threshold: Positive = 3


class SleepAction(Spec):
    seconds: NonNegative


class LifecycleHandler(Spec):
    exec_: ExecAction | None = Field(default=None, alias="exec")
    http_get: HTTPGetAction | None = None
    sleep: SleepAction | None = None


class Lifecycle(Spec):
    pre_stop: LifecycleHandler | None = None
    post_start: LifecycleHandler | None = None


class Container(Spec):
    name: DnsLabel
    image: Annotated[str, Field(min_length=1)]
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] = Field(default_factory=list)
    env_from: list[EnvFromSource] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    volume_mounts: list[VolumeMount] = Field(default_factory=list)
    lifecycle: Lifecycle | None = None
    security_context: SecurityContext | None = None
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    # The kubelet's termination message; accepted (exports carry the defaults) and reported.
    termination_message_path: str | None = None
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] | None = None


class PodSpec(Spec):
    containers: list[Container] = Field(min_length=1)
    init_containers: list[Container] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"
    termination_grace_period_seconds: NonNegative64 = 30
    node_selector: dict[str, str] = Field(default_factory=dict)
    security_context: PodSecurityContext | None = None
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list)
    hostname: DnsLabel | None = None
    subdomain: DnsLabel | None = None
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] | None = None
    dns_config: PodDNSConfig | None = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] = Field(default_factory=list)
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(default_factory=list)
    # Kubernetes API identities and controls that mean nothing on a Docker host: accepted,
    # and reported as warnings (``gitops.manifests.ignored``).
    service_account_name: str | None = None
    service_account: str | None = None  # the deprecated alias of serviceAccountName
    automount_service_account_token: bool | None = None
    enable_service_links: bool | None = None
    priority_class_name: str | None = None
    priority: int | None = None
    preemption_policy: Literal["PreemptLowerPriority", "Never"] | None = None
    runtime_class_name: str | None = None
    scheduler_name: str | None = None


class TemplateMeta(Spec):
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    name: str | None = None  # ignored (reported): pods are named after their workload


class PodTemplateSpec(Spec):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: PodSpec


class LabelSelector(Spec):
    match_labels: Labels = Field(min_length=1)
