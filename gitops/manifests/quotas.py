"""ResourceQuota and LimitRange (``v1``): what a namespace may use, and the defaults and bounds
of its containers' resources.

Stage: manifests. The models; a LimitRange's defaults as Kubernetes applies them
(``defaulted``: its ``SetDefaults_LimitRangeItem`` and the LimitRanger admission plugin, the
result part of the pod template and so of its hash); the checks made at commit time: a
LimitRange's ``min``, ``max`` and ``maxLimitRequestRatio`` on every container of the
namespace's workloads, a quota's keys and scopes, and the quota's object counts over the
commit. The pods and compute a quota allows are counted when a pass plans
(``gitops.decide.quota``), against what runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from gitops.manifests import model as m
from gitops.manifests import pod as pm
from gitops.manifests.entries import Entry, Issue, Manifests
from gitops.manifests.fields import Quantity, Spec
from gitops.manifests.model import Resource
from gitops.manifests.quantity import parse_quantity

COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "pods")
ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}
# Objects a quota counts in the commit: its key -> the kind (and a filter, for NodePorts).
COUNTED = {
    "services": "Service", "services.nodeports": "Service", "configmaps": "ConfigMap",
    "secrets": "Secret", "persistentvolumeclaims": "PersistentVolumeClaim",
    "replicationcontrollers": "ReplicationController", "resourcequotas": "ResourceQuota",
}  # fmt: skip
COUNT_KINDS = {  # count/<resource>.<group>
    "count/deployments.apps": "Deployment", "count/statefulsets.apps": "StatefulSet",
    "count/daemonsets.apps": "DaemonSet", "count/replicasets.apps": "ReplicaSet",
    "count/jobs.batch": "Job", "count/cronjobs.batch": "CronJob", "count/services": "Service",
    "count/configmaps": "ConfigMap", "count/secrets": "Secret",
    "count/persistentvolumeclaims": "PersistentVolumeClaim",
    "count/ingresses.networking.k8s.io": "Ingress",
    "count/horizontalpodautoscalers.autoscaling": "HorizontalPodAutoscaler",
    "count/poddisruptionbudgets.policy": "PodDisruptionBudget",
    "count/replicationcontrollers": "ReplicationController",
}  # fmt: skip
STORAGE = "requests.storage"
SCOPES = ("BestEffort", "NotBestEffort")


class ResourceQuotaSpec(Spec):
    hard: dict[str, Quantity] = Field(default_factory=dict)
    scopes: list[str] = Field(default_factory=list)


class ResourceQuota(Resource):
    """What a namespace may use: counted over the commit, and over its running pods."""

    api_version: Literal["v1"]
    kind: Literal["ResourceQuota"]
    spec: ResourceQuotaSpec = Field(default_factory=ResourceQuotaSpec)

    def hard(self) -> dict[str, Decimal]:
        """The limits by their full names (``cpu`` is ``requests.cpu``)."""
        return {ALIASES.get(k, k): parse_quantity(v) for k, v in self.spec.hard.items()}


class LimitRangeItem(Spec):
    type: Literal["Container", "Pod", "PersistentVolumeClaim"]
    default: dict[str, Quantity] = Field(default_factory=dict)
    default_request: dict[str, Quantity] = Field(default_factory=dict)
    min: dict[str, Quantity] = Field(default_factory=dict)
    max: dict[str, Quantity] = Field(default_factory=dict)
    max_limit_request_ratio: dict[str, Quantity] = Field(default_factory=dict)


class LimitRangeSpec(Spec):
    limits: list[LimitRangeItem]


class LimitRange(Resource):
    """Defaults and bounds for the namespace's containers' resources."""

    api_version: Literal["v1"]
    kind: Literal["LimitRange"]
    spec: LimitRangeSpec


KINDS: dict[str, tuple[str, type[Resource]]] = {
    "ResourceQuota": ("v1", ResourceQuota),
    "LimitRange": ("v1", LimitRange),
}


# -- LimitRange -----------------------------------------------------------------------------
def container_items(
    manifests: Manifests, namespace: str, kind: str = "Container"
) -> list[tuple[Entry[LimitRange], int]]:
    """The namespace's LimitRange items of type ``kind``, with their index."""
    ranges = [e for e in manifests.of(LimitRange) if e.namespace == namespace]
    return [(e, i) for e in ranges for i, item in enumerate(e.resource.spec.limits)
            if item.type == kind]  # fmt: skip


def _item_defaults(item: LimitRangeItem) -> tuple[dict[str, str], dict[str, str]]:
    """(default limits, default requests) as Kubernetes' defaulting fills them: a limit from
    ``max`` when no ``default``; a request from ``default``, else from ``min``."""
    limits = {k: str(v) for k, v in item.default.items()}
    for k, v in item.max.items():
        limits.setdefault(k, str(v))
    requests = {k: str(v) for k, v in item.default_request.items()}
    for k, v in limits.items():
        requests.setdefault(k, v)
    for k, v in item.min.items():
        requests.setdefault(k, str(v))
    return limits, requests


def _plain(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in values.items()}


