"""CronJobs on a real ``gitops run`` and engine, on the wall clock: a run every minute under
Forbid, each longer than a minute, never overlaps (sampled from the engine); a reconciler
stopped over two schedules and started again makes one catch-up run, not two."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import docker

from tests.conftest import GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import namespace
from tests.integration.test_run import free_port, get, wait_for

NS = "cron"
RUN = "io.gitops.label.job-name"


def cron(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"schedule": "* * * * *", "timeZone": "UTC", **spec, "jobTemplate": {"spec": {
            "backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "task", "image": image, "command": ["sh", "-c", script]}]}}}}},
    }  # fmt: skip


def runs(engine: docker.DockerClient, instance: str, cronjob: str, running: bool) -> set[str]:
    """The runs of ``cronjob`` the engine has containers of (running ones only, or all)."""
    found = engine.containers.list(
        all=not running, filters={"label": [f"io.gitops.instance={instance}",
                                            f"io.gitops.deployment={cronjob}"]},
    )  # fmt: skip
    return {c.labels[RUN] for c in found if c.labels.get("io.gitops.infra") != "true"}


def until_second(second: float) -> None:
    """Sleep until ``second`` past the next minute boundary of the wall clock."""
    now = time.time()
    time.sleep((now // 60 + 1) * 60 + second - now)


def test_forbid_never_overlaps_and_a_stopped_reconciler_makes_one_catch_up_run(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    tmp_path: Path,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write(
        "cron.yaml",
        cron("slow", images["v1"], "sleep 65", concurrencyPolicy="Forbid"),
        cron("tick", images["v1"], "echo tick", successfulJobsHistoryLimit=10),
    )
    remote.push("two cronjobs")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gitops.log"
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, log)
    most, seen, stop = 0, set[str](), threading.Event()

    def sample() -> None:  # what the engine runs of "slow", every 200 ms (bounded)
        nonlocal most
        deadline = time.monotonic() + 240
        while not stop.is_set() and time.monotonic() < deadline:
            now = runs(engine, instance, "slow", running=True)
            most = max(most, len(now))
            seen.update(now)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        # The first run at the next minute; at the one after, it still runs: Forbid waits,
        # and the waiting schedule runs as soon as the first has ended.
        wait_for(lambda: len(seen) >= 2, 200, 0.5)
    finally:
        stop.set()
        sampler.join()
        stop_gitops(proc)
    assert most == 1, f"{most} runs of a Forbid CronJob at once"
    # Stopped over two schedules: one catch-up run when it starts again (the latest missed).
    before = runs(engine, instance, "tick", running=False)
    until_second(1)
    until_second(3)
    missed = int(time.time() // 60)  # the latest schedule, 3 s ago
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, log)
    try:
        wait_for(lambda: len(runs(engine, instance, "tick", running=False)) > len(before), 30, 0.2)
        time.sleep(5)  # and no second one
        after = runs(engine, instance, "tick", running=False)
        assert after - before == {f"tick-{missed}"}, (sorted(before), sorted(after))
        st = get(url + f"/api/v1/cronjobs?namespace={NS}")
        tick = next(r for r in st if r["name"] == "tick")
        assert tick["lastScheduleTime"] == missed * 60
        assert tick["nextScheduleTime"] == (missed + 1) * 60
    finally:
        stop_gitops(proc)
