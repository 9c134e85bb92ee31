"""``securityContext``, of a pod and of a container: who a process runs as, and what it may do.

Stage: manifests. Shapes and single-field rules only; the container's settings win over the
pod's (``gitops.decide.security`` merges them, as the kubelet does), and the node adapter turns
the result into the engine's user, groups, capabilities and security options.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from gitops.manifests.fields import NonNegative64, Spec

_CAPABILITY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # any case, as the runtimes take it
_SYSCTL = re.compile(r"([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?")


def _capability(value: str) -> str:
    if not _CAPABILITY.fullmatch(value):
        raise ValueError("a capability is a name such as NET_ADMIN (or ALL)")
    return value


def _sysctl(value: str) -> str:
    if len(value) > 253 or not _SYSCTL.fullmatch(value):
        raise ValueError("a sysctl name is dot- or slash-separated lower case words")
    return value


Capability = Annotated[str, AfterValidator(_capability)]


class Capabilities(Spec):
    add: list[Capability] = Field(default_factory=list)
    drop: list[Capability] = Field(default_factory=list)


class SeccompProfile(Spec):
    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    localhost_profile: str | None = None


class AppArmorProfile(Spec):
    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    localhost_profile: str | None = None


class SELinuxOptions(Spec):
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class Sysctl(Spec):
    name: Annotated[str, AfterValidator(_sysctl)]
    value: str


class _Identity(Spec):
    """What a pod's and a container's securityContext share; the container's wins."""

    run_as_user: NonNegative64 | None = None
    run_as_group: NonNegative64 | None = None
    run_as_non_root: bool | None = None
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None
    se_linux_options: SELinuxOptions | None = Field(default=None, alias="seLinuxOptions")
    windows_options: dict[str, Any] | None = None


class SecurityContext(_Identity):
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None
    proc_mount: Literal["Default", "Unmasked"] | None = None


class PodSecurityContext(_Identity):
    fs_group: NonNegative64 | None = None
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = None
    supplemental_groups: list[NonNegative64] = Field(default_factory=list)
    supplemental_groups_policy: Literal["Merge", "Strict"] | None = None
    sysctls: list[Sysctl] = Field(default_factory=list)
    se_linux_change_policy: Literal["MountOption", "Recursive"] | None = None
