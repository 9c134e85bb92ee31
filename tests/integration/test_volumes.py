"""Volumes that outlive their pods, on a real engine: a PersistentVolumeClaim's data survives a
rolling update, a kill, the deletion of its workload and of the claim itself from git, and is
removed only by ``gitops delete pvc --confirm`` while no pod uses it; ``subPath``,
``subPathExpr``, read-only mounts, and ``hostPath`` inside the paths a node allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from gitops.config.settings import NodeConfig, StorageClass
from gitops.errors import ManifestError
from gitops.manifests import Policy, parse_manifests
from gitops.model.labels import L_CLAIM, L_CONTAINER, L_DEPLOYMENT, L_INSTANCE
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, converge, start_gitops, stop_gitops
from tests.helpers import deployment, dump, namespace
from tests.integration.test_run import free_port, get, gitops, wait_for

NS = "stateful"
# Counts its own starts in the claim's volume, then serves.
COUNTER = (
    "n=$(cat /data/n 2>/dev/null || echo 0); echo $((n+1)) > /data/n; exec httpd -f -p 8080 -h /www"
)


def claim(name: str = "data", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            **spec,
        },
    }


def counter(image: str, **extra: Any) -> dict[str, Any]:
    mounts = [
        {"name": "data", "mountPath": "/data"},
        {"name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD_NAME)"},
        {"name": "data", "mountPath": "/peek", "readOnly": True},
    ]
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    return deployment(
        "counter",
        namespace=NS,
        image=image,
        replicas=1,
        container={"command": ["sh", "-c", COUNTER], "volumeMounts": mounts, "env": env},
        pod={"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]},
        strategy={"type": "Recreate"},  # one writer at a time, as a database wants
        **extra,
    )


def app(engine: docker.DockerClient, instance: str) -> Any:
    [c] = [
        c
        for c in containers_of(engine, instance, infra=False)
        if c.labels.get(L_DEPLOYMENT) == "counter" and c.labels[L_CONTAINER] == "web"
    ]
    return c


def starts(engine: docker.DockerClient, instance: str) -> str:
    return str(app(engine, instance).exec_run(["cat", "/data/n"]).output.decode().strip())


def volumes(engine: docker.DockerClient, instance: str) -> list[str]:
    found = engine.volumes.list(filters={"label": [L_CLAIM, f"{L_INSTANCE}={instance}"]})
    return [v.name for v in found]


def test_a_claims_data_outlives_updates_kills_and_deletions(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("app.yaml", claim(), counter(images["v1"]))
    remote.push("a counter on a claim")
    rec = make_reconciler()
    status = converge(rec).status
    [res] = [r for r in status.resources if r.name == "counter"]
    assert res.health == Health.HEALTHY, res.message
    assert starts(engine, instance) == "1"
    [vol] = volumes(engine, instance)
    c = app(engine, instance)
    pod = c.labels["io.gitops.pod"]
    # subPathExpr: the pod's own directory of the volume; readOnly: the same volume, unwritable
    assert c.exec_run(["sh", "-c", "echo hi > /logs/x"]).exit_code == 0
    assert c.exec_run(["cat", f"/peek/logs/{pod}/x"]).output == b"hi\n"
    assert c.exec_run(["sh", "-c", "echo no > /peek/y"]).exit_code != 0

    remote.write("app.yaml", claim(), counter(images["v2"]))
    remote.push("a new image")
    converge(rec)
    assert app(engine, instance).attrs["Config"]["Image"] == images["v2"]
    assert starts(engine, instance) == "2"  # the update started on the same data

    app(engine, instance).kill()
    converge(rec)
    assert starts(engine, instance) == "3"

    remote.write("app.yaml", claim())  # the workload goes; its claim's volume stays
    remote.push("no counter")
    converge(rec)
    assert volumes(engine, instance) == [vol]
    remote.delete("app.yaml")  # the claim goes from git too: Released, data kept
    remote.push("no claim")
    converge(rec)
    assert volumes(engine, instance) == [vol]

    remote.write("app.yaml", claim(), counter(images["v1"]))
    remote.push("back")
    converge(rec)
    assert starts(engine, instance) == "4"


def test_delete_pvc_removes_the_data_only_when_confirmed_and_unused(
    remote: GitRemote, images: Images, engine: docker.DockerClient, instance: str, tmp_path: Path
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("app.yaml", claim(), counter(images["v1"]))
    remote.push("a counter on a claim")
    port = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "log")
    api = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _claims(api) and _claims(api)[0]["usedBy"], 60, 0.2)
        [row] = _claims(api)
        assert (row["node"], row["capacity"], row["accessModes"]) == (
            "local",
            "1Gi",
            ["ReadWriteOnce"],
        )
        assert row["usedBy"] and row["usedBy"][0].startswith("counter-")
        table = gitops("get", "pvc", "-n", NS, "--server", api)
        assert "RWO" in table.stdout and "Bound" in table.stdout, table.stdout
        unconfirmed = gitops("delete", "pvc", "data", "-n", NS, "--server", api)
        assert unconfirmed.returncode == 1 and "--confirm" in unconfirmed.stderr
        busy = gitops("delete", "pvc", "data", "-n", NS, "--confirm", "--server", api)
        assert busy.returncode == 1 and "is used by pod(s) counter-" in busy.stderr
        assert volumes(engine, instance)
        remote.delete("app.yaml")
        remote.push("no counter, no claim")
        wait_for(lambda: _claims(api) and _claims(api)[0]["status"] == "Released"
                 and not _claims(api)[0]["usedBy"], 60, 0.2)  # fmt: skip
        done = gitops("delete", "pvc", "data", "-n", NS, "--confirm", "--server", api, "-o", "json")
        assert done.returncode == 0, done.stderr
        assert volumes(engine, instance) == [] and _claims(api) == []
    finally:
        stop_gitops(proc)


def _claims(api: str) -> list[dict[str, Any]]:
    try:
        rows: list[dict[str, Any]] = get(api + f"/api/v1/persistentvolumeclaims?namespace={NS}")
    except OSError:  # not listening yet
        return []
    return rows


def test_host_path_inside_the_allowed_paths_binds_and_outside_is_refused(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
    tmp_path: Path,
) -> None:
    allowed = tmp_path / "srv"
    allowed.mkdir()
    (allowed / "conf").mkdir()
    (allowed / "conf" / "motd").write_text("from the node\n")

    def reader(path: str) -> dict[str, Any]:
        return deployment(
            "reader", namespace=NS, image=images["v1"], replicas=1,
            container={"command": ["sh", "-c", "exec sleep 3600"], "volumeMounts": [
                {"name": "host", "mountPath": "/etc/motd", "subPath": "conf/motd",
                 "readOnly": True},
                {"name": "host", "mountPath": "/out", "subPath": "out"}]},
            pod={"volumes": [{"name": "host", "hostPath": {"path": path,
                                                          "type": "DirectoryOrCreate"}}]},
        )  # fmt: skip

    with pytest.raises(ManifestError) as err:
        parse_manifests({"r.yaml": dump(reader("/etc"))}, policy=Policy(host_paths=(str(allowed),)))
    text = str(err.value)
    assert "r.yaml:0: Deployment/reader: spec.template.spec.volumes[0].hostPath.path" in text
    assert "hostPaths in the node configuration" in text

    remote.write("ns.yaml", namespace(NS))
    remote.write("reader.yaml", reader(str(allowed)))
    remote.push("a pod that reads its node's files")
    node = NodeConfig("local", host_paths=(str(allowed),))
    status = converge(make_reconciler(nodes=(node,))).status
    [res] = [r for r in status.resources if r.name == "reader"]
    assert res.health == Health.HEALTHY, res.message
    [c] = [
        c for c in containers_of(engine, instance, infra=False) if c.labels[L_CONTAINER] == "web"
    ]
    assert c.exec_run(["cat", "/etc/motd"]).output == b"from the node\n"
    assert c.exec_run(["sh", "-c", "echo back > /out/note"]).exit_code == 0
    assert (allowed / "out" / "note").read_text() == "back\n"


def test_a_claims_size_is_enforced_where_the_driver_can(
    remote: GitRemote, images: Images, engine: docker.DockerClient, instance: str,
    make_reconciler: Any,
) -> None:  # fmt: skip
    """A class whose volumes are tmpfs mounts (Docker's local driver): requests.storage is the
    mount's size, so a pod cannot write past it."""
    ram = StorageClass("ram", "local", (("device", "tmpfs"), ("type", "tmpfs")))
    app = deployment(
        "filler", namespace=NS, image=images["v1"], replicas=1,
        container={"command": ["sh", "-c", "mkdir -p /tmp; dd if=/dev/zero of=/data/big "
                               "bs=1048576 count=8 2> /tmp/said; exec sleep 3600"],
                   "volumeMounts": [{"name": "d", "mountPath": "/data"}]},
        pod={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "small"}}],
             "terminationGracePeriodSeconds": 1},
    )  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("app.yaml", claim("small", storageClassName="ram",
                                   resources={"requests": {"storage": "4Mi"}}), app)  # fmt: skip
    remote.push("a small claim in memory")
    status = converge(make_reconciler(storage_classes=(StorageClass("local"), ram))).status
    assert all(r.health == Health.HEALTHY for r in status.resources if r.kind == "Deployment")
    [vol] = engine.volumes.list(filters={"label": [L_CLAIM, f"{L_INSTANCE}={instance}"]})
    assert vol.attrs["Options"] == {"device": "tmpfs", "type": "tmpfs", "o": "size=4194304"}
    [c] = [c for c in containers_of(engine, instance, infra=False)
           if c.labels.get(L_DEPLOYMENT) == "filler"]  # fmt: skip
    out = c.exec_run(["sh", "-c", "cat /tmp/said; wc -c < /data/big"]).output
    assert isinstance(out, bytes)
    said = out.decode()
    assert "No space left on device" in said, said
    assert int(said.split()[-1]) <= 4 * 1024 * 1024
