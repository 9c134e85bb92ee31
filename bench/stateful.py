"""Scenario 8 of bench/compare.py: three replicas, each with a named volume of its own.

gitops: a StatefulSet of 3 with a ``volumeClaimTemplate`` (OrderedReady, as Kubernetes makes
them). Swarm: a service of 3 with ``--mount type=volume,source={{.Service.Name}}-{{.Task.Slot}}``,
its per-task volume. Both gated on the same readiness (an HTTP check each second), both update
stop-first one at a time, as a database must (one writer on its volume).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker
from docker.types import EndpointSpec, Mount, ServiceMode

from bench.sides import (
    HEALTH,
    NAMESPACE,
    NS,
    Swarm,
    pod_template,
    side_by_side_converge,
    side_by_side_update,
)

N = 3


def manifest(image: str, n: int = N) -> str:
    head = (
        NAMESPACE
        + f"""apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {NS}
spec:
  clusterIP: None
  selector: {{app: web}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: {NS}
spec:
  replicas: {n}
  serviceName: web
  selector:
    matchLabels: {{app: web}}
"""
    )
    claims = """  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 64Mi}}
"""
    return head + pod_template(image, "volumeMounts: [{name: data, mountPath: /data}]") + claims


class VolumeSwarm(Swarm):
    def create(self, image: str, n: int, surge: int, start_first: bool) -> float:
        self.engine.services.create(  # type: ignore[no-untyped-call]
            image,
            name=self.NAME,
            mode=ServiceMode("replicated", replicas=n),
            healthcheck=HEALTH,
            init=True,
            stop_grace_period=10_000_000_000,
            mounts=[Mount("/data", "{{.Service.Name}}-{{.Task.Slot}}", type="volume")],
            update_config=self._update(surge, start_first),
            endpoint_spec=EndpointSpec(mode="dnsrr"),
        )
        return time.monotonic()

    def remove(self) -> None:
        super().remove()
        # Swarm keeps a task's stopped container a while; it holds the volume.
        label: dict[str, str | list[str] | bool] = {
            "label": f"com.docker.swarm.service.name={self.NAME}"
        }
        for c in self.engine.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)
        for i in range(1, N + 1):
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.volumes.get(f"{self.NAME}-{i}").remove(force=True)


def converge(engine: Any, img: dict[str, str]) -> tuple[float, float]:
    return side_by_side_converge(engine, img, manifest, VolumeSwarm, N)


def update(engine: Any, img: dict[str, str]) -> tuple[float, float]:
    return side_by_side_update(
        engine, img, manifest, VolumeSwarm, N, settled=lambda g: g.complete()
    )
