"""Checks of what a pod keeps on disk: its volumes (one source each), their mounts
(``subPath``, ``subPathExpr``), and the PersistentVolumeClaims they name.

Stage: manifests, called by ``gitops.manifests.checks``. Pure. What a Docker host cannot do is
refused with the reason; what this installation's configuration does not allow names the
setting that would (``hostPaths``, ``storageClasses``).
"""

from __future__ import annotations

import posixpath
import re

from gitops.manifests import model as m
from gitops.manifests import pod as pm
from gitops.manifests.entries import Entry, Issue, Manifests, Policy
from gitops.manifests.quantity import parse_quantity

EXPR_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")  # in subPathExpr


def host_path_allowed(path: str, allowed: tuple[str, ...]) -> bool:
    """``path`` is one of ``allowed`` or below one (after normalising, so ``..`` cannot
    climb out)."""
    norm = posixpath.normpath(path)
    return any(norm == a or norm.startswith(a.rstrip("/") + "/") for a in allowed)


def check_volume(
    vol: pm.Volume, path: str, manifests: Manifests, namespace: str, policy: Policy, issue: Issue
) -> None:
    if sum(getattr(vol, n) is not None for n in pm.VOLUME_SOURCES) != 1:
        issue(
            path,
            "must specify exactly one of emptyDir, configMap, secret, persistentVolumeClaim, "
            "hostPath",
        )
    claim = vol.persistent_volume_claim
    if (
        claim is not None
        and manifests.get(m.PersistentVolumeClaim, namespace, claim.claim_name) is None
    ):
        issue(
            f"{path}.persistentVolumeClaim.claimName",
            f"PersistentVolumeClaim {claim.claim_name!r} not found in namespace {namespace!r}",
        )
    host = vol.host_path
    if host is not None:
        where = f"{path}.hostPath.path"
        if not host.path.startswith("/"):
            issue(where, "must be an absolute path")
        elif not host_path_allowed(host.path, policy.host_paths):
            allowed = ", ".join(policy.host_paths) or "none"
            issue(
                where,
                f"{host.path!r} is not under a path a node allows (hostPaths in the node "
                f"configuration; allowed now: {allowed})",
            )
        if host.type in ("Socket", "CharDevice", "BlockDevice"):
            issue(
                f"{path}.hostPath.type",
                f"{host.type} is not supported: gitops binds files and directories",
            )


def check_mount(vm: pm.VolumeMount, path: str, env: set[str], issue: Issue) -> None:
    if vm.sub_path is not None and vm.sub_path_expr is not None:
        issue(f"{path}.subPathExpr", "subPath and subPathExpr are mutually exclusive")
    for field, value in (("subPath", vm.sub_path), ("subPathExpr", vm.sub_path_expr)):
        if not value:
            continue
        if value.startswith("/"):
            issue(f"{path}.{field}", "must be a relative path")
        elif ".." in value.split("/"):
            issue(f"{path}.{field}", "must not contain '..'")
    for name in EXPR_VAR.findall(vm.sub_path_expr or ""):
        if name not in env:
            issue(
                f"{path}.subPathExpr", f"$({name}) is not an environment variable of the container"
            )


def check_claim(entry: Entry[m.PersistentVolumeClaim], policy: Policy, issue: Issue) -> None:
    check_claim_spec(entry.resource.spec, policy, issue)


def check_claim_spec(spec: m.PersistentVolumeClaimSpec, policy: Policy, issue: Issue) -> None:
    """A claim's or a StatefulSet's claim template's spec."""
    classes = dict(policy.storage_classes)
    name = spec.storage_class_name or "local"
    known = ", ".join(sorted(classes))
    if name not in classes:
        issue(
            "spec.storageClassName",
            f"no storage class {name!r}: storageClasses in the configuration names the Docker "
            f"volume drivers (known: {known})",
        )
    shared = classes.get(name, False)
    for i, mode in enumerate(spec.access_modes):
        if mode in ("ReadWriteMany", "ReadOnlyMany") and not shared:
            issue(
                f"spec.accessModes[{i}]",
                f"{mode} needs a volume every node reaches: storage class {name!r} is one node's "
                "(give a class a shared volume driver, shared: true, in storageClasses)",
            )
    if spec.volume_mode == "Block":
        issue("spec.volumeMode", "Block is not supported: a Docker volume is a filesystem")
    for field, value in (("dataSource", spec.data_source), ("dataSourceRef", spec.data_source_ref)):
        if value is not None:
            issue(f"spec.{field}", "not supported: gitops makes claims empty, it copies no volume")
    size = spec.resources.requests.get("storage")
    if size is None:
        issue("spec.resources.requests.storage", "required")
    elif parse_quantity(size) <= 0:
        issue("spec.resources.requests.storage", "must be greater than 0")
