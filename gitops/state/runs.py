"""Job runs: the doing side of ``gitops.decide.workloads.job``'s verdicts.

After each pass every Job that ended is written once to the history (``jobs`` table: result,
reason, counts, times, commit) and told to the notification receivers (JobComplete,
JobFailed). An end the nodes remembered from before this process began (a restart, an empty
state directory) is written to the history, but not told again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gitops.model.events import JOB_COMPLETE, JOB_FAILED, Event
from gitops.model.labels import JobRecord
from gitops.model.live import LiveState
from gitops.state.history import History

log = logging.getLogger(__name__)
FRESH = 300.0  # an end older than this when first seen is history, not news


class JobRuns:
    def __init__(self, history: History, notify: Callable[[Event], None]) -> None:
        self.history, self.notify = history, notify
        self._seen: set[tuple[str, str, str, float]] = set()

    def track(self, ended: tuple[JobRecord, ...], live: LiveState, now: float) -> None:
        """``ended``: the records this pass wrote (Jobs that just ended); ``live``: what the
        nodes already remember."""
        runs = {(r.namespace, r.job, r.template_hash): r for r in (*live.records, *ended)}
        keys = {(r.namespace, r.job, r.template_hash, round(r.finished, 3)): r
                for r in runs.values()}  # fmt: skip
        new = keys.keys() - self._seen
        # Only the ends the nodes still remember: a CronJob's forgotten runs never return.
        self._seen = set(keys)
        for key in sorted(new):
            run = keys[key]
            if not self.history.record_job(run) or now - run.finished > FRESH:
                continue
            kind = JOB_COMPLETE if run.result == "Complete" else JOB_FAILED
            text = f"{run.result}: {run.reason}" + (f": {run.message}" if run.message else "")
            log.log(logging.INFO if kind == JOB_COMPLETE else logging.WARNING,
                    "job %s/%s %s", run.namespace, run.job, text)  # fmt: skip
            self.notify(Event(kind, text, now, run.namespace, run.job, run.commit, run.reason))