def defaulted(
    resources: pm.ResourceRequirements, items: Sequence[LimitRangeItem]
) -> pm.ResourceRequirements:
    """A container's resources with the LimitRanges' defaults for what it does not set: first
    Kubernetes' own rule (a limit without a request makes the request), then each default."""
    limits = _plain(resources.limits)
    requests = {**{k: v for k, v in limits.items() if k in ("cpu", "memory")},
                **_plain(resources.requests)}  # fmt: skip
    for item in items:
        default_limits, default_requests = _item_defaults(item)
        for k, v in default_limits.items():
            if k in ("cpu", "memory"):
                limits.setdefault(k, v)
        for k, v in default_requests.items():
            if k in ("cpu", "memory"):
                requests.setdefault(k, v)
    if limits == resources.limits and requests == resources.requests:
        return resources
    return pm.ResourceRequirements.model_validate({"limits": limits, "requests": requests})


def bounds_problems(
    resources: pm.ResourceRequirements, item: LimitRangeItem, where: str
) -> Iterator[tuple[str, str]]:
    """(field, message) for each bound a container's (defaulted) resources break, in the
    LimitRanger's words."""
    limits, requests = _plain(resources.limits), _plain(resources.requests)
    yield from _outside(requests, item.min, True, where)
    yield from _outside(limits, item.max, False, where)
    for k, ratio in item.max_limit_request_ratio.items():
        if k in limits and k in requests and parse_quantity(requests[k]) > 0:
            found = parse_quantity(limits[k]) / parse_quantity(requests[k])
            if found > parse_quantity(ratio):
                yield (f"resources.limits.{k}", f"{k} max limit to request ratio per Container "
                       f"is {ratio}, but provided ratio is {found:f} ({where})")  # fmt: skip


def _outside(
    values: Mapping[str, Any], bounds: Mapping[str, Any], low: bool, where: str,
    per: str = "Container", what: str = "",
) -> Iterator[tuple[str, str]]:  # fmt: skip
    """Requests under ``min`` (``low``), or limits over ``max``, or none given against one;
    ``what`` is what is compared ("request" or "limit", by default as ``low`` says)."""
    word = "minimum" if low else "maximum"
    what = what or ("request" if low else "limit")
    for k, bound in bounds.items():
        field = f"resources.{what}s.{k}"
        if k not in values:
            yield field, (f"{word} {k} usage per {per} is {bound}.  No {what} is "
                          f"specified ({where})")  # fmt: skip
            continue
        given, edge = parse_quantity(values[k]), parse_quantity(bound)
        if (given < edge) if low else (given > edge):
            yield field, (f"{word} {k} usage per {per} is {bound}, but {what} is "
                          f"{values[k]} ({where})")  # fmt: skip


def check_workload(entry: Entry[m.Workload], manifests: Manifests, issue: Issue) -> None:
    """Every container of a workload, and its pod's sum, against its namespace's
    LimitRanges."""
    items = container_items(manifests, entry.namespace)
    pods = container_items(manifests, entry.namespace, "Pod")
    if not items and not pods:
        return
    pod = entry.resource.spec.template.spec
    base = "spec.jobTemplate.spec.template.spec" if isinstance(entry.resource, m.CronJob) else (
        "spec.template.spec")  # fmt: skip
    plain = [item.resource.spec.limits[i] for item, i in items]
    summed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for group, containers in (("containers", pod.containers),
                              ("initContainers", pod.init_containers)):  # fmt: skip
        for n, c in enumerate(containers):
            resources = defaulted(c.resources, plain)
            if group == "containers":
                for part in ("limits", "requests"):
                    for k, v in _plain(getattr(resources, part)).items():
                        summed[part][k] = summed[part].get(k, Decimal(0)) + parse_quantity(v)
            for (range_entry, _), item in zip(items, plain, strict=True):
                for fld, message in bounds_problems(resources, item, _where(range_entry)):
                    issue(f"{base}.{group}[{n}].{fld}", message)
    for range_entry, i in pods:  # the pod's containers together
        item = range_entry.resource.spec.limits[i]
        where = _where(range_entry)
        problems = [
            *_outside(summed["requests"], item.min, True, where, "Pod"),
            *_outside(summed["limits"], item.max, False, where, "Pod"),
        ]
        for fld, message in problems:
            issue(f"{base}.containers", f"{fld}: {message}")


def check_claim_size(entry: Entry[m.PersistentVolumeClaim], manifests: Manifests,
                     issue: Issue) -> None:  # fmt: skip
    """A claim's storage against its namespace's LimitRanges of type PersistentVolumeClaim."""
    asked = _plain(entry.resource.spec.resources.requests)
    per = "PersistentVolumeClaim"
    for range_entry, i in container_items(manifests, entry.namespace, per):
        item = range_entry.resource.spec.limits[i]
        where = _where(range_entry)
        for fld, message in (*_outside(asked, item.min, True, where, per),
                             *_outside(asked, item.max, False, where, per, "request")):  # fmt: skip
            issue(f"spec.resources.requests.{fld.rpartition('.')[2]}", message)


