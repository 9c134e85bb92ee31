"""What each dashboard page shows, gathered from the API's own rows (``App.rows``), the sync
status, the history, the event log and git: plain values the templates render. No HTML here,
and no escaping either: the template engine escapes every value it is given.
"""

from __future__ import annotations

import difflib
import functools
import json
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import yaml

from gitops.config.durations import format_duration
from gitops.errors import GitopsError
from gitops.manifests.edit import key_of
from gitops.manifests.load import load_documents
from gitops.model.eventlog import ObjectEvent
from gitops.model.live import LiveState
from gitops.serve import objects
from gitops.serve.api import App
from gitops.serve.dashboard.grid import WORKLOAD_KINDS, Filters, Grid, build
from gitops.source.git import CommitInfo

EVENTS_SHOWN = 50
HIDDEN = "(hidden)"  # what a Secret's value is shown as
OVERVIEW_EVENTS = 12  # the newest; the events page has more
SYNCS_SHOWN = 10
ROLLOUTS_SHOWN = 20
MAX_DIFF_LINES = 2000
PLURAL = {
    "Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
    "ReplicaSet": "replicasets", "ReplicationController": "replicationcontrollers",
    "Job": "jobs", "CronJob": "cronjobs", "Service": "services", "Ingress": "ingresses",
    "PersistentVolumeClaim": "persistentvolumeclaims", "ConfigMap": "configmaps",
    "PodDisruptionBudget": "poddisruptionbudgets", "Namespace": "namespaces",
    "Secret": "secrets",  # names and keys: never a value (``document``)
}  # fmt: skip


class Git(Protocol):
    """What the pages read of the repository (``gitops.source.git.GitSource`` has it)."""

    @property
    def display_url(self) -> str: ...

    def describe(self, commit: str) -> CommitInfo: ...

    def files_at(self, commit: str) -> Mapping[str, bytes]: ...

    def __hash__(self) -> int: ...  # a commit's parsed documents are kept per repository


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    author: str
    subject: str
    when: str  # "3m ago"

    @classmethod
    def of(cls, git: Git, sha: str, now: float) -> Commit | None:
        if not sha:
            return None
        try:
            info = git.describe(sha)
        except GitopsError:
            return cls(sha, sha[:7], "", "(not in the local mirror)", "")
        return cls(sha, sha[:7], info.author, info.subject, ago(info.committed, now))


def ago(when: float, now: float) -> str:
    return f"{format_duration(max(0.0, now - when))} ago" if when else ""


def events(
    app: App,
    namespace: str | None = None,
    objects: frozenset[tuple[str, str]] | None = None,
    shown: int = EVENTS_SHOWN,
) -> list[Any]:
    """The newest events, of ``objects`` ((kind, name) pairs) when given: one query."""
    log = app.model.events
    if log is None:
        return []
    found: list[ObjectEvent] = log.list(namespace, after=max(0, log.seq - 5 * shown))
    if objects is not None:
        found = [e for e in found if (e.kind, e.name) in objects]
    now = time.time()
    return [
        {"type": e.type, "reason": e.reason, "object": f"{e.kind}/{e.name}",
         "namespace": e.namespace, "message": e.message, "count": e.count,
         "last": ago(e.last, now), "node": e.node}
        for e in reversed(found[-shown:])
    ]  # fmt: skip


