"""The words status, history, metrics and the API answer with, as enums (``StrEnum``: each
member is its own string, so JSON and the API read exactly as before).

``Result`` of a reconcile pass; ``Sync`` and ``Health`` of a resource, as Argo CD shows them;
``Rollout``, how a deployment's revision ended.
"""

from __future__ import annotations

from enum import StrEnum


class Result(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PENDING = "Pending"  # no pass has run yet


class Sync(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    SKIPPED = "Skipped"  # a kind gitops does not run (its health is not assessed: "")
    UNKNOWN = "Unknown"


class Health(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    MISSING = "Missing"
    SUSPENDED = "Suspended"  # a paused rollout
    UNKNOWN = "Unknown"


class Rollout(StrEnum):
    PROGRESSING = "Progressing"
    COMPLETE = "Complete"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"
