"""securityContext on plain data: the kubelet's merge of pod and container, what a Docker
engine is asked for, the kubelet's runAsNonRoot check, and what is refused at commit time."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.decide.desired import build_desired
from gitops.decide.schedule import NO_PRIVILEGED, NodeView, Scheduler, Unschedulable
from gitops.decide.security import effective
from gitops.errors import ManifestError
from gitops.manifests import Policy, parse_manifests
from gitops.manifests.security import PodSecurityContext, SecurityContext
from gitops.model.templates import Security
from gitops.nodes.security import engine_user, file_owner, host_options, non_root_problem
from tests.helpers import deployment, dump


def test_the_container_wins_field_by_field_and_pod_groups_apply() -> None:
    pod = PodSecurityContext.model_validate(
        {
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "runAsNonRoot": True,
            "fsGroup": 2000,
            "supplementalGroups": [4000, 2000],
            "seccompProfile": {"type": "Unconfined"},
        }
    )
    container = SecurityContext.model_validate(
        {
            "runAsGroup": 3000,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            "seccompProfile": {"type": "RuntimeDefault"},
            "seLinuxOptions": {"level": "s0:c123,c456"},
        }
    )
    sec = effective(pod, container)
    assert sec == Security(
        user=1000,
        group=3000,
        non_root=True,
        groups=(2000, 4000),
        fs_group=2000,
        no_new_privileges=True,
        cap_add=("NET_BIND_SERVICE",),
        cap_drop=("ALL",),
        selinux=("level:s0:c123,c456",),
    )
    assert effective(None, None) is None
    assert effective(pod, None) is not None and effective(pod, None).seccomp == "unconfined"  # type: ignore[union-attr]


def test_what_the_engine_is_asked_for() -> None:
    sec = Security(
        user=1000,
        group=3000,
        groups=(2000,),
        read_only_root=True,
        no_new_privileges=True,
        cap_add=("NET_ADMIN",),
        cap_drop=("ALL",),
        seccomp="unconfined",
        apparmor="unconfined",
        unmasked_proc=True,
    )
    assert engine_user(sec, "") == "1000:3000"
    assert engine_user(Security(group=5), "nobody:nogroup") == "nobody:5"
    assert engine_user(Security(group=5), "") == "0:5"
    assert engine_user(Security(non_root=True), "") is None
    assert host_options(sec) == {
        "security_opt": [
            "no-new-privileges:true",
            "seccomp=unconfined",
            "apparmor=unconfined",
            "systempaths=unconfined",
        ],
        "read_only": True,
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["ALL"],
        "group_add": ["2000"],
    }
    assert host_options(None) == {}
    assert file_owner(Security(fs_group=2000), 0o400) == (2000, 0o440)
    assert file_owner(None, 0o400) == (0, 0o400)


@pytest.mark.parametrize(
    ("sec", "image_user", "problem"),
    [
        (Security(non_root=True), "", "container has runAsNonRoot and image will run as root"),
        (Security(non_root=True), "root", "container has runAsNonRoot and image will run as root"),
        (Security(non_root=True), "0:0", "container has runAsNonRoot and image will run as root"),
        (
            Security(non_root=True),
            "nobody",
            "container has runAsNonRoot and image has non-numeric user (nobody), cannot verify "
            "user is non-root",
        ),
        (Security(non_root=True), "65534", None),
        (Security(non_root=True, user=1000), "", None),
        (Security(non_root=True, user=0), "65534", "container's runAsUser breaks non-root policy"),
        (Security(), "", None),
    ],
)
def test_run_as_non_root_as_the_kubelet_checks_it(
    sec: Security, image_user: str, problem: str | None
) -> None:
    assert non_root_problem(sec, image_user) == problem


def _with(pod: dict[str, Any] | None = None, container: dict[str, Any] | None = None) -> bytes:
    return dump(deployment(namespace="demo", pod=pod or {}, container=container or {}))


def test_privileged_is_refused_unless_a_node_allows_it_and_goes_only_there() -> None:
    files = {"d.yaml": _with(container={"securityContext": {"privileged": True}})}
    with pytest.raises(ManifestError) as info:
        parse_manifests(files)
    [error] = [str(e) for e in info.value.errors]
    assert "containers[0].securityContext.privileged: privileged containers are refused" in error
    assert "allowPrivileged: true" in error
    desired = build_desired(parse_manifests(files, policy=Policy(allow_privileged=True)), "c")
    template = desired.deployments[0].template
    assert template.privileged
    scheduler = Scheduler([NodeView("a"), NodeView("b", allow_privileged=True)])
    assert scheduler.place(template, {}) == "b"
    only_a = Scheduler([NodeView("a")]).place(template, {})
    assert isinstance(only_a, Unschedulable) and NO_PRIVILEGED in only_a.reason


def test_what_a_docker_host_cannot_do_is_refused_with_why() -> None:
    files = {
        "d.yaml": _with(
            pod={"securityContext": {"runAsNonRoot": True, "runAsUser": 0}},
            container={
                "securityContext": {
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}
                }
            },
        )
    }
    with pytest.raises(ManifestError) as info:
        parse_manifests(files)
    errors = [str(e) for e in info.value.errors]
    assert any(
        "spec.template.spec.securityContext: runAsNonRoot is true but runAsUser is 0" in e
        for e in errors
    )
    assert any(
        "seccompProfile.type: Localhost profiles are files on a kubelet's node" in e for e in errors
    )


def test_a_security_context_changes_the_hash_and_none_keeps_it() -> None:
    plain = build_desired(parse_manifests({"d.yaml": _with()}), "c").deployments[0].template
    hardened = (
        build_desired(
            parse_manifests({"d.yaml": _with(container={"securityContext": {"runAsUser": 1}})}), "c"
        )
        .deployments[0]
        .template
    )
    assert plain.template_hash != hardened.template_hash
    assert plain.containers[0].security is None
    # The hash of a template without the fields added for security is what it was before.
    assert plain.template_hash == "8c96e8e271"
