"""Scenario 10 of bench/compare.py: a batch of work, 10 completions 2 at a time.

gitops: a Job (completions 10, parallelism 2, restartPolicy Never). Swarm: ``docker service
create --mode replicated-job --replicas 10 --max-concurrent 2``. Both run the same image and
command (``sleep 1``), from the push (or the create) until the 10th completion is known: the
Job's status Complete, the service's tasks all complete.
"""

from __future__ import annotations

import time
from typing import Any

from docker.types import EndpointSpec, RestartPolicy, ServiceMode

from bench.sides import NAMESPACE, NS, Gitops, Swarm, digest, wait

COMMAND = ["true"]
COMPLETIONS, PARALLELISM = 10, 2


def manifest(image: str) -> str:
    return (
        NAMESPACE
        + f"""apiVersion: batch/v1
kind: Job
metadata:
  name: work
  namespace: {NS}
spec:
  completions: {COMPLETIONS}
  parallelism: {PARALLELISM}
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: work
          image: {image}
          command: {COMMAND}
"""
    )


def _complete(g: Gitops) -> bool:
    body = g.get(f"/api/v1/jobs?namespace={NS}") or []
    return any(r["name"] == "work" and r["status"] == "Complete" for r in body)


class JobSwarm(Swarm):
    def create(self, image: str, n: int, surge: int, start_first: bool) -> float:
        self.engine.services.create(  # type: ignore[no-untyped-call]
            image,
            command=COMMAND,
            name=self.NAME,
            mode=ServiceMode("replicated-job", replicas=n, concurrency=surge),
            restart_policy=RestartPolicy(condition="on-failure"),
            endpoint_spec=EndpointSpec(mode="dnsrr"),
        )
        return time.monotonic()

    def complete(self, n: int) -> bool:
        tasks: list[dict[str, Any]] = self.engine.api.tasks(  # type: ignore[no-untyped-call]
            filters={"service": self.NAME}
        )
        return sum(bool(t["Status"]["State"] == "complete") for t in tasks) >= n


def run(engine: Any, img: dict[str, str]) -> tuple[float, float]:
    """Seconds from the push (the create) to 10 completions, gitops' then Swarm's."""
    g = Gitops(engine)
    try:
        t0 = g.push(manifest(img["v1"]), "a job of 10")
        wait(lambda: _complete(g), 300)
        gitops = time.monotonic() - t0
    finally:
        g.stop()
    swarm = JobSwarm(engine)
    try:
        t0 = swarm.create(digest(engine, img["v1"]), COMPLETIONS, PARALLELISM, False)
        wait(lambda: swarm.complete(COMPLETIONS), 300)
        took = time.monotonic() - t0
    finally:
        swarm.remove()
    return gitops, took
