"""The field types of Kubernetes manifests: names, labels, quantities, ports, paths, each with
Kubernetes' own rule, and ``Spec``, the strict, immutable base of every manifest model.

Stage: manifests. Used by ``gitops.manifests.pod`` (what a pod template holds) and
``gitops.manifests.model`` (the kinds). A rule's message never quotes more than a bounded
prefix of the value it refuses.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator
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


def check_path_segment(value: str) -> str:
    """Kubernetes' rule for names that are path segments (RBAC's, such as ``system:node``)."""
    if value in (".", "..") or "/" in value or "%" in value or len(value) > 253:
        raise ValueError(
            f"invalid name {_shown(value)}: may not be '.' or '..', nor contain '/' or '%'"
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
