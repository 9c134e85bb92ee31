"""The report of one pass: the status on the board, the history row, the metrics and the
SyncFailed notification, written once, whatever way the pass ended.

None of it may end the process: a history that cannot be written is logged, and the status
and the metrics still say what happened. A history row is written when something changed or
the verdict did, not once a poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gitops.decide.status import SyncStatus
from gitops.errors import GitopsError
from gitops.model.applied import ApplyResult
from gitops.model.events import SYNC_FAILED, Event
from gitops.model.verdicts import Result
from gitops.report.metrics import Metrics
from gitops.state.board import Board
from gitops.state.history import History, SyncRecord

log = logging.getLogger(__name__)


class Reporter:
    def __init__(
        self,
        board: Board,
        metrics: Metrics,
        history: History,
        notify: Callable[[Event], None],
        clock: Callable[[], float],
    ) -> None:
        self.board, self.metrics, self.history = board, metrics, history
        self.notify, self.clock = notify, clock

    def report(
        self,
        status: SyncStatus,
        trigger: str,
        started: float,
        applied: ApplyResult | None,
        target: str,
        result: str,
    ) -> None:
        """Status, history, metrics and notifications of one pass, written once. None of it
        may end the process: a history that cannot be written is logged, and the status and
        metrics still say what happened."""
        previous = self.show(status, trigger)
        try:
            if applied is not None and target and target == previous.applied:
                # Same commit as last pass, yet pods changed: drift put right.
                self.metrics.corrected("create", applied.created)
                self.metrics.corrected("restart", applied.restarted)
                self.metrics.corrected("remove", applied.removed)
            self.metrics.reconciled(result, self.clock() - started)
            self._record_and_tell(previous, status, trigger, started, applied)
        except Exception:
            log.exception("the pass's report was not written in full")

    def show(self, status: SyncStatus, trigger: str) -> SyncStatus:
        """The status on the board, for readers (a follower's pass writes only this); the
        status it replaced."""
        previous, self.board.status = self.board.status, status
        self.board.trigger = trigger
        ended = dict(self.board.triggered)  # replaced whole: readers on other threads
        ended.update({reason: status.time for reason in trigger.split(",") if reason})
        self.board.triggered = ended
        return previous

    def _record_and_tell(
        self,
        previous: SyncStatus,
        status: SyncStatus,
        trigger: str,
        started: float,
        applied: ApplyResult | None,
    ) -> None:
        changed = applied is not None and applied.changed
        same = (previous.revision, previous.result, previous.message) == (
            status.revision,
            status.result,
            status.message,
        )
        if changed or not same:
            self._record(
                SyncRecord(
                    started=started,
                    finished=status.time,
                    revision=status.revision,
                    applied=status.applied,
                    result=status.result,
                    reason=status.reason,
                    message="\n".join((status.message, *status.errors)).strip(),
                    trigger=trigger,
                    created=applied.created if applied else 0,
                    removed=applied.removed if applied else 0,
                    restarted=applied.restarted if applied else 0,
                )
            )
        if status.result == Result.FAILED and not same:
            log.warning("sync of %s failed: %s", status.revision[:12], status.message)
            detail = "; ".join(status.errors[:3])
            self.notify(
                Event(
                    SYNC_FAILED,
                    status.message + (f": {detail}" if detail != status.message else ""),
                    status.time,
                    commit=status.revision,
                    reason=status.reason,
                )
            )
        elif changed:
            log.info("synced %s: %s", status.applied[:12], _summary(applied))

    def _record(self, record: SyncRecord) -> None:
        try:
            self.history.record(record)
        except GitopsError as exc:  # the status and the log still tell; the next change retries
            log.error("sync not recorded in the history: %s", exc)


def _summary(applied: ApplyResult | None) -> str:
    if applied is None:
        return "no change"
    return f"{applied.created} created, {applied.restarted} restarted, {applied.removed} removed"
