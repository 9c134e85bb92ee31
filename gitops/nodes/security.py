"""What a container's effective security context becomes on a Docker engine: its user, its
groups, its capabilities and its security options, and the kubelet's checks before it starts.

Pure (no Docker library): ``gitops.nodes.docker`` passes the results to the engine. The image's
own user (``Config.User``) is an input, because ``runAsNonRoot`` and a ``runAsGroup`` without a
``runAsUser`` depend on it, as they do on the kubelet.
"""

from __future__ import annotations

from typing import Any

from gitops.model.templates import Security


def _user_part(image_user: str) -> str:
    return image_user.split(":", 1)[0]


def engine_user(sec: Security | None, image_user: str) -> str | None:
    """Docker's ``user`` (``uid[:gid]``), or None to keep the image's."""
    if sec is None or (sec.user is None and sec.group is None):
        return None
    user = str(sec.user) if sec.user is not None else (_user_part(image_user) or "0")
    return f"{user}:{sec.group}" if sec.group is not None else user


def non_root_problem(sec: Security | None, image_user: str) -> str | None:
    """Why the kubelet would refuse to start the container under ``runAsNonRoot``, in its
    words (``CreateContainerConfigError``), or None."""
    if sec is None or not sec.non_root:
        return None
    if sec.user is not None:
        return "container's runAsUser breaks non-root policy" if sec.user == 0 else None
    user = _user_part(image_user)
    if user in ("", "root"):
        return "container has runAsNonRoot and image will run as root"
    if not user.isdigit():
        return (
            f"container has runAsNonRoot and image has non-numeric user ({user[:32]}), "
            "cannot verify user is non-root"
        )
    if int(user) == 0:
        return "container has runAsNonRoot and image will run as root"
    return None


def host_options(sec: Security | None) -> dict[str, Any]:
    """The host-config arguments of the Docker SDK's ``create_host_config``."""
    if sec is None:
        return {}
    opts: list[str] = []
    if sec.no_new_privileges:
        opts.append("no-new-privileges:true")
    if sec.seccomp:
        opts.append(f"seccomp={sec.seccomp}")
    if sec.apparmor:
        opts.append(f"apparmor={sec.apparmor}")
    opts += [f"label={label}" for label in sec.selinux]
    if sec.unmasked_proc:
        opts.append("systempaths=unconfined")
    out: dict[str, Any] = {}
    if opts:
        out["security_opt"] = opts
    if sec.read_only_root:
        out["read_only"] = True
    if sec.privileged:
        out["privileged"] = True
    if sec.cap_add:
        out["cap_add"] = list(sec.cap_add)
    if sec.cap_drop:
        out["cap_drop"] = list(sec.cap_drop)
    if sec.groups:
        out["group_add"] = [str(g) for g in sec.groups]
    return out


def file_owner(sec: Security | None, mode: int) -> tuple[int, int]:
    """(group, mode) of a projected ConfigMap or Secret file: with an ``fsGroup`` the file
    belongs to it and its group may read it, as the kubelet sets a read-only volume's files."""
    if sec is None or sec.fs_group is None:
        return 0, mode
    return sec.fs_group, mode | 0o440
