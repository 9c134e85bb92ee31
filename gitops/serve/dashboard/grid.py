"""The map of what runs where: nodes as columns, workloads as rows, each cell the pods a node
runs of a workload with their commits and readiness. Pure: built from the rows the API serves
(``gitops get pods``, ``get nodes``, the sync status), so it is tested on plain data.

During a rollout a row holds pods of two commits; each row lists its commits newest first as
the pods' ages say, so the page can show old and new side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WORKLOAD_KINDS = frozenset({
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job",
    "CronJob",
})  # fmt: skip
SHORT = 7  # characters of a commit shown


@dataclass(frozen=True)
class Filters:
    """What the overview and the map show, as the URL's query keeps it ("" shows all)."""

    namespace: str = ""
    kind: str = ""
    health: str = ""
    sync: str = ""

    @classmethod
    def of(cls, arg: Mapping[str, Sequence[str]]) -> Filters:
        def one(name: str) -> str:
            return next(iter(arg.get(name, [])), "")[:253]

        return cls(one("namespace"), one("kind"), one("health"), one("sync"))

    def admits(self, kind: str, namespace: str, health: str, sync: str) -> bool:
        return (
            (not self.namespace or namespace == self.namespace)
            and (not self.kind or kind.lower() == self.kind.lower())
            and (not self.health or health == self.health)
            and (not self.sync or sync == self.sync)
        )

    def query(self) -> str:
        """The query string that keeps these filters (for links between pages)."""
        pairs = [(k, v) for k, v in self.__dict__.items() if v]
        from urllib.parse import urlencode  # noqa: PLC0415 - only the pages need it

        return urlencode(pairs)


@dataclass(frozen=True)
class PodMark:
    name: str
    commit: str  # short
    ready: bool
    status: str  # Running, CrashLoopBackOff, Pending, ...
    restarts: int


@dataclass(frozen=True)
class Row:
    kind: str
    namespace: str
    name: str
    health: str
    sync: str
    cells: tuple[tuple[PodMark, ...], ...]  # one per node, in the grid's node order
    commits: tuple[str, ...]  # the row's commits, newest first

    @property
    def rolling(self) -> bool:
        return len(self.commits) > 1


@dataclass(frozen=True)
class Grid:
    nodes: tuple[tuple[str, str], ...]  # (name, status)
    rows: tuple[Row, ...]


def build(
    pods: Iterable[Mapping[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
    resources: Iterable[Mapping[str, Any]],
    filters: Filters = Filters(),
) -> Grid:
    """``pods``: ``get pods`` rows; ``nodes``: ``get nodes`` rows; ``resources``: the sync
    status's resources (kind, namespace, name, health, sync)."""
    columns = {str(n["name"]): str(n.get("status", "")) for n in nodes}
    by_owner: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for p in pods:
        by_owner.setdefault((str(p["namespace"]), str(p.get("deployment") or "")), []).append(p)
        node = str(p.get("node") or "")
        if node and node not in columns:  # a pod on a node no longer configured: shown too
            columns[node] = "Unknown"
    order = tuple(sorted(columns))
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for r in resources:
        kind, ns, name = str(r["kind"]), str(r["namespace"]), str(r["name"])
        if kind not in WORKLOAD_KINDS or (ns, name) in seen:
            continue
        seen.add((ns, name))
        health, sync = str(r.get("health", "")), str(r.get("sync", ""))
        if filters.admits(kind, ns, health, sync):
            rows.append(_row(kind, ns, name, health, sync, by_owner.get((ns, name), []), order))
    for (ns, name), owned in sorted(by_owner.items()):  # pods of nothing in git (pruning)
        if name and (ns, name) not in seen and filters.admits("", ns, "Unknown", "OutOfSync"):
            kind = str(owned[0].get("ownerKind") or "Deployment")
            rows.append(_row(kind, ns, name, "Unknown", "OutOfSync", owned, order))
    rows.sort(key=lambda w: (w.namespace, w.name, w.kind))
    return Grid(tuple((n, columns[n]) for n in order), tuple(rows))


def _row(
    kind: str, ns: str, name: str, health: str, sync: str,
    pods: list[Mapping[str, Any]], order: tuple[str, ...],
) -> Row:  # fmt: skip
    cells: dict[str, list[PodMark]] = {n: [] for n in order}
    newest: dict[str, float] = {}
    for p in sorted(pods, key=lambda p: str(p["name"])):
        commit = str(p.get("commit") or "")[:SHORT]
        ready, _, total = str(p.get("ready", "0/0")).partition("/")
        mark = PodMark(str(p["name"]), commit, ready == total and total not in ("", "0"),
                       str(p.get("status", "")), int(p.get("restarts") or 0))  # fmt: skip
        node = str(p.get("node") or "")
        if node in cells:
            cells[node].append(mark)
        newest[commit] = max(newest.get(commit, 0.0), float(p.get("created") or 0.0))
    commits = tuple(sorted(newest, key=lambda c: -newest[c]))
    return Row(kind, ns, name, health, sync, tuple(tuple(cells[n]) for n in order), commits)
