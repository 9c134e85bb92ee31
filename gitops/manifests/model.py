"""Typed, immutable specs for the Kubernetes kinds gitops manages.

Stage: manifests. In: one YAML document as a dict. Out: a frozen model, or pydantic errors
whose locations are the manifest's own (camelCase) field paths. Only shapes, types and
single-field rules live here; rules that relate fields or resources to each other live in
``gitops.manifests.validate``. Field names and defaults are Kubernetes', so the same files
``kubectl apply`` unchanged.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
)
from pydantic.alias_generators import to_camel

from gitops.manifests.quantity import parse_quantity

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# An HTTP header name is a token (RFC 9110); a value has no control characters but tab.
_HEADER_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
_URL_PATH = re.compile(r"[^\x00-\x20\x7f]*")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _shown(value: str) -> str:
    """A value as an error message quotes it: bounded, so a huge one cannot flood a log."""
    return repr(value if len(value) <= 63 else value[:60] + "...")


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"invalid name {_shown(value)}: a DNS-1123 label must consist of lower case "
            "alphanumeric characters or '-', start and end with an alphanumeric character, at "
            "most 63 characters"
        )
    return value


def check_dns_subdomain(value: str) -> str:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"invalid name {_shown(value)}: a DNS-1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character"
        )
    return value


def _check_label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix:
        check_dns_subdomain(prefix)
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"invalid label key {_shown(key)}")
    return key


def _check_label_value(value: str) -> str:
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        raise ValueError(
            f"invalid label value {_shown(value)}: at most 63 alphanumerics, '-', '_', '.'"
        )
    return value


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        _check_label_key(key)
        _check_label_value(value)
    return labels


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"invalid environment variable name {_shown(value)}")
    return value


def check_port_name(value: str) -> str:
    if (
        len(value) > 15
        or not _IANA_SVC_NAME.fullmatch(value)
        or "--" in value
        or not re.search("[a-z]", value)
    ):
        raise ValueError(
            f"invalid port name {_shown(value)}: at most 15 lower case alphanumerics or '-', "
            "with at least one letter"
        )
    return value


def _quantity(value: Any) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a quantity such as 500m, 0.5, 128Mi")
    parse_quantity(value)
    return value


def _check_config_keys(data: dict[str, str]) -> dict[str, str]:
    for key in data:
        if len(key) > 253 or not _CONFIG_KEY.fullmatch(key):
            raise ValueError(f"invalid key {_shown(key)}: alphanumerics, '-', '_' or '.'")
    return data


def _check_annotations(annotations: dict[str, str]) -> dict[str, str]:
    for key in annotations:
        _check_label_key(key)
    return annotations


def _check_local_path(value: str) -> str:
    """A path inside a volume: relative, and never climbing out of it (Kubernetes' rule)."""
    if not value:
        raise ValueError("must not be empty")
    if value.startswith("/"):
        raise ValueError("must be a relative path")
    if ".." in value.split("/"):
        raise ValueError("must not contain '..'")
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _matching(pattern: re.Pattern[str], message: str) -> AfterValidator:
    """A check that the whole string matches ``pattern``."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _int_or_string(value: Any) -> int | str:
    # One message instead of pydantic's two (one per union branch).
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be an integer or a string")
    if isinstance(value, int) and not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise ValueError("does not fit a 32-bit integer")
    return value


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 1-65535")
    return value


DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
Quantity = Annotated[str | int | float, PlainValidator(_quantity)]
IntOrString = Annotated[int | str, PlainValidator(_int_or_string)]
PortNumber = Annotated[int, AfterValidator(_port_number)]
PortName = Annotated[str, AfterValidator(check_port_name)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
ConfigData = Annotated[dict[str, str], AfterValidator(_check_config_keys)]
# Kubernetes' integer fields are int32 (counts, ports, seconds of probes) or int64.
NonNegative = Annotated[int, Field(ge=0, le=INT32_MAX)]
Positive = Annotated[int, Field(ge=1, le=INT32_MAX)]
NonNegative64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
Annotations = Annotated[dict[str, str], AfterValidator(_check_annotations)]
LocalPath = Annotated[str, AfterValidator(_check_local_path)]
HeaderName = Annotated[
    str, _matching(_HEADER_NAME, "an HTTP header name is letters, digits and !#$%&'*+-.^_`|~")
]
HeaderValue = Annotated[
    str, _matching(_HEADER_VALUE, "an HTTP header value may not hold control characters")
]
UrlPath = Annotated[
    str, _matching(_URL_PATH, "a URL path may not hold spaces or control characters")
]


class Spec(BaseModel):
    """Base of every manifest model: strict types, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )


