"""Live stage: what runs on the nodes, rebuilt from container labels alone.

In: the nodes. Out: ``LiveState`` with one ``PodInfo`` per replica, the namespaces' networks and
the claims' volumes. Reads only: a no-op reconcile costs two list calls per node (containers,
networks), a third (volumes) where claims are in use, and a fourth (the finished Jobs'
records) where Jobs are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from gitops.errors import NodeUnavailable
from gitops.model.labels import JobRecord
from gitops.model.live import ContainerInfo, LiveState, PodInfo, VolumeInfo
from gitops.nodes.base import Node


def group_pods(containers: Iterable[ContainerInfo]) -> tuple[PodInfo, ...]:
    by_pod: dict[tuple[str, str], list[ContainerInfo]] = defaultdict(list)
    for c in containers:
        if c.meta.pod:
            by_pod[(c.node, c.meta.pod)].append(c)
    pods = []
    for (node, name), cs in by_pod.items():
        first = cs[0].meta
        pods.append(
            PodInfo(
                node=node,
                namespace=first.namespace,
                deployment=first.deployment,
                name=name,
                template_hash=first.template_hash,
                commit=first.commit,
                containers=tuple(sorted(cs, key=lambda c: c.name)),
                prune=first.prune,
            )
        )
    return tuple(sorted(pods, key=lambda p: (p.namespace, p.deployment, p.created, p.name)))


def observe(nodes: Sequence[Node], volumes: bool = True, records: bool = True) -> LiveState:
    """Read every node in parallel; a node that does not answer is reported, not fatal.
    ``volumes=False`` skips the claims' volumes, ``records=False`` the finished Jobs' records
    (the caller knows there are none)."""

    def read(
        node: Node,
    ) -> tuple[list[ContainerInfo], frozenset[str], list[VolumeInfo], list[JobRecord]]:
        containers = node.list_containers()
        return (
            containers,
            frozenset(node.list_networks()),
            node.list_volumes() if volumes else [],
            node.list_records() if records else [],
        )

    containers: list[ContainerInfo] = []
    networks: dict[str, frozenset[str]] = {}
    unreachable: dict[str, str] = {}
    found: list[VolumeInfo] = []
    jobs: list[JobRecord] = []
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(nodes)))) as pool:
        futures = {node.name: pool.submit(read, node) for node in nodes}
        for name, fut in futures.items():
            try:
                cs, nets, vols, recs = fut.result()
            except NodeUnavailable as exc:
                unreachable[name] = str(exc)
                continue
            containers.extend(cs)
            networks[name] = nets
            found.extend(vols)
            jobs.extend(recs)
    services = {(c.node, c.meta.namespace, c.meta.service): c for c in containers if c.meta.service}
    return LiveState(
        group_pods(containers),
        networks,
        unreachable,
        services,
        tuple(sorted(found, key=_by)),
        tuple(sorted(jobs, key=lambda r: (r.namespace, r.job, r.template_hash, r.node))),
    )


def _by(v: VolumeInfo) -> tuple[str, str, str]:
    return (v.meta.namespace, v.meta.claim, v.node)


def pods_usage(
    nodes: Mapping[str, Node], pods: Sequence[PodInfo], usable: Callable[[str], bool]
) -> dict[str, tuple[int, int]]:
    """The running app containers' usage (``Node.usage``: CPU millicores, working-set bytes),
    every node at once, as a sample takes an engine a second. A node that does not answer
    (or is not ``usable``) gives none: its pods count as missing metrics."""
    by_node: dict[str, list[str]] = {}
    for p in pods:
        if usable(p.node) and p.node in nodes:
            ids = [c.id for c in p.app_containers() if c.state == "running"]
            by_node.setdefault(p.node, []).extend(ids)
    found: dict[str, tuple[int, int]] = {}
    if not by_node:
        return found
    with ThreadPoolExecutor(max_workers=len(by_node)) as pool:
        futures = [pool.submit(nodes[n].usage, ids) for n, ids in by_node.items()]
        for fut in futures:
            try:
                found.update(fut.result())
            except NodeUnavailable:
                continue
    return found
