"""The GitOps loop end to end: real git (bare remote, push, revert) and a real dockerd."""

from __future__ import annotations

from typing import Any

import docker

from gitops.model.labels import L_COMMIT, L_POD
from tests.conftest import GitRemote, Images, containers_of, converge
from tests.helpers import config_map, deployment, namespace, secret

NS = "itest"


def web(images: Images, version: str = "v1", replicas: int = 3, **extra: Any) -> dict[str, Any]:
    container = {
        "env": [
            {"name": "MODE", "value": "test"},
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
            },
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "16Mi"},
            "limits": {"cpu": "500m", "memory": "64Mi"},
        },
        "volumeMounts": [{"name": "config", "mountPath": "/etc/config"}],
        **extra.pop("container", {}),
    }
    return deployment(
        namespace=NS,
        image=images[version],
        replicas=replicas,
        container=container,
        pod={"volumes": [{"name": "config", "configMap": {"name": "cfg"}}]},
        **extra,
    )


def base(remote: GitRemote, greeting: str = "hello") -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write(
        "config.yaml", config_map("cfg", NS, greeting=greeting), secret("creds", NS, token="s3cr3t")
    )


def running(engine: docker.DockerClient, instance: str) -> list[Any]:
    return [c for c in containers_of(engine, instance, infra=False) if c.status == "running"]


def deployed(remote: GitRemote, images: Images, make_reconciler: Any, replicas: int = 3) -> Any:
    """Push web v1 with its ConfigMap and Secret, and converge a reconciler on it."""
    base(remote)
    remote.write("web.yaml", web(images, replicas=replicas))
    remote.push("v1")
    rec = make_reconciler()
    converge(rec)
    return rec