def overview(app: App, git: Git, filters: Filters) -> dict[str, Any]:
    status, now = app.model.status, time.time()
    resources = [asdict(r) for r in status.resources]
    shown = [r for r in resources
             if filters.admits(r["kind"], r["namespace"], r["health"], r["sync"])]  # fmt: skip
    totals: dict[str, dict[str, int]] = {"health": {}, "sync": {}}
    for r in shown:
        if r["health"]:
            totals["health"][r["health"]] = totals["health"].get(r["health"], 0) + 1
        totals["sync"][r["sync"]] = totals["sync"].get(r["sync"], 0) + 1
    syncs = [
        {**asdict(s), "when": ago(s.finished or s.started, now),
         "message": "\n".join(dict.fromkeys(s.message.splitlines())),  # a message once
         "took": format_duration(max(0.0, s.finished - s.started)) if s.finished else ""}
        for s in app.history.syncs(SYNCS_SHOWN)
    ]  # fmt: skip
    return {
        "repo": git.display_url,
        "branch": app.settings.branch,
        "path": app.settings.path,
        "head": Commit.of(git, status.revision, now),
        "applied": Commit.of(git, status.applied, now),
        "status": status,
        "checked": ago(status.time, now),
        "trigger": app.model.trigger,
        "totals": totals,
        "nodes": app.cluster.describe(),
        "syncs": syncs,
        "resources": shown,
        **choices(resources),
        "plural": PLURAL,
        "events": events(app, namespace=filters.namespace or None, shown=OVERVIEW_EVENTS),
    }


