"""What gitops does with each kind a document names: run it, skip it (and say why), or refuse it.

Stage: manifests, before any model is built. Kubernetes' catalogue of kinds comes from its own
schemas (``gitops.manifests.schemas``); what gitops runs comes from ``gitops.manifests.model``.
A kind Kubernetes has but gitops does not run is *Skipped*, as Argo CD lists a resource it
does not manage, never an error: a repository written for Kubernetes carries RBAC, service
accounts and policies that mean nothing on a Docker host. A kind Kubernetes does not have is an
error, with "did you mean" for a near miss. A custom resource is an error unless its API group
is one the configuration says to skip.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from gitops.manifests import schemas

_NO_API_SERVER = "a Docker host has no Kubernetes API server"

# Kinds that mean nothing where there is no Kubernetes API server, kubelet or CNI.
MEANINGLESS: dict[str, str] = {
    "ServiceAccount": f"{_NO_API_SERVER}, so no service account tokens to mount",
    "Role": f"RBAC authorizes calls to an API server; {_NO_API_SERVER}",
    "ClusterRole": f"RBAC authorizes calls to an API server; {_NO_API_SERVER}",
    "RoleBinding": f"RBAC authorizes calls to an API server; {_NO_API_SERVER}",
    "ClusterRoleBinding": f"RBAC authorizes calls to an API server; {_NO_API_SERVER}",
    "NetworkPolicy": "gitops does not filter traffic between pods: a node's pods share its "
    "Docker bridge",
    "PriorityClass": "gitops does not preempt pods: a pod that does not fit stays Pending",
    "MutatingWebhookConfiguration": f"admission webhooks are called by an API server; "
    f"{_NO_API_SERVER}",
    "ValidatingWebhookConfiguration": f"admission webhooks are called by an API server; "
    f"{_NO_API_SERVER}",
    "ValidatingAdmissionPolicy": f"admission policies run in an API server; {_NO_API_SERVER}",
    "ValidatingAdmissionPolicyBinding": f"admission policies run in an API server; "
    f"{_NO_API_SERVER}",
    "MutatingAdmissionPolicy": f"admission policies run in an API server; {_NO_API_SERVER}",
    "MutatingAdmissionPolicyBinding": f"admission policies run in an API server; {_NO_API_SERVER}",
    "APIService": f"API aggregation extends an API server; {_NO_API_SERVER}",
    "CustomResourceDefinition": f"custom resources extend an API server; {_NO_API_SERVER}",
    "StorageClass": "volumes are Docker volumes of a node",
    "RuntimeClass": "every container runs on the node's Docker runtime",
    "FlowSchema": f"API priority and fairness is an API server's; {_NO_API_SERVER}",
    "PriorityLevelConfiguration": f"API priority and fairness is an API server's; {_NO_API_SERVER}",
    "Lease": "gitops elects no leaders through Kubernetes leases",
    "Endpoints": "gitops derives a Service's endpoints from its ready pods",
    "EndpointSlice": "gitops derives a Service's endpoints from its ready pods",
    "Event": "events are recorded by gitops, not applied from git",
}

# Kinds gitops will run but does not yet: accepted now so that a repository keeps working,
# shown as Skipped until they run.
NOT_YET: frozenset[str] = frozenset(
    {
        "PersistentVolume",
        "Pod",
    }
)


# Kubernetes' cluster-scoped kinds (no namespace), as ``kubectl api-resources --namespaced=false``.
CLUSTER_SCOPED: frozenset[str] = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
        "PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "IngressClass",
        "APIService", "CustomResourceDefinition", "StorageClass", "RuntimeClass", "FlowSchema",
        "PriorityLevelConfiguration", "CSIDriver", "CSINode", "VolumeAttachment",
        "CertificateSigningRequest", "ClusterTrustBundle", "DeviceClass", "IPAddress",
        "ServiceCIDR", "VolumeAttributesClass", "ComponentStatus",
    }
)  # fmt: skip


# Kinds whose names are path segments ("system:metrics-server"), not DNS subdomains.
PATH_SEGMENT_NAMED: frozenset[str] = frozenset(
    {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
)


@dataclass(frozen=True)
class Verdict:
    """``run``: gitops runs the kind; else ``skip`` (with ``reason``), or ``error``."""

    action: str  # "run" | "skip" | "error"
    reason: str = ""
    field: str = ""  # the field an error is about: kind or apiVersion


def group_of(api: str) -> str:
    return api.rpartition("/")[0]


def judge(
    kind: str,
    api: str,
    runs: Mapping[str, str],
    skip_groups: Collection[str] = (),
    also: Mapping[str, tuple[str, ...]] | None = None,
) -> Verdict:
    """The verdict on a document of ``kind`` as ``api``. ``runs`` maps each kind gitops runs to
    its apiVersion, ``also`` to older ones it reads as that one; ``skip_groups`` are
    custom-resource API groups to skip."""
    served = schemas.catalogue().get(kind)
    if kind in runs:
        read = (*(also or {}).get(kind, ()), runs[kind])
        if api in read:
            return Verdict("run")
        return Verdict("error", _wrong_api(kind, api, read), "apiVersion")
    group = group_of(api)
    if served is not None:
        if api not in served:
            return Verdict("error", _wrong_api(kind, api, served), "apiVersion")
        if kind in NOT_YET:
            return Verdict("skip", f"gitops does not run {kind} yet")
        return Verdict("skip", MEANINGLESS.get(kind, f"{kind} has no meaning on a Docker host"))
    if "." in group and not _builtin_group(group):
        if group in skip_groups:
            return Verdict("skip", f"custom resource of API group {group}, which is skipped")
        return Verdict(
            "error",
            f"{kind} ({_short(api)}) is a custom resource, which gitops cannot run; to skip it, "
            f"list {_short(group)!r} in skipApiGroups (--skip-api-group, GITOPS_SKIP_API_GROUP)",
            "apiVersion",
        )
    known = sorted({*schemas.catalogue(), *runs})
    near = difflib.get_close_matches(kind, known, n=1, cutoff=0.75)
    if not near:
        near = [k for k in known if k.lower() == kind.lower()]
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return Verdict("error", f"Kubernetes has no kind {_short(kind)!r}{hint}", "kind")


def _builtin_group(group: str) -> bool:
    """Kubernetes' own groups (``apps``, ``networking.k8s.io``), whose kinds are catalogued.
    Not every ``*.k8s.io`` group: the Gateway API's ``gateway.networking.k8s.io`` is custom."""
    return group in {group_of(api) for versions in schemas.catalogue().values() for api in versions}


def _wrong_api(kind: str, api: str, served: tuple[str, ...]) -> str:
    listed = " or ".join(repr(a) for a in served)
    return f"{kind} is served as {listed}, not {_short(api)!r}"


def _short(text: str) -> str:
    return text if len(text) <= 63 else text[:60] + "..."