def test_push_creates_containers_with_image_env_limits_and_replicas(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    base(remote)
    remote.write("web.yaml", web(images))
    sha = remote.push("deploy web v1")
    outcome = converge(make_reconciler())
    assert outcome.status.result == "Succeeded", outcome.status
    cs = running(engine, instance)
    assert len(cs) == 3
    for c in cs:
        c.reload()
        assert c.attrs["Config"]["Image"] == images["v1"]
        env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
        assert (env["MODE"], env["GREETING"], env["TOKEN"]) == ("test", "hello", "s3cr3t")
        host = c.attrs["HostConfig"]
        assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 2**20
        assert c.labels[L_COMMIT] == sha
    # projected ConfigMap file, read inside the pod
    out = cs[0].exec_run(["cat", "/etc/config/greeting"]).output
    assert out == b"hello"
    # the page is served (asked from inside the container: no traffic leaves loopback)
    page = cs[0].exec_run(["wget", "-qO-", "http://127.0.0.1:8080/version"]).output
    assert page.decode().strip() == images["v1"].rsplit(":", 1)[1]  # the page names its version
    [dep] = [r for r in outcome.status.resources if r.kind == "Deployment"]
    assert (dep.sync, dep.health, dep.replicas and dep.replicas["ready"]) == (
        "Synced",
        "Healthy",
        3,
    )


def test_change_replaces_pods_and_config_change_replaces_too(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    rec = deployed(remote, images, make_reconciler)
    v1_pods = {c.labels[L_POD] for c in running(engine, instance)}
    remote.write("web.yaml", web(images, "v2"))
    remote.push("v2")
    converge(rec)
    cs = running(engine, instance)
    assert len(cs) == 3 and {c.attrs["Config"]["Image"] for c in cs} == {images["v2"]}
    v2_pods = {c.labels[L_POD] for c in cs}
    assert not v1_pods & v2_pods
    base(remote, greeting="bonjour")  # only the ConfigMap changes
    remote.push("greeting")
    converge(rec)
    cs = running(engine, instance)
    assert len(cs) == 3 and not {c.labels[L_POD] for c in cs} & v2_pods
    assert cs[0].exec_run(["cat", "/etc/config/greeting"]).output == b"bonjour"


def test_deleted_manifest_is_pruned_unless_annotated(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    base(remote)
    remote.write("web.yaml", web(images, replicas=2))
    keep = web(
        images, replicas=1, name="keep", metadata={"annotations": {"gitops.io/prune": "disabled"}}
    )
    remote.write("keep.yaml", keep)
    remote.push("two deployments")
    rec = make_reconciler()
    converge(rec)
    assert len(running(engine, instance)) == 3
    remote.delete("web.yaml")
    remote.delete("keep.yaml")
    remote.push("delete both")
    outcome = converge(rec)
    cs = running(engine, instance)
    assert [c.labels["io.gitops.deployment"] for c in cs] == ["keep"]
    [kept] = [r for r in outcome.status.resources if r.name == "keep"]
    assert kept.sync == "OutOfSync" and "pruning is disabled" in kept.message


def test_out_of_band_removal_and_stop_are_repaired(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    rec = deployed(remote, images, make_reconciler, 2)
    first, second = running(engine, instance)
    first.remove(force=True)
    second.stop(timeout=1)
    outcome = converge(rec)
    assert outcome.status.result == "Succeeded"
    cs = running(engine, instance)
    assert len(cs) == 2
    assert second.id in {c.id for c in cs}  # the stopped one was started again, not replaced


def test_invalid_commit_changes_nothing_and_is_reported(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    rec = deployed(remote, images, make_reconciler)
    good = rec.status.applied
    before = sorted(c.id for c in running(engine, instance))
    broken = web(images, "v2")
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    remote.write("web.yaml", broken)
    remote.write_text("extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    bad = remote.push("broken commit")
    outcome = rec.reconcile("test")
    status = outcome.status
    assert (status.result, status.reason, status.revision, status.applied) == (
        "Failed",
        "ValidationFailed",
        bad,
        good,
    )
    assert any(
        e.startswith(
            "web.yaml:0: Deployment/web: spec.template.spec.containers[0].imagePullPolicy:"
        )
        for e in status.errors
    ), status.errors
    assert any(e.startswith("extra.yaml:0: YAML syntax error") for e in status.errors)
    assert sorted(c.id for c in running(engine, instance)) == before
    # drift is still repaired on the last good commit while the bad one is the newest
    running(engine, instance)[0].remove(force=True)
    converge(rec)
    assert len(running(engine, instance)) == 3
    rows = [r for r in rec.history.syncs(10) if r.revision == bad]
    assert rows and all(r.result == "Failed" and "imagePullPolicy" in r.message for r in rows)
    assert rows[0].created == 1  # the repair on the last good commit is recorded too
    # the next good commit is applied
    remote.write("web.yaml", web(images, "v2"))
    remote.delete("extra.yaml")
    fixed = remote.push("fix")
    outcome = converge(rec)
    assert (outcome.status.result, outcome.status.applied) == ("Succeeded", fixed)
    assert {c.attrs["Config"]["Image"] for c in running(engine, instance)} == {images["v2"]}


def test_unpullable_image_keeps_old_pods_and_names_the_field(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    rec = deployed(remote, images, make_reconciler, 2)
    before = sorted(c.id for c in running(engine, instance))
    remote.write("web.yaml", web(images, "does-not-exist", replicas=2))
    remote.push("typo in tag")
    outcome = rec.reconcile("test")
    assert (outcome.status.result, outcome.status.reason) == ("Failed", "ImagePullBackOff")
    [error] = outcome.status.errors
    assert error.startswith("web.yaml:0: Deployment/web: spec.template.spec.containers[0].image: ")
    assert images.missing in error
    assert sorted(c.id for c in running(engine, instance)) == before
    [dep] = [r for r in outcome.status.resources if r.kind == "Deployment"]
    assert dep.health == "Degraded"


def test_restarted_reconciler_creates_no_duplicates(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    base(remote)
    remote.write("web.yaml", web(images))
    remote.push("v1")
    converge(make_reconciler())
    ids = sorted(c.id for c in containers_of(engine, instance))
    # same state directory, and a brand-new one: live state comes from labels alone
    for state in ("state", "fresh-state"):
        outcome = converge(make_reconciler(state))
        assert outcome.status.result == "Succeeded"
        assert outcome.applied is None  # nothing to do
        assert sorted(c.id for c in containers_of(engine, instance)) == ids


def test_restart_mid_replacement_finishes_without_duplicates(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    base(remote)
    remote.write("web.yaml", web(images))
    remote.push("v1")
    converge(make_reconciler())
    remote.write("web.yaml", web(images, "v2"))
    remote.push("v2")
    first = make_reconciler()
    for _ in range(3):  # part of the way through the rollout, then the reconciler "dies"
        first.reconcile("test")
        assert len(running(engine, instance)) <= 4  # replicas + maxSurge (25 % of 3, up)
    images_now = {c.attrs["Config"]["Image"] for c in running(engine, instance)}
    assert images_now == {images["v1"], images["v2"]}  # truly mid-rollout
    converge(make_reconciler())
    cs = running(engine, instance)
    assert len(cs) == 3 and {c.attrs["Config"]["Image"] for c in cs} == {images["v2"]}


def test_empty_commit_is_refused_unless_allowed(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    rec = deployed(remote, images, make_reconciler, 1)
    for f in ("ns.yaml", "config.yaml", "web.yaml"):
        remote.delete(f)
    remote.push("delete everything")
    outcome = rec.reconcile("test")
    assert (outcome.status.result, outcome.status.reason) == ("Failed", "EmptyCommitRefused")
    assert len(running(engine, instance)) == 1
    outcome = converge(make_reconciler("state2", allow_empty=True))
    assert outcome.status.result == "Succeeded"
    assert containers_of(engine, instance) == []


def test_unmanaged_containers_are_never_touched(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    bystander = engine.containers.run(
        images["v1"], detach=True, labels={"purpose": "bystander"}, name=f"bystander-{instance}"
    )
    try:
        base(remote)
        remote.write("web.yaml", web(images, replicas=1))
        remote.push("v1")
        converge(make_reconciler())
        for f in ("ns.yaml", "config.yaml", "web.yaml"):
            remote.delete(f)
        remote.push("delete everything")
        converge(make_reconciler(allow_empty=True))
        bystander.reload()
        assert bystander.status == "running"
    finally:
        bystander.remove(force=True)


def test_unreachable_remote_keeps_workloads_and_backs_off(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    rec = deployed(remote, images, make_reconciler, 2)
    before = sorted(c.id for c in running(engine, instance))
    moved = remote.bare.with_name("moved.git")
    remote.bare.rename(moved)
    try:
        first = rec.reconcile("test")
        second = rec.reconcile("test")
        assert (first.status.result, first.status.reason) == ("Failed", "SourceUnavailable")
        assert first.requeue_after is not None and second.requeue_after is not None
        assert second.requeue_after > first.requeue_after  # exponential back-off
        assert sorted(c.id for c in running(engine, instance)) == before
    finally:
        moved.rename(remote.bare)
    assert converge(rec).status.result == "Succeeded"
    assert rec.history.facts.last_good()


def test_git_revert_of_a_commit_brings_the_old_version_back(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    rec = deployed(remote, images, make_reconciler, 2)
    remote.write("web.yaml", web(images, "v2", replicas=2))
    bad = remote.push("v2")
    converge(rec)
    assert {c.attrs["Config"]["Image"] for c in running(engine, instance)} == {images["v2"]}
    revert = remote.revert(bad)
    outcome = converge(rec)
    assert outcome.status.applied == revert
    assert {c.attrs["Config"]["Image"] for c in running(engine, instance)} == {images["v1"]}
