"""Scenario 9 of bench/compare.py: one pod on every node (here: this machine's one engine).

gitops: a DaemonSet (RollingUpdate, maxUnavailable 1: stop-first, node by node). Swarm:
``docker service create --mode global`` with the same readiness check (HTTP each second),
updated stop-first, one task at a time. Both from nothing to Ready, then an update of each.
"""

from __future__ import annotations

import time
from typing import Any

from docker.types import EndpointSpec, ServiceMode

from bench.sides import (
    HEALTH,
    NAMESPACE,
    NS,
    Swarm,
    pod_template,
    side_by_side_converge,
    side_by_side_update,
)


def manifest(image: str) -> str:
    return (
        NAMESPACE
        + f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: web
  namespace: {NS}
spec:
  selector:
    matchLabels: {{app: web}}
"""
        + pod_template(image)
    )


class GlobalSwarm(Swarm):
    def create(self, image: str, n: int, surge: int, start_first: bool) -> float:
        self.engine.services.create(  # type: ignore[no-untyped-call]
            image,
            name=self.NAME,
            mode=ServiceMode("global"),
            healthcheck=HEALTH,
            init=True,
            stop_grace_period=10_000_000_000,
            update_config=self._update(surge, start_first),
            endpoint_spec=EndpointSpec(mode="dnsrr"),
        )
        return time.monotonic()


def converge(engine: Any, img: dict[str, str]) -> tuple[float, float]:
    return side_by_side_converge(engine, img, manifest, GlobalSwarm, 1)


def update(engine: Any, img: dict[str, str]) -> tuple[float, float]:
    return side_by_side_update(engine, img, manifest, GlobalSwarm, 1)
