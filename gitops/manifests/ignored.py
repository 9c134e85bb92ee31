"""Fields gitops accepts but cannot honour on a Docker host: each one a warning, never silence.

Stage: manifests, after validation. In: validated ``Manifests``. Out: one ``FieldError`` per
ignored field of each resource, worded as a warning: what is ignored and why. ``gitops
validate`` prints them, status lists them, and the reconciler logs them once per commit, as
``kubectl apply`` prints the API server's warnings. A field gitops honours is never here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gitops.errors import FieldError
from gitops.manifests import model as m
from gitops.manifests import pod as pm
from gitops.manifests.entries import Entry, Manifests

_NO_API = "a Docker host has no Kubernetes API server"
_POD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("service_account_name", "serviceAccountName", f"ignored: {_NO_API}, so no service accounts"),
    ("service_account", "serviceAccount", f"ignored: {_NO_API}, so no service accounts"),
    (
        "automount_service_account_token",
        "automountServiceAccountToken",
        f"ignored: {_NO_API}, so no token is mounted",
    ),
    (
        "enable_service_links",
        "enableServiceLinks",
        "ignored: gitops sets no {SVC}_SERVICE_HOST variables; Services resolve by name",
    ),
    ("priority_class_name", "priorityClassName", "ignored: gitops does not preempt pods"),
    ("priority", "priority", "ignored: gitops does not preempt pods"),
    ("preemption_policy", "preemptionPolicy", "ignored: gitops does not preempt pods"),
    ("runtime_class_name", "runtimeClassName", "ignored: pods run on the node's Docker runtime"),
    ("scheduler_name", "schedulerName", "ignored: gitops schedules every pod itself"),
)
_CONTAINER_FIELDS: tuple[tuple[str, str, str], ...] = (
    (
        "termination_message_path",
        "terminationMessagePath",
        "ignored: the reason a container ended comes from its exit code and its logs",
    ),
    (
        "termination_message_policy",
        "terminationMessagePolicy",
        "ignored: the reason a container ended comes from its exit code and its logs",
    ),
)
_META_FIELDS: tuple[tuple[str, str], ...] = (
    ("creation_timestamp", "creationTimestamp"),
    ("uid", "uid"),
    ("resource_version", "resourceVersion"),
    ("generation", "generation"),
    ("self_link", "selfLink"),
    ("managed_fields", "managedFields"),
    ("owner_references", "ownerReferences"),
    ("finalizers", "finalizers"),
)


def warnings(manifests: Manifests) -> tuple[FieldError, ...]:
    out: list[FieldError] = []
    for entry in manifests.entries:
        out.extend(
            FieldError(entry.path, entry.doc, entry.display, fld, message)
            for fld, message in _of(entry)
        )
    return tuple(out)


def _of(entry: Entry[Any]) -> Iterator[tuple[str, str]]:
    res = entry.resource
    meta = res.metadata
    if meta.generate_name is not None:
        yield "metadata.generateName", "ignored: the resource is named by metadata.name"
    for attr, camel in _META_FIELDS:
        if getattr(meta, attr) is not None:
            yield f"metadata.{camel}", "ignored: set by a Kubernetes API server, not by git"
    if res.status:
        yield "status", "ignored: status is observed by gitops, not read from git"
    if isinstance(res, m.WORKLOADS):
        where = "spec.jobTemplate.spec.template" if isinstance(res, m.CronJob) else "spec.template"
        yield from _template(res.spec.template, where)
    if isinstance(res, m.Service):
        yield from _service(res.spec)
    if isinstance(res, m.PersistentVolumeClaim):
        yield from _claim(res.spec)
    if isinstance(res, m.StatefulSet):
        for i, t in enumerate(res.spec.volume_claim_templates):
            for field, why in _claim(t.spec):
                yield f"spec.volumeClaimTemplates[{i}].{field}", why
    if isinstance(res, m.PodDisruptionBudget) and res.spec.selector is None:
        yield "spec.selector", "absent: the budget selects no pod (policy/v1), so it limits nothing"


def _claim(spec: m.PersistentVolumeClaimSpec) -> Iterator[tuple[str, str]]:
    for attr, camel in (("volume_name", "volumeName"), ("selector", "selector"),
                        ("volume_attributes_class_name", "volumeAttributesClassName")):  # fmt: skip
        if getattr(spec, attr) is not None:
            yield (
                f"spec.{camel}",
                "ignored: the claim is a Docker volume gitops makes, no PersistentVolume",
            )
    if (spec.storage_class_name or "local") == "local" and "storage" in spec.resources.requests:
        yield (
            "spec.resources.requests.storage",
            "recorded and shown, not enforced: Docker's local volume driver has no size limit",
        )


def _service(spec: m.ServiceSpec) -> Iterator[tuple[str, str]]:
    if spec.cluster_ip == "None":
        yield (
            "spec.clusterIP",
            "headless: the name resolves to the ready pods it selects (all, with "
            "publishNotReadyAddresses) on the asking pod's node only, as each node's pods share "
            "only that node's network; with clusterDNS off, or an engine on another machine, "
            "to every running pod it selects there, ready or not",
        )
    if spec.external_traffic_policy == "Local":
        yield (
            "spec.externalTrafficPolicy",
            "ignored: a node's proxy balances over the ready pods of every node",
        )
    if spec.internal_traffic_policy == "Local":
        yield (
            "spec.internalTrafficPolicy",
            "ignored: a Service's name balances over the ready pods of every node",
        )
    if spec.ip_family_policy == "PreferDualStack":
        yield "spec.ipFamilyPolicy", "IPv4 only: Docker's pod networks here are IPv4"


_POD_SECURITY = (
    ("windows_options", "windowsOptions", "ignored: gitops nodes run Linux containers"),
    (
        "fs_group_change_policy",
        "fsGroupChangePolicy",
        "ignored: gitops sets a projected file's group as it writes it",
    ),
    (
        "supplemental_groups_policy",
        "supplementalGroupsPolicy",
        "ignored: Docker always merges the groups of the image's /etc/group",
    ),
    (
        "se_linux_change_policy",
        "seLinuxChangePolicy",
        "ignored: Docker labels a container's volumes itself",
    ),
)


def _template(template: pm.PodTemplateSpec, path: str) -> Iterator[tuple[str, str]]:
    if template.metadata.name is not None:
        yield f"{path}.metadata.name", "ignored: pods are named after their workload"
    pod = template.spec
    for attr, camel, message in _POD_FIELDS:
        if getattr(pod, attr) is not None:
            yield f"{path}.spec.{camel}", message
    if pod.dns_policy in ("Default", "None"):
        yield (
            f"{path}.spec.dnsPolicy",
            "partly honoured: Docker's embedded DNS stays the pod's resolver (so Services "
            "resolve by name) and forwards to dnsConfig.nameservers, or to the node's",
        )
    for i, tol in enumerate(pod.tolerations):
        if tol.toleration_seconds is not None:
            yield (
                f"{path}.spec.tolerations[{i}].tolerationSeconds",
                "ignored: a NoExecute taint it tolerates is tolerated for good (gitops does not "
                "time how long a node has had a taint)",
            )
    for i, vol in enumerate(pod.volumes):
        if (
            vol.empty_dir
            and vol.empty_dir.size_limit is not None
            and vol.empty_dir.medium != "Memory"
        ):
            yield (
                f"{path}.spec.volumes[{i}].emptyDir.sizeLimit",
                "not enforced on disk: a Docker local volume has no size limit (it is, with "
                "medium: Memory)",
            )
    if pod.security_context is not None:
        for attr, camel, message in _POD_SECURITY:
            if getattr(pod.security_context, attr) is not None:
                yield f"{path}.spec.securityContext.{camel}", message
    groups = (("initContainers", pod.init_containers), ("containers", pod.containers))
    for group, containers in groups:
        for i, c in enumerate(containers):
            for attr, camel, message in _CONTAINER_FIELDS:
                if getattr(c, attr) is not None:
                    yield f"{path}.spec.{group}[{i}].{camel}", message
            yield from _handlers(c, f"{path}.spec.{group}[{i}]")
            if c.security_context is not None and c.security_context.windows_options:
                yield (
                    f"{path}.spec.{group}[{i}].securityContext.windowsOptions",
                    "ignored: gitops nodes run Linux containers",
                )


def _handlers(c: pm.Container, path: str) -> Iterator[tuple[str, str]]:
    """Probe and hook fields gitops accepts but does not carry out yet."""
    for kind in ("readiness_probe", "liveness_probe", "startup_probe"):
        probe = getattr(c, kind)
        camel = pm.Container.model_fields[kind].alias or kind
        if probe is not None and probe.http_get is not None and probe.http_get.host:
            yield (
                f"{path}.{camel}.httpGet.host",
                "ignored: the probe goes to the pod's address, as without a host",
            )
