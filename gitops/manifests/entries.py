"""A validated commit: its resources, each with the file and document it came from.

Stage: manifests, the output. ``Manifests`` is immutable; lookups are by kind, namespace and
name. ``config_data`` decodes what a ConfigMap or Secret provides.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gitops.errors import FieldError
from gitops.manifests import model as m

DEFAULT_NAMESPACE = "default"
R = TypeVar("R", bound=m.Resource)
Issue = Callable[[str, str], None]  # how a check reports (field, message) of one document


@dataclass(frozen=True)
class Policy:
    """What this installation's configuration allows beyond what every Docker host can do."""

    skip_api_groups: frozenset[str] = frozenset()  # custom resources of these groups: Skipped
    allow_privileged: bool = False  # some node runs privileged containers
    # storageClassName -> whether its volume driver is shared (ReadWriteMany, ReadOnlyMany)
    storage_classes: tuple[tuple[str, bool], ...] = (("local", False),)
    host_paths: tuple[str, ...] = ()  # hostPath volumes may use these paths and below them
    # How the reconciler reads a CronJob's schedule and timeZone: why it would refuse them,
    # (field, message) each. The scheduler's own parser, handed in
    # (``gitops.source.cron.problems``); None: the schedules are not checked here.
    schedule: Callable[[str, str | None], list[tuple[str, str]]] | None = field(
        default=None, compare=False
    )
    # The wall clock TLS certificates are checked against (expired, not yet valid).
    clock: Callable[[], float] = field(default=time.time, compare=False)


@dataclass(frozen=True)
class Entry(Generic[R]):
    """A validated resource and where it came from."""

    path: str
    doc: int
    resource: R

    @property
    def namespace(self) -> str:
        if isinstance(self.resource, m.Namespace | m.IngressClass) or getattr(
            self.resource, "cluster_scoped", False
        ):
            return ""
        return self.resource.metadata.namespace or DEFAULT_NAMESPACE

    @property
    def name(self) -> str:
        return self.resource.metadata.name

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.resource.kind, self.namespace, self.name)

    @property
    def display(self) -> str:
        return f"{self.resource.kind}/{self.name}"


@dataclass(frozen=True)
class Manifests:
    """Every resource of one commit, validated. Lookups are by (namespace, name)."""

    entries: tuple[Entry[Any], ...] = ()
    warnings: tuple[FieldError, ...] = ()  # fields accepted but ignored (manifests.ignored)
    renderer: str = ""  # the kustomize that built its kustomizations ("" when none did)
    _index: dict[tuple[str, str, str], Entry[Any]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._index.update({e.key: e for e in self.entries})

    def of(self, kind: type[R]) -> list[Entry[R]]:
        return [e for e in self.entries if isinstance(e.resource, kind)]

    def get(self, kind: type[R], namespace: str, name: str) -> Entry[R] | None:
        entry = self._index.get((kind.__name__, namespace, name))
        return entry if entry is not None and isinstance(entry.resource, kind) else None

    def namespaces(self) -> set[str]:
        """Declared namespaces and every namespace a resource lives in (created implicitly)."""
        declared = {e.name for e in self.of(m.Namespace)}
        return declared | {e.namespace for e in self.entries if e.namespace}


def decode_base64(value: str) -> bytes:
    """Strict base64, as the API server decodes a Secret's ``data``: the standard alphabet with
    padding; line breaks (a value folded at 76 columns) are skipped."""
    compact = value.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("value is not valid base64") from exc


def _decoded(value: str) -> bytes:
    try:
        return decode_base64(value)
    except ValueError:
        return b""  # reported by the resource's own check; the reference still resolves


def config_data(resource: m.ConfigMap | m.Secret) -> dict[str, bytes]:
    """The key/value data a ConfigMap or Secret provides, decoded to bytes."""
    out: dict[str, bytes] = {}
    if isinstance(resource, m.ConfigMap):
        out.update({k: v.encode() for k, v in resource.data.items()})
        out.update({k: _decoded(v) for k, v in resource.binary_data.items()})
    else:
        out.update({k: _decoded(v) for k, v in resource.data.items()})
        out.update({k: v.encode() for k, v in resource.string_data.items()})
    return out
