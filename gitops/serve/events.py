"""``GET /api/v1/events``: the event log as Kubernetes serves it, an ``EventList``, or with
``watch=true`` a stream of ``{"type": "ADDED"|"MODIFIED", "object": Event}`` lines from after
``resourceVersion`` (Kubernetes' watch). ``for=KIND/NAME`` (as ``kubectl events --for``) keeps
one object's; ``namespace`` one namespace's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from gitops.model.eventlog import ObjectEvent, to_object
from gitops.serve import streams
from gitops.serve.streams import MAX_STREAMS, POLL, Stream
from gitops.state.eventlog import EventLog

KINDS = {
    "pod": "Pod", "po": "Pod", "pods": "Pod", "deployment": "Deployment", "deploy": "Deployment",
    "deployments": "Deployment", "statefulset": "StatefulSet", "sts": "StatefulSet",
    "daemonset": "DaemonSet", "ds": "DaemonSet", "job": "Job", "jobs": "Job",
    "cronjob": "CronJob", "cj": "CronJob", "node": "Node", "no": "Node", "nodes": "Node",
    "replicaset": "ReplicaSet", "rs": "ReplicaSet", "commit": "Commit",
    "service": "Service", "svc": "Service", "ingress": "Ingress", "ing": "Ingress",
    "persistentvolumeclaim": "PersistentVolumeClaim", "pvc": "PersistentVolumeClaim",
    "namespace": "Namespace", "ns": "Namespace",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler", "hpa": "HorizontalPodAutoscaler",
}  # fmt: skip


class EventRequestError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def target(text: str) -> tuple[str, str]:
    """``for=KIND/NAME`` as (Kind, name); ("", "") when not given."""
    if not text:
        return "", ""
    kind, slash, name = text.partition("/")
    if not slash or not name or kind.lower() not in KINDS or len(name) > 253:
        raise EventRequestError(400, "for: expected KIND/NAME, e.g. deployment/web or pod/web-x")
    return KINDS[kind.lower()], name


def answer(
    log: EventLog, namespace: str | None, wanted: tuple[str, str], watch: bool, after: int,
    disconnected: Callable[[], bool],
) -> dict[str, Any] | Stream:  # fmt: skip
    kind, name = wanted
    if not watch:
        found = log.list(namespace, kind, name, after)
        return {"apiVersion": "v1", "kind": "EventList",
                "metadata": {"resourceVersion": str(log.seq)},
                "items": [to_object(e) for e in found]}  # fmt: skip
    if not streams.take():
        raise EventRequestError(429, f"{MAX_STREAMS} streams are open already: try again later")
    return Stream(_watch(log, namespace, kind, name, after, disconnected), "application/json")


def _line(e: ObjectEvent) -> bytes:
    kind = "ADDED" if e.count == 1 else "MODIFIED"
    return (json.dumps({"type": kind, "object": to_object(e)}) + "\n").encode()


def _watch(
    log: EventLog, namespace: str | None, kind: str, name: str, after: int,
    disconnected: Callable[[], bool],
) -> Iterator[bytes]:  # fmt: skip
    seen = after
    try:
        while not disconnected():
            top = log.seq  # read first: whatever is written after comes in the next round
            for e in log.list(namespace, kind, name, seen):
                top = max(top, e.seq)  # a batch is written whole: what it saw is all there
                yield _line(e)
            seen = max(seen, top)  # past what this one does not want too: no busy loop
            log.wait(seen, POLL)
    finally:
        streams.give_back()
