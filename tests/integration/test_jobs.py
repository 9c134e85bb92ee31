"""Jobs on a real engine: 5 completions 2 at a time (never more than 2 running, as sampled
from the engine), Complete, the pods kept for their logs and the end remembered on the engine;
a failing Job stopped at backoffLimit with the back-off between its pods growing."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime
from typing import Any

import docker

from gitops.model.labels import L_DEPLOYMENT, L_JOB, L_JOB_RESULT
from gitops.model.verdicts import Health
from gitops.reconciler import Reconciler
from tests.conftest import GitRemote, Images, containers_of
from tests.helpers import namespace

NS = "batch"


def job(image: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "work", "namespace": NS},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "task", "image": image, "command": ["sh", "-c", script]}
                    ],
                }
            },
            **spec,
        },
    }


def _job_status(rec: Reconciler) -> Any:
    return next(r for r in rec.status.resources if r.kind == "Job")


def _until_done(rec: Reconciler, limit: float) -> Any:
    """Passes as the run loop makes them (a container's exit is an engine event that asks
    for one; here a short poll), until the Job ended (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        outcome = rec.reconcile("test", fetch=False)
        if _job_status(rec).condition:
            return outcome
        time.sleep(0.2)
    raise AssertionError(f"the Job did not end within {limit}s: {_job_status(rec)}")


def test_a_job_runs_five_completions_two_at_a_time_and_is_remembered(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("job.yaml", job(images["v1"], "sleep 1; echo done", completions=5, parallelism=2))
    remote.push("a job")
    rec = make_reconciler()
    most, samples = 0, 0
    stop = threading.Event()

    def sample() -> None:  # what the engine runs, every 50 ms, while the passes go
        nonlocal most, samples
        while not stop.is_set():
            running = [
                c for c in engine.containers.list(filters={"label": f"{L_DEPLOYMENT}=work"})
                if c.labels.get("io.gitops.instance") == instance
                and c.labels.get("io.gitops.infra") != "true"
            ]  # fmt: skip
            most, samples = max(most, len(running)), samples + 1
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    rec.reconcile("test")
    try:
        _until_done(rec, 60)
    finally:
        stop.set()
        sampler.join()
    took = time.monotonic() - started
    st = _job_status(rec)
    assert (st.condition, st.reason, st.health) == (
        "Complete",
        "CompletionsReached",
        Health.HEALTHY,
    )
    assert st.replicas["succeeded"] == 5 and st.replicas["failed"] == 0
    assert samples > 20 and most == 2, (most, samples)
    assert took >= 3  # 5 runs of 1 s, 2 at a time: at least 3 rounds
    # The pods stay, exited 0, so their logs can be read.
    pods = [c for c in containers_of(engine, instance, infra=False)
            if c.labels.get(L_DEPLOYMENT) == "work"]  # fmt: skip
    assert len(pods) == 5 and all(c.attrs["State"]["ExitCode"] == 0 for c in pods)
    assert all(c.logs().strip() == b"done" for c in pods)
    # The end is on the engine: a labelled volume.
    [vol] = engine.volumes.list(filters={"label": [L_JOB, f"io.gitops.instance={instance}"]})
    assert vol.attrs["Labels"][L_JOB_RESULT] == "Complete"
    # A new reconciler with an empty state directory runs nothing again.
    again = make_reconciler(state="empty")
    outcome = again.reconcile("test")
    assert outcome.plan is not None and not outcome.plan.create
    assert _job_status(again).condition == "Complete"
    assert [r.result for r in rec.history.job_runs(NS, "work")] == ["Complete"]


def test_a_failing_job_stops_at_its_backoff_limit_with_the_back_off_growing(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("job.yaml", job(images["v1"], "echo failing; exit 3", backoffLimit=2))
    remote.push("a failing job")
    rec = make_reconciler(job_backoff=(1.0, 60.0))
    rec.reconcile("test")
    _until_done(rec, 60)
    st = _job_status(rec)
    assert (st.condition, st.reason, st.health) == ("Failed", "BackoffLimitExceeded", "Degraded")
    assert st.replicas["failed"] == 3
    pods = sorted(
        (c for c in containers_of(engine, instance, infra=False)
         if c.labels.get(L_DEPLOYMENT) == "work"),
        key=lambda c: c.attrs["Created"],
    )  # fmt: skip
    assert len(pods) == 3 and all(c.attrs["State"]["ExitCode"] == 3 for c in pods)

    def at(c: Any, key: str) -> float:
        text = c.attrs["State"][key][:26].rstrip("Z")
        return datetime.fromisoformat(text).timestamp()

    # Each pod is made a back-off after the previous one failed: 1 s, then 2 s (doubling).
    waits = [at(b, "StartedAt") - at(a, "FinishedAt") for a, b in itertools.pairwise(pods)]
    assert waits[0] >= 0.9 and waits[1] >= 1.9 and waits[1] > waits[0], waits
    assert "BackoffLimitExceeded" in [r.reason for r in rec.history.job_runs(NS, "work")]
