"""Events worth telling people about, and how each notification format words them. Pure.

Emitted by the reconciler (sync failed), the rollout records (succeeded, failed, rolled back)
and the cluster (node NotReady, node Ready); delivered by ``gitops.report.notify``. The kinds are
named constants, so receivers can route on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

SYNC_FAILED: Final = "SyncFailed"
ROLLOUT_SUCCEEDED: Final = "RolloutSucceeded"
ROLLOUT_FAILED: Final = "RolloutFailed"
ROLLED_BACK: Final = "RolledBack"
NODE_NOT_READY: Final = "NodeNotReady"
NODE_READY: Final = "NodeReady"
JOB_COMPLETE: Final = "JobComplete"
JOB_FAILED: Final = "JobFailed"
KINDS: Final = (
    SYNC_FAILED,
    ROLLOUT_SUCCEEDED,
    ROLLOUT_FAILED,
    ROLLED_BACK,
    NODE_NOT_READY,
    NODE_READY,
    JOB_COMPLETE,
    JOB_FAILED,
)
# Recorded in the event log, not sent to receivers (a start says little a finish will not).
ROLLOUT_STARTED: Final = "RolloutStarted"
WARNINGS: Final = frozenset({SYNC_FAILED, ROLLOUT_FAILED, ROLLED_BACK, NODE_NOT_READY, JOB_FAILED})


@dataclass(frozen=True)
class Event:
    kind: str
    message: str
    time: float
    namespace: str = ""
    name: str = ""  # the deployment, or the node for node events
    commit: str = ""
    reason: str = ""
    rolled_back_to: str = ""

    @property
    def subject(self) -> str:
        if self.kind in (NODE_NOT_READY, NODE_READY):
            return f"node {self.name}"
        if self.kind in (JOB_COMPLETE, JOB_FAILED):
            return f"job {self.namespace}/{self.name}"
        if self.namespace:
            return f"deployment {self.namespace}/{self.name}"
        return "sync"


def generic(event: Event, source: str) -> dict[str, Any]:
    """The generic JSON body: every field, plus the source and a severity."""
    return {
        **asdict(event),
        "severity": "warning" if event.kind in WARNINGS else "info",
        "source": source,
    }


def slack(event: Event, source: str) -> dict[str, Any]:
    """A Slack incoming-webhook body (Mattermost, Rocket.Chat and Teams' Slack mode read it)."""
    icon = ":red_circle:" if event.kind in WARNINGS else ":large_green_circle:"
    commit = f" at `{event.commit[:12]}`" if event.commit else ""
    text = f"{icon} *{event.kind}* {event.subject}{commit}: {event.message}"
    return {"text": text, "username": "gitops", "attachments": [{"footer": source}]}


FORMATS: Final = {"generic": generic, "slack": slack}
