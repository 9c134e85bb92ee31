"""The two systems under test, driven the way their users drive them, observed the same way.

gitops: a bare git repository, ``gitops run`` watching it, manifests pushed with ``git push``;
Ready is gitops' own verdict (its readiness probe passed), read from ``GET /api/v1/pods``.
Swarm: ``docker service create|update`` through the SDK on the same engine; Ready is Docker's
health status ``healthy`` from the service's containers. Both: busybox httpd with ``/healthz``,
an init process (gitops always; ``--init`` for Swarm), a 1 s readiness/health period, the image
already on the engine (Swarm gets it by digest so it does not ask the registry per task).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import docker
from docker.types import EndpointSpec, Healthcheck, RollbackConfig, ServiceMode, UpdateConfig

ROOT = Path(__file__).resolve().parents[1]
NS = "bench"
INSTANCE = "bench"
POLL = 0.05  # seconds between looks, the same for both sides


def wait(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate()`` held (bounded); raises after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(POLL)
    raise TimeoutError(f"not reached within {timeout:.0f}s")


def pod_template(image: str, more: str = "") -> str:
    """The pod every scenario runs (``template:`` of a workload's spec, at its indent): the
    web image, ready on its /healthz each second, as Swarm's HEALTH checks it; ``more``: one
    more line of its container (a volume mount)."""
    extra = f"          {more}\n" if more else ""
    return f"""  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: web
          image: {image}
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 1
            failureThreshold: 1
{extra}"""


NAMESPACE = f"""apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
---
"""


def manifest(image: str, replicas: int, surge: int, unavailable: int, deadline: int = 10) -> str:
    return (
        NAMESPACE
        + f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {NS}
  annotations:
    gitops.io/fail-fast: "true"
spec:
  replicas: {replicas}
  progressDeadlineSeconds: {deadline}
  selector:
    matchLabels: {{app: web}}
  strategy:
    rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}
"""
        + pod_template(image)
    )


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@b"}  # fmt: skip
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    return out.stdout.decode().strip()


