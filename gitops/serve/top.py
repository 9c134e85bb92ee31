"""``GET /api/v1/top/pods`` and ``/top/nodes``: what pods use now, from the engines' own stats
(``Node.usage``), as ``kubectl top`` shows metrics-server's: CPU in millicores over a second,
working-set memory in bytes. A node's is the sum of its managed pods' (an engine reports no
more of its machine), beside what it has allocatable."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitops.errors import GitopsError
from gitops.model.live import LiveState

Usage = Callable[[str, list[str]], dict[str, tuple[int, int]]]


def pod_usage(live: LiveState, namespace: str | None, usage: Usage) -> list[dict[str, Any]]:
    pods = [p for p in live.pods if not namespace or p.namespace == namespace]
    by_node: dict[str, list[str]] = {}
    for p in pods:
        by_node.setdefault(p.node, []).extend(c.id for c in p.app_containers())

    def ask(node: str) -> dict[str, tuple[int, int]]:
        try:
            return usage(node, by_node[node])
        except GitopsError:
            return {}  # a silent node's pods show no figures

    found: dict[str, tuple[int, int]] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(by_node)))) as pool:
        for part in pool.map(ask, list(by_node)):
            found.update(part)
    rows = []
    for p in pods:
        measured = [(c.meta.container or c.name, *found[c.id])
                    for c in p.app_containers() if c.id in found]  # fmt: skip
        if measured:
            rows.append({
                "namespace": p.namespace, "name": p.name, "node": p.node,
                "cpuMillis": sum(cpu for _, cpu, _ in measured),
                "memoryBytes": sum(mem for _, _, mem in measured),
                "containers": [{"name": n, "cpuMillis": cpu, "memoryBytes": mem}
                               for n, cpu, mem in measured],
            })  # fmt: skip
    return rows


def node_usage(pods: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for n in nodes:
        mine = [p for p in pods if p["node"] == n["name"]]
        cpu, memory = sum(p["cpuMillis"] for p in mine), sum(p["memoryBytes"] for p in mine)
        rows.append({
            "name": n["name"], "cpuMillis": cpu, "memoryBytes": memory, "pods": len(mine),
            "cpuPercent": round(100 * cpu / n["cpu_millis"]) if n.get("cpu_millis") else None,
            "memoryPercent": round(100 * memory / n["memory"]) if n.get("memory") else None,
        })  # fmt: skip
    return rows
