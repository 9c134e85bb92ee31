"""When to look again: after a pass that acted, a failed one, or one waiting for room.

Pure. A pass that changed something or left a deployment progressing looks again soon (a
rollout proceeds as pods become ready); one that started a rollback looks again at once; pods
no node can take are tried again on an interval (room may appear without any event); a
backed-off restart falls due at its time. Failures back off, doubling to a cap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from gitops.decide.plan import Plan
from gitops.decide.status import ResourceStatus
from gitops.model.verdicts import Health

REQUEUE_SOON: Final = 1.0  # seconds: a pass that changed something looks again quickly
PENDING_RETRY: Final = 5.0  # seconds: a pod no node can take is tried again
MAX_BACKOFF: Final = 300.0
INTERNAL_RETRY: Final = 1.0  # seconds before a pass that failed for an internal error retries


def after_pass(
    plan: Plan, resources: Iterable[ResourceStatus], rolling_back: bool, now: float
) -> float | None:
    busy = not plan.empty or any(r.health == Health.PROGRESSING for r in resources)
    soon = 0.0 if rolling_back else REQUEUE_SOON if busy else math.inf
    if plan.pending:
        soon = min(soon, PENDING_RETRY)
    if plan.wake_at is not None:
        soon = min(soon, max(0.0, plan.wake_at - now))
    return None if soon == math.inf else soon


def after_failure(delay: float, failures: int) -> float:
    """The back-off of the ``failures``-th failure in a row, starting at ``delay``."""
    return float(min(MAX_BACKOFF, delay * 2 ** (failures - 1)))