class Gitops:
    def __init__(self, engine: docker.DockerClient, extra: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.dir = Path(tempfile.mkdtemp(prefix="gitops-bench-"))
        self.bare, self.work = self.dir / "repo.git", self.dir / "work"
        git(self.dir, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(self.dir, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")
        (self.work / "README").write_text("bench\n")
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", "start")
        git(self.work, "push", "-q", "origin", "main")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.secret = "bench-webhook-secret"
        env = {**os.environ, "GITOPS_WEBHOOK_SECRET": self.secret}
        cmd = [sys.executable, "-m", "gitops", "run", "--repo", str(self.bare),
               "--instance", INSTANCE, "--state-dir", str(self.dir / "state"),
               "--listen", self.url.removeprefix("http://"), "--interval", "60s", *extra]  # fmt: skip
        self.log = (self.dir / "gitops.log").open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait(lambda: self._get("/healthz") is not None, 30)

    def get(self, path: str) -> Any:
        """The running gitops' API answer at ``path``, None when it does not answer."""
        return self._get(path)

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return json.load(resp)
        except OSError:
            return None

    def push(self, text: str, message: str) -> float:
        """Commit the manifests and push; the moment the push returned."""
        (self.work / "app.yaml").write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", message)
        git(self.work, "push", "-q", "origin", "main")
        return time.monotonic()

    def pods(self) -> list[dict[str, Any]]:
        return [p for p in (self._get(f"/api/v1/pods?namespace={NS}") or []) if "containers" in p]

    def ready(self, image: str, n: int) -> bool:
        """Exactly ``n`` pods, all of ``image``, all ready (old ones gone)."""
        pods = self.pods()
        return len(pods) == n and all(
            p["ready"] == "1/1" and p["containers"][0]["image"] == image for p in pods
        )

    def ready_all(self, deployment: str, image: str, n: int) -> bool:
        """Exactly ``n`` pods of ``deployment``, all of ``image``, all ready."""
        pods = [p for p in self.pods() if p.get("deployment") == deployment]
        return len(pods) == n and all(
            p["ready"] == "1/1" and p["containers"][0]["image"] == image for p in pods
        )

    def complete(self) -> bool:
        """The newest rollout of the Deployment recorded Complete: what gitops rolls back to
        when the next one fails (pods all ready is not yet that record)."""
        body = self._get(f"/api/v1/rollouts/{NS}/web?limit=1") or {}
        rollouts = body.get("rollouts") or []
        return bool(rollouts) and rollouts[0]["result"] == "Complete"

    def containers(self) -> list[Any]:
        return self.engine.containers.list(
            sparse=True,
            filters={"label": ["io.gitops.instance=" + INSTANCE, "io.gitops.container=web"]},
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for c in self.engine.containers.list(
            all=True, filters={"label": "io.gitops.instance=" + INSTANCE}
        ):
            c.remove(force=True)
        for net in self.engine.networks.list(filters={"label": "io.gitops.instance=" + INSTANCE}):
            net.remove()
        for vol in self.engine.volumes.list(filters={"label": "io.gitops.instance=" + INSTANCE}):
            vol.remove(force=True)  # claims' volumes outlive their pods by design; not the bench's
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


HEALTH = Healthcheck(
    test=["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"],
    interval=1_000_000_000,
    timeout=1_000_000_000,
    retries=1,
    start_period=0,
)


class Swarm:
    NAME = "bench-web"

    def __init__(self, engine: docker.DockerClient) -> None:
        self.engine = engine
        if engine.info()["Swarm"]["LocalNodeState"] != "active":
            engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")

    def service(self) -> Any:
        return self.engine.services.get(self.NAME)  # type: ignore[no-untyped-call]

    def create(self, image: str, n: int, surge: int, start_first: bool) -> float:
        self.engine.services.create(  # type: ignore[no-untyped-call]
            image,
            name=self.NAME,
            mode=ServiceMode("replicated", replicas=n),
            healthcheck=HEALTH,
            init=True,
            stop_grace_period=10_000_000_000,
            update_config=self._update(surge, start_first),
            rollback_config=RollbackConfig(parallelism=surge, order=_order(start_first)),
            endpoint_spec=EndpointSpec(mode="dnsrr"),  # no ingress mesh: no IPVS here
        )
        return time.monotonic()

    @staticmethod
    def _update(surge: int, start_first: bool) -> UpdateConfig:
        return UpdateConfig(
            parallelism=surge,
            order=_order(start_first),
            failure_action="rollback",
            monitor=5_000_000_000,
            delay=0,
        )

    def update(self, image: str, surge: int, start_first: bool) -> float:
        self.service().update(
            image=image, update_config=self._update(surge, start_first), healthcheck=HEALTH,
            init=True,
        )  # fmt: skip
        return time.monotonic()

    def running(self) -> list[dict[str, Any]]:
        """The service's running containers, from one list call (no inspect: a container may
        vanish between a list and an inspect, and polling must not cost N calls)."""
        found: list[dict[str, Any]] = self.engine.api.containers(
            filters={"label": f"com.docker.swarm.service.name={self.NAME}"}
        )
        return found

    def ready(self, image: str, n: int) -> bool:
        found = self.running()
        sha = image.rsplit("@", 1)[-1]
        healthy = [c for c in found if "(healthy)" in c["Status"] and sha in c["Image"]]
        return len(healthy) == n and len(found) == n

    def remove(self) -> None:
        try:
            self.service().remove()
        except docker.errors.NotFound:
            return
        wait(lambda: not self.running(), 60)


GWBRIDGE = "docker_gwbridge"  # made by `swarm init`, left behind by `swarm leave`


def swarm_leave(engine: docker.DockerClient, gwbridge_was_there: bool) -> None:
    """Undo what the harness' ``swarm init`` did to the engine (nothing when it is inactive)."""
    if engine.info()["Swarm"]["LocalNodeState"] == "active":
        Swarm(engine).remove()
        engine.swarm.leave(force=True)
    if not gwbridge_was_there:
        for net in engine.networks.list(names=[GWBRIDGE]):
            net.remove()


def _order(start_first: bool) -> Literal["start-first", "stop-first"]:
    return "start-first" if start_first else "stop-first"


def digest(engine: docker.DockerClient, image: str) -> str:
    """``repo@sha256:…`` of a pushed image: how Swarm is told not to ask the registry."""
    return str(engine.images.get(image).attrs["RepoDigests"][0])


def side_by_side_converge(
    engine: Any, img: dict[str, str], text: Callable[[str], str], kind: type[Swarm], n: int
) -> tuple[float, float]:
    """Seconds from nothing to ``n`` ready pods of v1: gitops from the push of ``text(v1)``,
    then Swarm from creating the service (``kind``'s create says how: mode, mounts)."""
    g = Gitops(engine)
    try:
        t0 = g.push(text(img["v1"]), "v1 from nothing")
        wait(lambda: g.ready(img["v1"], n), 300)
        gitops = time.monotonic() - t0
    finally:
        g.stop()
    swarm = kind(engine)  # after gitops' side: the swarm is made only now
    v1 = digest(engine, img["v1"])
    try:
        t0 = swarm.create(v1, n, 1, False)
        wait(lambda: swarm.ready(v1, n), 300)
        took = time.monotonic() - t0
    finally:
        swarm.remove()
    return gitops, took


def side_by_side_update(
    engine: Any,
    img: dict[str, str],
    text: Callable[[str], str],
    kind: type[Swarm],
    n: int,
    settled: Callable[[Gitops], bool] = lambda g: True,
) -> tuple[float, float]:
    """Seconds of a stop-first update from v1 to v2, one at a time, on each side (gitops once
    v1 is ready and ``settled``, e.g. its rollout recorded Complete)."""
    g = Gitops(engine)
    try:
        g.push(text(img["v1"]), "v1")
        wait(lambda: g.ready(img["v1"], n) and settled(g), 300)
        t0 = g.push(text(img["v2"]), "v2")
        wait(lambda: g.ready(img["v2"], n), 300)
        gitops = time.monotonic() - t0
    finally:
        g.stop()
    swarm = kind(engine)
    v1, v2 = digest(engine, img["v1"]), digest(engine, img["v2"])
    try:
        swarm.create(v1, n, 1, False)
        wait(lambda: swarm.ready(v1, n), 300)
        t0 = swarm.update(v2, 1, False)
        wait(lambda: swarm.ready(v2, n), 300)
        took = time.monotonic() - t0
    finally:
        swarm.remove()
    return gitops, took
