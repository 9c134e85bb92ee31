"""Health-gated rolling updates, liveness restarts and crash back-off on a real dockerd."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from typing import Any

import docker

from gitops.model.labels import L_CONTAINER, L_INFRA, L_POD
from tests.conftest import GitRemote, Images, containers_of, reconciling, wait_until
from tests.helpers import deployment, namespace

NS = "rollout"


def web(images: Images, version: str, replicas: int = 3, **extra: Any) -> dict[str, Any]:
    container = {
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        **extra.pop("container", {}),
    }
    return deployment(
        namespace=NS,
        image=images[version],
        replicas=replicas,
        container=container,
        strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        **extra,
    )


def sample(engine: docker.DockerClient, instance: str) -> tuple[int, int, set[str]]:
    """(pods with a running app, pods whose /healthz answers, images), measured independently
    of gitops: each pod is asked from inside its own network namespace. Uses the engine's list
    call (no per-container inspect) so pods removed meanwhile do not break the sample."""
    pods: dict[str, dict[str, Any]] = defaultdict(dict)
    for c in engine.api.containers(all=True, filters={"label": f"io.gitops.instance={instance}"}):
        labels = c["Labels"]
        role = "infra" if labels.get(L_INFRA) == "true" else labels.get(L_CONTAINER, "")
        pods[labels[L_POD]][role] = c
    total = ready = 0
    images = set()
    for members in pods.values():
        app = members.get("web")
        holder = members.get("infra", app)  # the pause container, or a lone container
        if app is None or holder is None or app["State"] != "running":
            continue
        total += 1
        images.add(app["Image"])
        try:
            exec_id = engine.api.exec_create(
                holder["Id"],
                ["timeout", "1", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"],
            )["Id"]
            engine.api.exec_start(exec_id)
            ready += engine.api.exec_inspect(exec_id)["ExitCode"] == 0
        except docker.errors.APIError:  # removed meanwhile: not ready
            continue
    return total, ready, images


def test_rolling_update_respects_availability_bounds_throughout(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"))
    remote.push("v1")
    rec = make_reconciler(probes=True)
    samples: list[tuple[int, int, set[str]]] = []
    with reconciling(rec):
        wait_until(lambda: sample(engine, instance)[:2] == (3, 3), 60)
        remote.write("web.yaml", web(images, "v2"))
        remote.push("v2")

        def done() -> bool:
            s = sample(engine, instance)
            samples.append(s)
            return s[0] == 3 and s[1] == 3 and s[2] == {images["v2"]}

        wait_until(done, 90, interval=0.05)
    assert len(samples) >= 10, samples
    assert max(total for total, _, _ in samples) <= 4  # replicas + maxSurge
    assert min(ready for _, ready, _ in samples) >= 3  # replicas - maxUnavailable
    assert any(len(seen) == 2 for _, _, seen in samples)  # old and new side by side


def test_failing_liveness_probe_restarts_the_container(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    liveness = {
        "httpGet": {"path": "/nothere", "port": 8080},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    remote.write("web.yaml", web(images, "v1", replicas=1, container={"livenessProbe": liveness}))
    remote.push("liveness fails")
    rec = make_reconciler(probes=True, crash_backoff=(0.5, 2.0, 600.0))
    with reconciling(rec):
        wait_until(lambda: sum(rec.crash.counts().values()) >= 2, 60)
    [app] = containers_of(engine, instance, infra=False)
    assert app.attrs["State"]["Running"] or app.status in ("running", "restarting", "exited")
    assert max(rec.crash.counts().values()) >= 2  # the same container, restarted again and again


def test_crash_loop_back_off_grows(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    crash = deployment(
        namespace=NS, image=images["v1"], replicas=1, container={"command": ["sh", "-c", "exit 3"]}
    )
    remote.write("crash.yaml", crash)
    remote.push("crashes")
    rec = make_reconciler(probes=True, crash_backoff=(1.0, 8.0, 600.0))
    starts: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        for event in engine.api.events(
            filters={
                "type": "container",
                "event": "start",
                "label": f"io.gitops.instance={instance}",
            },
            decode=True,
            since=int(time.time()),
        ):
            if event.get("Actor", {}).get("Attributes", {}).get(L_CONTAINER) == "web":
                # The engine's own time of the start, not when the event reached this thread:
                # delivery jitter of a few ms must not look like a back-off cut short.
                starts.append(event["timeNano"] / 1e9)
            if stop.is_set() or len(starts) >= 5:
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with reconciling(rec):
        wait_until(lambda: len(starts) >= 5, 60)
    stop.set()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # restarted at once, then after at least 1 s, 2 s, 4 s (back-off 1 s doubling; what a pass
    # takes to notice the exit comes on top, so only the lower bounds are exact)
    assert gaps[1] >= 0.95 and gaps[2] >= 1.95 and gaps[3] >= 3.95, gaps
    assert gaps[3] > gaps[1] and gaps[3] < 15, gaps
    st = rec.status
    [dep] = [r for r in st.resources if r.kind == "Deployment"]
    assert dep.health == "Degraded"


def images_running(engine: docker.DockerClient, instance: str, name: str) -> set[str]:
    return {
        c["Image"]
        for c in engine.api.containers(
            filters={"label": [f"io.gitops.instance={instance}", f"io.gitops.deployment={name}"]}
        )
        if c["Labels"].get(L_INFRA) != "true"
    }


def test_failed_rollout_rolls_back_by_itself_and_is_not_retried(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1", progressDeadlineSeconds=5))
    remote.write("api.yaml", web(images, "v1", replicas=1, name="api"))
    good = remote.push("v1")
    rec = make_reconciler(probes=True)
    with reconciling(rec):
        wait_until(lambda: (rec.revisions.latest((NS, "web")) or _Never).result == "Complete", 60)
        remote.write("web.yaml", web(images, "v2-unready", progressDeadlineSeconds=5))
        remote.write("api.yaml", web(images, "v2", replicas=1, name="api"))
        bad = remote.push("web v2 (never ready) and api v2")

        def rolled_back() -> bool:
            history = rec.history.rollouts(NS, "web")
            return len(history) >= 3 and history[0].result == "Complete"

        wait_until(rolled_back, 90)
        # the failed commit is not retried: no unready pod comes back while we keep reconciling
        for _ in range(10):
            assert images["v2-unready"] not in images_running(engine, instance, "web")
            time.sleep(0.3)
        latest, failed, first = rec.history.rollouts(NS, "web")[:3]
        assert (first.commit, first.result) == (good, "Complete")
        assert (failed.commit, failed.result, failed.rolled_back_to) == (bad, "Failed", good)
        assert failed.reason.startswith("ProgressDeadlineExceeded: no progress for 5s")
        assert "Readiness probe failed" in failed.reason and "404" in failed.reason
        assert failed.author.startswith("Test Author") and failed.subject.startswith("web v2")
        assert (latest.commit, latest.reason) == (good, f"rollback of {bad[:12]} to {good[:12]}")
        assert images_running(engine, instance, "web") == {images["v1"]}
        [web_status] = [r for r in rec.status.resources if r.name == "web"]
        assert web_status.health == "Degraded" and web_status.sync == "OutOfSync"
        assert bad[:12] in web_status.message and good[:12] in web_status.message
        # the other deployment of the same commit went ahead
        assert images_running(engine, instance, "api") == {images["v2"]}
        assert rec.history.rollouts(NS, "api")[0].result == "Complete"
        # a newer commit that changes the deployment releases the pin
        remote.write("web.yaml", web(images, "v2", progressDeadlineSeconds=5))
        fixed = remote.push("web v2, fixed")
        wait_until(
            lambda: (
                (rec.revisions.latest((NS, "web")) or _Never).commit == fixed
                and (rec.revisions.latest((NS, "web")) or _Never).result == "Complete"
            ),
            90,
        )
    assert images_running(engine, instance, "web") == {images["v2"]}
    assert rec.revisions.pins() == {}


class _Never:
    result = ""
    commit = ""


def test_fail_fast_rollout_rolls_back_on_the_first_failed_pod(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    """``gitops.io/fail-fast: "true"``: a new pod failing its readiness probe failureThreshold
    times fails the rollout at once, long before its 10-minute progress deadline; so does a
    new pod whose container exits."""
    fast = {"metadata": {"annotations": {"gitops.io/fail-fast": "true"}}}
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1", replicas=2, **fast))
    good = remote.push("v1")
    rec = make_reconciler(probes=True)

    def rolled_back_from(bad: str) -> bool:
        latest, *older = rec.history.rollouts(NS, "web")
        failed = next((r for r in older if r.commit == bad), None)
        return latest.commit == good and latest.result == "Complete" and failed is not None

    with reconciling(rec):
        wait_until(lambda: (rec.revisions.latest((NS, "web")) or _Never).result == "Complete", 60)
        remote.write("web.yaml", web(images, "v2-unready", replicas=2, **fast))
        unready = remote.push("web v2, never ready")
        started = time.monotonic()
        wait_until(lambda: rolled_back_from(unready), 60)
        took = time.monotonic() - started
        failed = next(r for r in rec.history.rollouts(NS, "web") if r.commit == unready)
        assert failed.result == "Failed" and failed.rolled_back_to == good
        assert failed.reason.startswith("NewPodFailed: pod web-"), failed.reason
        assert "Readiness probe failed 3 time(s)" in failed.reason and "404" in failed.reason
        assert took < 60  # the deadline is 600 s: only the failed pod can have ended it
        assert images_running(engine, instance, "web") == {images["v1"]}

        crashing = {"command": ["/bin/sh", "-c", "exit 3"]}  # readiness probe as in web()
        remote.write("web.yaml", web(images, "v2", replicas=2, container=crashing, **fast))
        crash = remote.push("web v2, exits at once")
        wait_until(lambda: rolled_back_from(crash), 60)
        failed = next(r for r in rec.history.rollouts(NS, "web") if r.commit == crash)
        assert failed.reason.startswith("NewPodFailed: pod web-"), failed.reason
        assert "Exited (3)" in failed.reason
        assert images_running(engine, instance, "web") == {images["v1"]}