def choices(resources: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The filters' options: what the resources hold."""
    return {
        "namespaces": sorted({r["namespace"] for r in resources if r["namespace"]}),
        "kinds": sorted({r["kind"] for r in resources}),
        "healths": sorted({r["health"] for r in resources if r["health"]}),
        "sync_states": sorted({r["sync"] for r in resources}),
    }


def map_of(app: App, filters: Filters, live: LiveState) -> Grid:
    pods = app.rows("pods", filters.namespace or None, live) or []
    resources = [asdict(r) for r in app.model.status.resources]
    return build(pods, app.cluster.describe(), resources, filters)


def resource(
    app: App, git: Git, kind: str, namespace: str, name: str, seen: LiveState
) -> dict[str, Any] | None:
    """A resource's page from one look at the nodes: ``None`` when neither git nor the nodes
    know it."""
    plural = PLURAL.get(kind)
    if plural is None:
        return None
    status = next((r for r in app.model.status.resources
                   if (r.kind, r.namespace, r.name) == (kind, namespace, name)), None)  # fmt: skip
    row = next((r for r in app.rows(plural, namespace, seen) or [] if r["name"] == name), None)
    if status is None and row is None:
        return None
    now = time.time()
    pods = owned_by(app.rows("pods", namespace, seen) or [], kind, name)
    names = {p["name"] for p in pods}
    services = [s for s in app.rows("services", namespace, seen) or []
                if (kind == "Service" and s["name"] == name)
                or any(_selects(s, p.get("labels") or {}) for p in pods)]  # fmt: skip
    service_names = {s["name"] for s in services}
    endpoints = [e for e in app.rows("endpoints", namespace, seen) or []
                 if e["name"] in service_names]  # fmt: skip
    ingresses = [i for i in app.rows("ingresses", namespace, seen) or []
                 if (kind == "Ingress" and i["name"] == name)
                 or any(r["service"] in service_names for r in i.get("rules", []))]  # fmt: skip
    claims = [c for c in app.rows("persistentvolumeclaims", namespace, seen) or []
              if set(c.get("usedBy") or ()) & names
              or (kind == "PersistentVolumeClaim" and c["name"] == name)]  # fmt: skip
    applied = app.model.status.applied
    doc = document(git, applied, (kind, namespace, name)) if applied else None
    manifests = {(kind, namespace, name): doc} if doc else {}  # the live object's spec
    live = objects.to_object(plural, row, manifests) if row else None
    rollouts = [
        {**asdict(r), "when": ago(r.started, now)}
        for r in app.history.rollouts(namespace, name, ROLLOUTS_SHOWN)
    ] if kind in WORKLOAD_KINDS else []  # fmt: skip
    return {
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "status": status,
        "pods": [{**p, "age": ago(float(p.get("created") or 0), now)} for p in pods],
        "services": services,
        "endpoints": endpoints,
        "ingresses": ingresses,
        "claims": claims,
        "conditions": (live or {}).get("status", {}).get("conditions", []),
        "manifest": manifest_text(git, applied, (kind, namespace, name)) if applied else "",
        "live": yaml.safe_dump(json.loads(json.dumps(live, default=str)), sort_keys=False)
        if live
        else "",
        "changes": [c for c in app.model.changes if _mentions(c, namespace, name)],
        "applied": applied,
        "rollouts": rollouts,
        "events": events(app, namespace, frozenset({(kind, name)} | {("Pod", p) for p in names})),
    }


def owned_by(pods: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    """The pod rows of the workload ``kind``/``name`` (none for a kind that has no pods)."""
    if kind not in WORKLOAD_KINDS:
        return []
    return [p for p in pods if p.get("deployment") == name and p.get("ownerKind") in (kind, "")]


def _mentions(change: str, namespace: str, name: str) -> bool:
    """Whether a line of ``gitops diff`` is about the workload: its pods are NAME-xxxxx."""
    return f" {namespace}/{name}-" in change or f" {namespace}/{name} " in change


def _selects(service: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a Service's selector (as ``get services`` shows it: "k=v,k2=v2") takes a pod of
    these labels."""
    text = str(service.get("selector") or "")
    if not text or text == "<none>":
        return False
    pairs = [pair.partition("=") for pair in text.split(",")]
    return all(labels.get(k) == v for k, _, v in pairs)


def manifest_text(git: Git, commit: str, key: tuple[str, str, str]) -> str:
    """A resource's document as ``commit`` has it ("" when it has none)."""
    found = document(git, commit, key)
    return "" if found is None else yaml.safe_dump(found, sort_keys=False)


def document(git: Git, commit: str, key: tuple[str, str, str]) -> dict[str, Any] | None:
    """A resource's document as ``commit`` has it. A Secret's values never: only its keys."""
    try:
        found = _documents(git, commit).get(key)
    except GitopsError:
        return None
    if found is None or key[0] != "Secret":
        return found
    hidden = {f: {k: HIDDEN for k in found[f]} for f in ("data", "stringData")
              if isinstance(found.get(f), dict)}  # fmt: skip
    return {k: v for k, v in found.items() if k not in ("data", "stringData")} | hidden


@functools.lru_cache(maxsize=8)
def _documents(git: Git, commit: str) -> Mapping[tuple[str, str, str], Any]:
    """A commit's documents by key, parsed once: a commit never changes."""
    docs, _ = load_documents(git.files_at(commit))
    return {key: d.data for d in docs if (key := key_of(d.data)) is not None}


def diff(git: Git, key: tuple[str, str, str], older: str, newer: str) -> list[tuple[str, str]]:
    """The workload's manifest between two commits, as (class, line) pairs of a unified diff:
    "add", "del", "hunk" or ""."""
    before = manifest_text(git, older, key).splitlines()
    after = manifest_text(git, newer, key).splitlines()
    out: list[tuple[str, str]] = []
    for line in difflib.unified_diff(before, after, older[:12], newer[:12], lineterm=""):
        style = ("hunk" if line.startswith("@@") else "add" if line.startswith("+")
                 else "del" if line.startswith("-") else "")  # fmt: skip
        out.append((style, line))
        if len(out) >= MAX_DIFF_LINES:
            out.append(("hunk", f"... cut at {MAX_DIFF_LINES} lines"))
            break
    return out


def command_for(
    verb: str, kind: str, namespace: str, name: str, repo: str, branch: str, path: str,
    revision: int | None = None,
) -> str:  # fmt: skip
    """The CLI command that makes an action's commit, for a reconciler that does not push
    (``--write-back`` off): each value quoted for a POSIX shell."""
    words = ["gitops", "rollout", verb, f"{kind.lower()}/{name}", "-n", namespace]
    if revision is not None:
        words += ["--to-revision", str(revision)]
    words += ["--repo", repo] + (["--branch", branch] if branch != "main" else [])
    words += (["--path", path] if path else []) + ["--push"]
    return " ".join(shlex.quote(w) for w in words)


Describe = Callable[[str], CommitInfo]
