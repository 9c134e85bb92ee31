"""A StatefulSet on a real engine: three pods whose image keeps a counter in its own claim.
Each ordinal's data is seen by that ordinal only, and survives a rolling update, a kill of each
container, a reconciler started afresh on an empty state directory, a scale to 1 and back, and
the set's deletion from git and return. OrderedReady order is read from the engine: each
ordinal created only once the one before it runs; updates from the highest ordinal down."""

from __future__ import annotations

import itertools
import time
from typing import Any

import docker

from gitops.model.labels import L_CONTAINER, L_DEPLOYMENT, L_INSTANCE, L_POD
from gitops.model.verdicts import Health
from tests.conftest import GitRemote, Images, containers_of, reconciling, wait_until
from tests.helpers import namespace

NS = "kv"
KEEP = (
    "n=$(cat /data/n 2>/dev/null || echo 0); echo $((n+1)) > /data/n; "
    "[ -f /data/who ] || hostname > /data/who; mkdir -p /tmp; (sleep 1; touch /tmp/ready) & "
    "exec httpd -f -p 8080 -h /www"
)


def kv(image: str, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "kv", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": "kv",
            "selector": {"matchLabels": {"app": "kv"}},
            "template": {
                "metadata": {"labels": {"app": "kv"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "kv", "image": image, "command": ["sh", "-c", KEEP],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        # An exec probe: the engine's events show when each pod became Ready.
                        "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                                           "periodSeconds": 1},
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "64Mi"}}},
            }],
        },
    }  # fmt: skip


HEADLESS = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kv", "namespace": NS},
            "spec": {"clusterIP": "None", "selector": {"app": "kv"},
                     "ports": [{"name": "http", "port": 8080}]}}  # fmt: skip


def apps(engine: docker.DockerClient, instance: str) -> dict[str, Any]:
    return {
        c.labels[L_POD]: c
        for c in containers_of(engine, instance, infra=False)
        if c.labels.get(L_DEPLOYMENT) == "kv" and c.labels.get(L_CONTAINER) == "kv"
        and c.status == "running"
    }  # fmt: skip


def data(engine: docker.DockerClient, instance: str) -> dict[str, tuple[str, str]]:
    """pod -> (its counter, the hostname that first wrote its volume)."""
    out = {}
    for pod, c in apps(engine, instance).items():
        got = c.exec_run(["sh", "-c", "cat /data/n /data/who"]).output
        assert isinstance(got, bytes)
        n, who = got.decode().split()
        out[pod] = (n, who)
    return out


def events(engine: docker.DockerClient, instance: str, since: float) -> list[tuple[str, str, int]]:
    """(pod, action, nanoseconds) of the engine's events for the set's app containers since
    ``since``: ``ready`` for a passing readiness probe, else create, kill, destroy."""
    out = []
    for e in engine.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "label": f"{L_INSTANCE}={instance}"},
    ):
        attrs = e.get("Actor", {}).get("Attributes", {})
        if attrs.get(L_DEPLOYMENT) != "kv" or attrs.get(L_CONTAINER) != "kv":
            continue
        action = str(e.get("Action", ""))
        if action == "exec_die":
            action = "ready" if attrs.get("exitCode") == "0" else "unready"
        out.append((attrs[L_POD], action, int(e["timeNano"])))
    return sorted(out, key=lambda x: x[2])  # fmt: skip


def first(log: list[tuple[str, str, int]], pod: str, action: str) -> int:
    return min(t for p, a, t in log if (p, a) == (pod, action))


def last(log: list[tuple[str, str, int]], pod: str, action: str) -> int:
    return max(t for p, a, t in log if (p, a) == (pod, action))


def resolved(container: Any, name: str) -> set[str]:
    answer = container.exec_run(["nslookup", name, "127.0.0.11"]).output.decode()
    lines = answer.split("Name:", 1)[-1].splitlines() if "Name:" in answer else []
    return {line.split()[-1] for line in lines if line.startswith("Address")}


def healthy(rec: Any, replicas: int = 3) -> bool:
    found = [r for r in rec.status.resources if r.kind == "StatefulSet"]
    if not found:  # no pass has reported yet
        return False
    res = found[0]
    reps = res.replicas or {}
    return bool(res.health == Health.HEALTHY and reps.get("ready") == replicas
                and reps.get("updated") == replicas)  # fmt: skip