class ObjectMeta(Spec):
    name: str
    namespace: DnsLabel | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


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


class Volume(Spec):
    name: DnsLabel
    empty_dir: EmptyDirVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None


class VolumeMount(Spec):
    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str | None = None


class KeySelector(Spec):
    name: str
    key: str
    optional: bool = False


class EnvVarSource(Spec):
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None


class EnvVar(Spec):
    name: EnvName
    value: str | None = None
    value_from: EnvVarSource | None = None


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


class ResourceRequirements(Spec):
    requests: dict[Literal["cpu", "memory"], Quantity] = Field(default_factory=dict)
    limits: dict[Literal["cpu", "memory"], Quantity] = Field(default_factory=dict)


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


class ExecAction(Spec):
    command: list[str] = Field(min_length=1)


class Probe(Spec):
    """A health probe; Kubernetes' defaults. Exactly one handler (checked in validate)."""

    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    exec_: ExecAction | None = Field(default=None, alias="exec")
    initial_delay_seconds: NonNegative = 0
    period_seconds: Positive = 10
    timeout_seconds: Positive = 1
    success_threshold: Positive = 1
    failure_threshold: Positive = 3


class LifecycleHandler(Spec):
    exec_: ExecAction | None = Field(default=None, alias="exec")
    http_get: HTTPGetAction | None = None


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


class PodSpec(Spec):
    containers: list[Container] = Field(min_length=1)
    init_containers: list[Container] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    restart_policy: Literal["Always"] = "Always"
    termination_grace_period_seconds: NonNegative64 = 30
    node_selector: dict[str, str] = Field(default_factory=dict)


class TemplateMeta(Spec):
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


class PodTemplateSpec(Spec):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: PodSpec


class LabelSelector(Spec):
    match_labels: Labels = Field(min_length=1)


class RollingUpdateDeployment(Spec):
    max_surge: IntOrString = "25%"
    max_unavailable: IntOrString = "25%"


class DeploymentStrategy(Spec):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentSpec(Spec):
    replicas: NonNegative = 1
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    min_ready_seconds: NonNegative = 0
    progress_deadline_seconds: Positive = 600
    revision_history_limit: NonNegative = 10
    paused: bool = False


class ServicePort(Spec):
    name: PortName | None = None
    port: PortNumber
    target_port: IntOrString | None = None
    protocol: Literal["TCP"] = "TCP"
    node_port: Annotated[int, Field(ge=30000, le=32767)] | None = None


class ServiceSpec(Spec):
    selector: Labels = Field(default_factory=dict)
    ports: list[ServicePort] = Field(default_factory=list)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    session_affinity: Literal["None", "ClientIP"] = "None"
    cluster_ip: str | None = Field(default=None, alias="clusterIP")


class Resource(Spec):
    """Fields every top-level kind has."""

    api_version: str
    kind: str
    metadata: ObjectMeta


class Namespace(Resource):
    api_version: Literal["v1"]
    kind: Literal["Namespace"]


class ConfigMap(Resource):
    api_version: Literal["v1"]
    kind: Literal["ConfigMap"]
    data: ConfigData = Field(default_factory=dict)
    binary_data: ConfigData = Field(default_factory=dict)
    immutable: bool = False


class Secret(Resource):
    api_version: Literal["v1"]
    kind: Literal["Secret"]
    type: str = "Opaque"
    data: ConfigData = Field(default_factory=dict)
    string_data: ConfigData = Field(default_factory=dict)
    immutable: bool = False


class Service(Resource):
    api_version: Literal["v1"]
    kind: Literal["Service"]
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class Deployment(Resource):
    api_version: Literal["apps/v1"]
    kind: Literal["Deployment"]
    spec: DeploymentSpec


KINDS: dict[str, tuple[str, type[Resource]]] = {
    "Namespace": ("v1", Namespace),
    "ConfigMap": ("v1", ConfigMap),
    "Secret": ("v1", Secret),
    "Service": ("v1", Service),
    "Deployment": ("apps/v1", Deployment),
}