def _where(entry: Entry[LimitRange]) -> str:
    return f"LimitRange {entry.name}, {entry.path}:{entry.doc}"


def check_limit_range(entry: Entry[LimitRange], issue: Issue) -> None:
    for i, item in enumerate(entry.resource.spec.limits):
        for k, low in item.min.items():
            high = item.max.get(k)
            if high is not None and parse_quantity(low) > parse_quantity(high):
                issue(f"spec.limits[{i}].min.{k}", f"must be at most max ({high})")
        for name, given in (("default", item.default), ("defaultRequest", item.default_request)):
            for k, v in given.items():
                top, bottom = item.max.get(k), item.min.get(k)
                if top is not None and parse_quantity(v) > parse_quantity(top):
                    issue(f"spec.limits[{i}].{name}.{k}", f"must be at most max ({top})")
                if bottom is not None and parse_quantity(v) < parse_quantity(bottom):
                    issue(f"spec.limits[{i}].{name}.{k}", f"must be at least min ({bottom})")


# -- ResourceQuota --------------------------------------------------------------------------
def check_quota(entry: Entry[ResourceQuota], manifests: Manifests, issue: Issue) -> None:
    """A quota's keys and scopes, and the commit's objects against its counts."""
    spec = entry.resource.spec
    for k in spec.hard:
        key = ALIASES.get(k, k)
        if key not in (*COMPUTE, *COUNTED, *COUNT_KINDS, STORAGE):
            issue(f"spec.hard.{k}", f"gitops counts {', '.join((*COMPUTE, STORAGE))}, "
                  f"{', '.join(COUNTED)} and count/<resource>.<group> of the kinds it runs, "
                  f"not {k[:63]!r}")  # fmt: skip
    for i, scope in enumerate(spec.scopes):
        if scope not in SCOPES:
            issue(f"spec.scopes[{i}]", f"gitops knows the scopes {' and '.join(SCOPES)} (a pod "
                  f"with no requests or limits is BestEffort), not {scope[:63]!r}")  # fmt: skip
    if spec.scopes:
        return  # a scoped quota counts pods only (Kubernetes: BestEffort tracks pods)
    hard = entry.resource.hard()
    for key, limit in hard.items():
        found = list(counted(manifests, entry.namespace, key))
        used = sum((n for _, n in found), Decimal(0))
        if used > limit:
            over = found[-1][0]
            issue(f"spec.hard.{_shown_key(entry, key)}", (
                f"exceeded quota: {entry.name}, requested: {key}={used:f}, used: {key}=0, "
                f"limited: {key}={limit:f}: the commit has {_listed(found, key)} in namespace "
                f"{entry.namespace} ({over.resource.kind} {over.name}, {over.path}:{over.doc})"
            ))  # fmt: skip


def _shown_key(entry: Entry[ResourceQuota], key: str) -> str:
    """The key as the manifest writes it (``cpu`` for ``requests.cpu``)."""
    return next((k for k in entry.resource.spec.hard if ALIASES.get(k, k) == key), key)


def _listed(found: Sequence[tuple[Entry[m.Resource], Decimal]], key: str) -> str:
    if key == STORAGE:
        return f"{sum((n for _, n in found), Decimal(0)):f} bytes of claims"
    names = ", ".join(e.name for e, _ in found[:5]) + (", ..." if len(found) > 5 else "")
    return f"{len(found)} ({names})"


CLAIMS = ("persistentvolumeclaims", "count/persistentvolumeclaims", STORAGE)


def counted(
    manifests: Manifests, namespace: str, key: str
) -> Iterator[tuple[Entry[m.Resource], Decimal]]:
    """Each object of the commit a quota key counts, and how much: one each, or a claim's
    storage; a StatefulSet counts the claims its templates make for its replicas."""
    kind = COUNTED.get(key) or COUNT_KINDS.get(key) or (
        "PersistentVolumeClaim" if key == STORAGE else "")  # fmt: skip
    if not kind:
        return
    for e in manifests.entries:
        res = e.resource
        if e.namespace != namespace:
            continue
        if key in CLAIMS and isinstance(res, m.StatefulSet) and res.spec.volume_claim_templates:
            templates = res.spec.volume_claim_templates
            if key == STORAGE:
                size = sum((_size(t.spec) for t in templates), Decimal(0))
                yield e, size * res.spec.replicas
            else:
                yield e, Decimal(len(templates) * res.spec.replicas)
            continue
        if res.kind != kind or (key == "services.nodeports" and not _node_ports(res)):
            continue
        if key == STORAGE:
            yield e, _size(res.spec) if isinstance(res, m.PersistentVolumeClaim) else Decimal(0)
        else:
            yield e, Decimal(1)


def _node_ports(res: m.Resource) -> bool:
    return isinstance(res, m.Service) and res.spec.type in ("NodePort", "LoadBalancer")


def _size(spec: m.PersistentVolumeClaimSpec) -> Decimal:
    requested = spec.resources.requests
    return parse_quantity(requested["storage"]) if "storage" in requested else Decimal(0)
