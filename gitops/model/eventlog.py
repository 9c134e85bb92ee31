"""Kubernetes Events as values: what happened to which object, folded as Kubernetes folds
repeats, and the ``v1`` Event object the API and ``gitops get events`` show. Pure.

Recorded by the reconciler (``gitops.state.eventlog`` keeps them): each decision it carries
out (Scheduled, Started, Killing, BackOff, FailedScheduling, ScalingUp/Down, Evicted), each
observation worth a look (Unhealthy, Failed image pulls) and each notification
(``gitops.model.events``: rollouts, sync failures, nodes, Jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from gitops.model import events as notes

NORMAL: Final = "Normal"
WARNING: Final = "Warning"

SCHEDULED: Final = "Scheduled"
PULLING: Final = "Pulling"
PULLED: Final = "Pulled"
CREATED: Final = "Created"
STARTED: Final = "Started"
KILLING: Final = "Killing"
BACK_OFF: Final = "BackOff"
UNHEALTHY: Final = "Unhealthy"
FAILED: Final = "Failed"  # an image that cannot be had, as the kubelet says it
FAILED_SCHEDULING: Final = "FailedScheduling"
FAILED_CREATE: Final = "FailedCreate"  # a pod its namespace's quota refused
SCALING_UP: Final = "ScalingUp"
SCALING_DOWN: Final = "ScalingDown"
EVICTED: Final = "Evicted"
ROLLOUT_STARTED: Final = "RolloutStarted"
ROLLOUT_COMPLETE: Final = "RolloutComplete"
ROLLOUT_FAILED: Final = "RolloutFailed"
ROLLED_BACK: Final = "RolledBack"
SYNC_FAILED: Final = "SyncFailed"
NODE_NOT_READY: Final = "NodeNotReady"
NODE_READY: Final = "NodeReady"
SUCCESSFUL_RESCALE: Final = "SuccessfulRescale"  # an autoscaler changed its target's scale
MESSAGE_LIMIT = 1024  # Kubernetes caps an event's message too (1 KiB in its API validation)


@dataclass(frozen=True)
class ObjectEvent:
    """One event, or a run of identical ones (``count``) from ``first`` to ``last``."""

    kind: str  # of the involved object: Pod, Deployment, Node, Job, ...
    namespace: str
    name: str
    type: str  # Normal or Warning
    reason: str
    message: str
    first: float
    last: float
    count: int = 1
    node: str = ""  # where it happened, when a node did it
    seq: int = 0  # the store's order of its last change: a watch resumes after one

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        """What makes two events the same one (Kubernetes' aggregation key, less its source)."""
        return (self.kind, self.namespace, self.name, self.type, self.reason, self.message)

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


def event(
    kind: str, namespace: str, name: str, reason: str, message: str, now: float,
    warning: bool = False, node: str = "", count: int = 1,
) -> ObjectEvent:  # fmt: skip
    return ObjectEvent(kind, namespace, name, WARNING if warning else NORMAL, reason,
                       message[:MESSAGE_LIMIT], now, now, count, node)  # fmt: skip


_FROM_NOTE = {
    notes.ROLLOUT_STARTED: ROLLOUT_STARTED,
    notes.ROLLOUT_SUCCEEDED: ROLLOUT_COMPLETE,
    notes.ROLLOUT_FAILED: ROLLOUT_FAILED,
    notes.ROLLED_BACK: ROLLED_BACK,
    notes.SYNC_FAILED: SYNC_FAILED,
    notes.NODE_NOT_READY: NODE_NOT_READY,
    notes.NODE_READY: NODE_READY,
    notes.JOB_COMPLETE: "Completed",
    notes.JOB_FAILED: "BackoffLimitExceeded",
}


def from_notification(note: notes.Event, workload_kind: str = "Deployment") -> ObjectEvent:
    """A notification as the event of the object it is about (a rollout's: its workload,
    of ``workload_kind``)."""
    if note.kind in (notes.NODE_NOT_READY, notes.NODE_READY):
        kind, namespace, name = "Node", "", note.name
    elif note.kind in (notes.JOB_COMPLETE, notes.JOB_FAILED):
        kind, namespace, name = "Job", note.namespace, note.name
    elif note.namespace:
        kind, namespace, name = workload_kind, note.namespace, note.name
    else:
        kind, namespace, name = "Commit", "", note.commit[:12] or "sync"
    warning = note.kind in notes.WARNINGS
    return event(kind, namespace, name, _FROM_NOTE.get(note.kind, note.kind), note.message,
                 note.time, warning)  # fmt: skip


def rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_object(e: ObjectEvent) -> dict[str, Any]:
    """The ``v1`` Event, in Kubernetes' own field names."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{e.name}.{e.seq:016x}",
            "namespace": e.namespace or "default",
            "creationTimestamp": rfc3339(e.first),
            "resourceVersion": str(e.seq),
        },
        "involvedObject": {"kind": e.kind, "namespace": e.namespace, "name": e.name},
        "reason": e.reason,
        "message": e.message,
        "type": e.type,
        "count": e.count,
        "firstTimestamp": rfc3339(e.first),
        "lastTimestamp": rfc3339(e.last),
        "source": {"component": "gitops", **({"host": e.node} if e.node else {})},
    }
