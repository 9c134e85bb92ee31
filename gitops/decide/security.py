"""A container's effective security context: the pod's ``securityContext`` with the
container's winning, as the kubelet merges them (``DetermineEffectiveSecurityContext``).

Pure. In: the two manifest models. Out: a ``Security`` value the node adapter turns into the
engine's user, groups, capabilities and security options, or None when neither says anything
(so pods without a security context keep their template hash).
"""

from __future__ import annotations

from gitops.manifests.security import (
    AppArmorProfile,
    PodSecurityContext,
    SeccompProfile,
    SecurityContext,
)
from gitops.model.templates import Security


def _seccomp(profile: SeccompProfile | None) -> str:
    return "unconfined" if profile is not None and profile.type == "Unconfined" else ""


def _apparmor(profile: AppArmorProfile | None) -> str:
    if profile is None or profile.type == "RuntimeDefault":
        return ""
    if profile.type == "Unconfined":
        return "unconfined"
    return profile.localhost_profile or ""  # Localhost: a profile loaded on the node


def effective(pod: PodSecurityContext | None, container: SecurityContext | None) -> Security | None:
    if pod is None and container is None:
        return None
    p = pod or PodSecurityContext()
    c = container or SecurityContext()

    # The container's own setting wins, field by field.
    user = c.run_as_user if c.run_as_user is not None else p.run_as_user
    group = c.run_as_group if c.run_as_group is not None else p.run_as_group
    non_root = c.run_as_non_root if c.run_as_non_root is not None else p.run_as_non_root
    seccomp = c.seccomp_profile or p.seccomp_profile
    apparmor = c.app_armor_profile or p.app_armor_profile
    selinux = c.se_linux_options or p.se_linux_options
    labels = tuple(
        f"{key}:{value}"
        for key in ("user", "role", "type", "level")
        if selinux is not None and (value := getattr(selinux, key))
    )
    fs_group = [p.fs_group] if p.fs_group is not None else []
    groups = tuple(dict.fromkeys([*fs_group, *p.supplemental_groups]))
    caps = c.capabilities
    return Security(
        user=user,
        group=group,
        non_root=bool(non_root),
        groups=groups,
        fs_group=p.fs_group,
        read_only_root=bool(c.read_only_root_filesystem),
        no_new_privileges=c.allow_privilege_escalation is False,
        privileged=bool(c.privileged),
        cap_add=tuple(cap.upper() for cap in caps.add) if caps else (),
        cap_drop=tuple(cap.upper() for cap in caps.drop) if caps else (),
        seccomp=_seccomp(seccomp),
        apparmor=_apparmor(apparmor),
        selinux=labels,
        unmasked_proc=c.proc_mount == "Unmasked",
    )
