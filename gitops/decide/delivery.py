"""Delivery stage: has a given commit reached every node, healthy? Pure.

What ``POST /api/v1/sync?revision=SHA&wait=true`` and ``gitops sync --wait`` answer for CI.
A commit is *delivered* when the reconciler applies it (or a later commit that contains it),
every Deployment is Synced and Healthy, and no rollout is still in progress. It has *failed*
when it was rejected as invalid, a Deployment rolled back from it or failed its rollout, or
a Job of it failed (a PreSync hook among them).
Anything else is still *waiting*, with a progress line. Read from one status and the latest
rollout records, so it can be asked at any moment, as often as wanted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gitops.decide.status import SyncStatus
from gitops.errors import Reason
from gitops.manifests.model import WORKLOAD_KINDS
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Health, Result, Rollout, Sync

WAITING: Final = "Waiting"
SUCCEEDED: Final = "Succeeded"
FAILED_DELIVERY: Final = "Failed"
TIMED_OUT: Final = "TimedOut"
NOT_FOUND: Final = "NotFound"
HTTP_STATUS: Final = {SUCCEEDED: 200, FAILED_DELIVERY: 409, TIMED_OUT: 504, NOT_FOUND: 404}


@dataclass(frozen=True)
class Delivery:
    state: str  # WAITING | SUCCEEDED | FAILED_DELIVERY | NOT_FOUND (| TIMED_OUT from the caller)
    revision: str  # the commit asked about
    applied: str  # the commit the reconciler applies
    message: str
    deployments: tuple[dict[str, Any], ...] = ()
    applying: bool = False  # the commit (or a later one holding it) is the one being applied

    @property
    def done(self) -> bool:
        return self.state != WAITING

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "revision": self.revision,
            "applied": self.applied,
            "message": self.message,
            "deployments": list(self.deployments),
            "applying": self.applying,
        }


def judge(
    revision: str,
    status: SyncStatus,
    latest: Mapping[tuple[str, str], RolloutRecord | None],
    contains: Callable[[str, str], bool],
    fetched: bool = False,
    branch: str = "",
    only: tuple[str, str] | None = None,
) -> Delivery:
    """``contains(newer, older)``: is ``older`` the same commit as, or an ancestor of, ``newer``.
    ``latest``: each Deployment's newest rollout record. ``fetched``: git was read after the
    question was asked, so a commit the branch head does not contain is not on the branch.
    ``only``: judge one deployment (``rollout status``), not all of them."""
    resources = [r for r in status.resources if only is None or (r.namespace, r.name) == only]
    rows = tuple(_row(r, latest.get((r.namespace, r.name))) for r in resources)
    deployments = tuple(r for r in rows if r["kind"] in WORKLOAD_KINDS)

    def out(state: str, message: str, applying: bool = True) -> Delivery:
        return Delivery(state, revision, status.applied, message, deployments, applying)

    if not status.revision or not contains(status.revision, revision):
        seen = status.revision[:12] or "nothing yet"
        if fetched and status.reason != Reason.SOURCE_UNAVAILABLE:  # else git did not answer
            return out(
                NOT_FOUND,
                f"commit {revision[:12]} is not on branch {branch} (its head is {seen})",
                False,
            )
        return out(WAITING, f"the reconciler has not fetched {revision[:12]} (at {seen})", False)
    if not status.applied or not contains(status.applied, revision):
        if status.result == Result.FAILED:  # the commit (or a later one holding it) was rejected
            detail = "; ".join(status.errors[:3]) or status.message
            return out(FAILED_DELIVERY, f"commit rejected ({status.reason}): {detail}", False)
        return out(WAITING, f"{revision[:12]} is fetched, not yet applied", False)
    for d in deployments:
        if d["rolled_back"] or d["rollout"] == Rollout.FAILED:
            why = d["message"] if d["message"].startswith("rolled back") else d["reason"]
            if d["rollout"] == Rollout.FAILED:
                back = d["rolled_back_to"]
                why += f"; rolled back to {back[:12]}" if back else "; not rolled back"
            return out(FAILED_DELIVERY, f"deployment {d['namespace']}/{d['name']}: {why}")
    if status.reason == Reason.HOOK_FAILED:  # a PreSync Job failed: nothing of it rolls
        return out(FAILED_DELIVERY, "; ".join(status.errors[:4]) or status.message)
    for d in deployments:
        if d["kind"] == "Job" and d["health"] == Health.DEGRADED:
            return out(FAILED_DELIVERY, f"job {d['namespace']}/{d['name']}: {d['message']}")
    waiting = [
        d
        for d in deployments
        if d["sync"] != Sync.SYNCED
        or d["health"] != Health.HEALTHY
        or d["rollout"] == Rollout.PROGRESSING
    ]
    if waiting:
        return out(WAITING, "; ".join(_progress(d) for d in waiting))
    if status.result == Result.FAILED:
        return out(WAITING, f"last pass failed ({status.reason}): {status.message}")
    return out(SUCCEEDED, f"{len(deployments)} deployment(s) healthy at {status.applied[:12]}")


def _row(r: Any, rec: RolloutRecord | None) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "namespace": r.namespace,
        "name": r.name,
        "sync": r.sync,
        "health": r.health,
        "message": r.message,
        "replicas": r.replicas or {},
        "rollout": rec.result if rec else "",
        "reason": rec.reason if rec else "",
        # Pinned now to an older commit after a failed rollout. A finished rollback that is
        # the newest record is no verdict on a later commit: once a commit (a revert, an
        # undo) asks for that template itself, the pin is gone and the deployment is its own.
        "rolled_back": r.message.startswith("rolled back"),
        "rollout_commit": rec.commit if rec else "",
        "rolled_back_to": rec.rolled_back_to if rec else "",
    }


def _progress(d: dict[str, Any]) -> str:
    reps = d["replicas"]
    want = reps.get("desired", 0)
    line = (
        f"{d['namespace']}/{d['name']} {d['health']}: {reps.get('updated', 0)}/{want} updated, "
        f"{reps.get('ready', 0)}/{want} ready"
    )
    return line + (f" ({d['message']})" if d["message"] else "")
