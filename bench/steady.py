"""Scenario 6: what a no-op reconcile costs with 300 pods on 3 nodes, and the reconciler's memory.

Three extra engines (``scripts/nodes up 3``), ten Deployments of 30 replicas each (no probes:
the pass is measured, not the prober), converged by a real ``gitops run``. Then:

- the ``gitops run`` process, converged and idle (a poll every 5 s, node checks, event
  streams): its resident memory (VmRSS, and the peak VmHWM) and CPU share over a window;
- in this process, a reconciler built exactly as ``gitops run`` builds it, on the same state
  directory, running passes back to back: wall and CPU time of each, and the Docker API
  requests each sends to each node, counted on the SDK's HTTP session (a response hook sees
  every request that reaches an engine). Two kinds of pass: a poll (``git fetch`` first) and
  one woken by a container event or probe verdict (no fetch).
"""

from __future__ import annotations

import collections
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker

from bench.sides import ROOT, Gitops, wait
from gitops.config.settings import NodeConfig, Settings
from gitops.runner import build

NODES = 3
DEPLOYMENTS, REPLICAS = 10, 30
PASSES = 30
IDLE_WINDOW = 10.0  # seconds of an idle `gitops run` whose CPU share is reported


def manifests(image: str) -> str:
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n"]
    for i in range(DEPLOYMENTS):
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web{i}
  namespace: bench
spec:
  replicas: {REPLICAS}
  selector:
    matchLabels: {{app: web{i}}}
  strategy:
    rollingUpdate: {{maxSurge: "100%", maxUnavailable: 0}}
  template:
    metadata:
      labels: {{app: web{i}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          image: {image}
""")
    return "---\n".join(docs)


def _nodes(verb: str, *args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "nodes"), verb, *args], check=True)


def _node_flags() -> list[str]:
    flags = []
    for i in range(1, NODES + 1):
        flags += ["--node", f"name=node{i},endpoint=unix:///run/gitops-nodes/node{i}.sock"]
    return flags


def _proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady(engine: Any, img: dict[str, str]) -> dict[str, Any]:
    _nodes("up", str(NODES))
    total = DEPLOYMENTS * REPLICAS
    g = Gitops(engine, ("--interval", "5s", *_node_flags()))
    try:
        t0 = g.push(manifests(img["v1"]), f"{total} pods")
        last = -1

        def converged() -> bool:
            nonlocal last
            pods = g.pods()
            running = sum(1 for p in pods if p.get("ready") == "1/1")
            if running // 50 != last // 50:  # progress, every 50 pods
                print(f"  steady: {running}/{total} pods ready", file=sys.stderr, flush=True)
            last = running
            return running == total and len(pods) == total

        wait(converged, 900)
        converge_s = time.monotonic() - t0
        per_node = collections.Counter(p["node"] for p in g.pods())
        time.sleep(3.0)  # the passes that follow convergence settle
        cpu0, w0 = _cpu_seconds(g.proc.pid), time.monotonic()
        time.sleep(IDLE_WINDOW)
        idle_cpu = (_cpu_seconds(g.proc.pid) - cpu0) / (time.monotonic() - w0)
        memory = _proc_status(g.proc.pid)
        state = g.dir / "state"
        g.proc.terminate()  # the containers stay; the in-process reconciler takes over
        g.proc.wait(30)
        passes = _passes(g.bare, state)
    finally:
        g.stop()  # removes every container of the bench instance on the main engine
        _remove_on_nodes()
        _nodes("down")
    return {
        "pods": total,
        "pods_per_node": dict(sorted(per_node.items())),
        "converge_s": converge_s,
        "rss_bytes": memory.get("VmRSS", 0),
        "peak_rss_bytes": memory.get("VmHWM", 0),
        "idle_cpu_share": idle_cpu,
        **passes,
    }


def _passes(repo: Path, state: Path) -> dict[str, Any]:
    """Passes back to back in this process, on the converged nodes."""
    nodes = tuple(
        NodeConfig(f"node{i}", f"unix:///run/gitops-nodes/node{i}.sock")
        for i in range(1, NODES + 1)
    )
    settings = Settings(repo=str(repo), state_dir=state, nodes=nodes, instance="bench")
    reconciler = build(settings).reconciler
    calls: collections.Counter[tuple[str, str]] = collections.Counter()
    for name, node in reconciler.nodes.items():

        def count(response: Any, *args: Any, node: str = name, **kwargs: Any) -> Any:
            path = response.request.path_url.split("?")[0]
            calls[(node, f"{response.request.method} {_generic(path)}")] += 1
            return response

        node.api.hooks["response"].append(count)  # type: ignore[attr-defined]
    figures: dict[str, Any] = {}
    for kind, fetch in (("poll", True), ("event", False)):
        reconciler.reconcile("warm-up", fetch=True)  # loads the commit, like the first pass
        walls, cpus = [], []
        calls.clear()
        changed = 0
        for _ in range(PASSES):
            w, c = time.perf_counter(), time.process_time()
            outcome = reconciler.reconcile(kind, fetch=fetch)
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
            changed += bool(outcome.applied and outcome.applied.changed)
        per_node: collections.Counter[str] = collections.Counter()
        kinds: collections.Counter[str] = collections.Counter()
        for (where, what), n in calls.items():
            per_node[where] += n
            kinds[what] += n
        figures[kind] = {
            "wall_median_s": statistics.median(walls),
            "wall_max_s": max(walls),
            "cpu_median_s": statistics.median(cpus),
            "api_calls_per_node": max(per_node.values()) / PASSES,
            "api_calls": {what: n / PASSES / NODES for what, n in sorted(kinds.items())},
            "passes_that_changed_something": changed,
        }
    figures["bench_process_max_rss_bytes"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    for node in reconciler.nodes.values():
        node.close()  # type: ignore[attr-defined]
    return figures


def _generic(path: str) -> str:
    """``/v1.41/containers/<id>/json`` -> ``/containers/{id}/json``: calls grouped by kind."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0].startswith("v1."):
        parts = parts[1:]
    return "/" + "/".join("{id}" if len(p) >= 32 else p for p in parts)


def _remove_on_nodes() -> None:
    for i in range(1, NODES + 1):
        try:
            client = docker.DockerClient(base_url=f"unix:///run/gitops-nodes/node{i}.sock")
        except docker.errors.DockerException:
            continue
        mine: dict[str, str | list[str] | bool] = {"label": "io.gitops.instance=bench"}
        try:
            for c in client.containers.list(all=True, sparse=True, filters=mine):
                c.remove(force=True)
            for net in client.networks.list(filters=mine):
                net.remove()
        finally:
            client.close()