def test_a_statefulset_keeps_each_ordinals_data_through_everything(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("kv.yaml", HEADLESS, kv(images["v1"]))
    remote.push("a key-value store of three")
    rec = make_reconciler(probes=True, dns=True)
    started = time.monotonic()
    since = time.time()
    with reconciling(rec, limit=300):
        wait_until(lambda: healthy(rec), 120)
        took = time.monotonic() - started
        names = ["kv-0", "kv-1", "kv-2"]
        cs = apps(engine, instance)
        assert sorted(cs) == names
        # OrderedReady, from the engine's events: an ordinal's first passing readiness probe
        # comes before any container of the next ordinal is created.
        log = events(engine, instance, since)
        for low, high in itertools.pairwise(names):
            assert first(log, low, "ready") < first(log, high, "create"), log
        assert data(engine, instance) == {p: ("1", p) for p in names}
        # Per-pod names resolve from another pod of the namespace: NAME-i.SERVICE; the
        # headless Service's own name to the ready pods (the cluster DNS).
        answer = cs["kv-0"].exec_run(["nslookup", "kv-2.kv", "127.0.0.11"]).output
        assert isinstance(answer, bytes) and b"kv-2.kv" in answer, answer
        ips = {
            next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
            for c in containers_of(engine, instance)
            if c.labels.get(L_DEPLOYMENT) == "kv"
        } - {""}
        assert len(ips) == 3 and resolved(cs["kv-0"], "kv") == ips

        remote.write("kv.yaml", HEADLESS, kv(images["v2"]))
        remote.push("v2")
        pushed = time.monotonic()
        wait_until(lambda: healthy(rec) and all(c.attrs["Config"]["Image"] == images["v2"]
                                                for c in apps(engine, instance).values()), 120)  # fmt: skip
        rolled = time.monotonic() - pushed
        cs = apps(engine, instance)
        created = sorted(names, key=lambda p: cs[p].attrs["Created"])
        assert created == ["kv-2", "kv-1", "kv-0"]  # updated from the highest ordinal down
        assert data(engine, instance) == {p: ("2", p) for p in names}

        for pod in names:  # a kill of each container: restarted on the same data
            apps(engine, instance)[pod].kill()
            wait_until(lambda p=pod: p in apps(engine, instance) and healthy(rec), 90)
        assert data(engine, instance) == {p: ("3", p) for p in names}

    fresh = make_reconciler(state="fresh", probes=True)  # an empty state directory
    with reconciling(fresh, limit=300):
        wait_until(lambda: healthy(fresh), 60)
        assert data(engine, instance) == {p: ("3", p) for p in names}  # nothing replaced

        remote.write("kv.yaml", HEADLESS, kv(images["v2"], replicas=1))
        since = time.time()
        remote.push("scale to 1")
        wait_until(lambda: sorted(apps(engine, instance)) == ["kv-0"] and healthy(fresh, 1), 90)
        log = events(engine, instance, since)  # scale-down from the highest ordinal, one by one
        assert last(log, "kv-2", "destroy") < first(log, "kv-1", "kill"), log
        remote.write("kv.yaml", HEADLESS, kv(images["v2"], replicas=3))
        remote.push("back to 3")
        wait_until(lambda: healthy(fresh) and len(apps(engine, instance)) == 3, 120)
        assert data(engine, instance) == {"kv-0": ("3", "kv-0"), "kv-1": ("4", "kv-1"),
                                          "kv-2": ("4", "kv-2")}  # fmt: skip

        remote.write("kv.yaml", HEADLESS)  # the set goes; its claims stay
        remote.push("no store")
        wait_until(lambda: not apps(engine, instance), 90)
        vols = engine.volumes.list(
            filters={"label": [f"{L_INSTANCE}={instance}", "io.gitops.claim"]}
        )
        assert sorted(v.attrs["Labels"]["io.gitops.claim"] for v in vols) == [
            "data-kv-0", "data-kv-1", "data-kv-2"]  # fmt: skip
        remote.write("kv.yaml", HEADLESS, kv(images["v2"]))
        remote.push("the store is back")
        wait_until(lambda: healthy(fresh) and len(apps(engine, instance)) == 3, 120)
        assert data(engine, instance) == {"kv-0": ("4", "kv-0"), "kv-1": ("5", "kv-1"),
                                          "kv-2": ("5", "kv-2")}  # fmt: skip
    print(f"\nStatefulSet of 3: Ready from nothing in {took:.1f}s, rolled to v2 in {rolled:.1f}s")
