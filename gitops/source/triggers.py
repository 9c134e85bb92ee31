"""What wakes the reconciler: an interval poll (apscheduler), a watch on a local repository's
refs (watchdog), a retry after back-off, an API call. Level-triggered: a trigger carries only
"go"; each pass re-reads git and the live state, so a burst of triggers makes one pass.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)
REQUEUE = "requeue"  # a pass looks again at what it started
RETRY = "retry"  # after a temporary failure, behind its back-off
# Wake-ups that say nothing about git: a probe verdict, a container event, a node's health, a
# pass looking again at a rollout. Everything else (startup, poll, push, webhook, API, retry
# after a failure) reads git first.
LIVE_ONLY = ("probe:", "engine:", "node", REQUEUE)


def reads_git(reasons: set[str]) -> bool:
    return any(not reason.startswith(LIVE_ONLY) for reason in reasons)


class Trigger:
    """A latch: any number of ``fire`` calls between two ``wait`` calls wake one pass."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reasons: set[str] = set()

    def fire(self, reason: str) -> None:
        with self._lock:
            self._reasons.add(reason)
        self._event.set()

    def wait(self, timeout: float | None = None) -> set[str]:
        """Block until fired (or timeout); return the reasons gathered, and reset."""
        self._event.wait(timeout)
        with self._lock:
            self._event.clear()
            reasons, self._reasons = self._reasons, set()
        return reasons


class Poller:
    """Fires the trigger every ``interval`` seconds with jitter, and once after a back-off."""

    def __init__(self, trigger: Trigger, interval: float, jitter: float | None = None) -> None:
        self.trigger, self.interval = trigger, interval
        # Jitter spreads many reconcilers' fetches so they do not hit the git server together.
        self.jitter = interval * 0.1 if jitter is None else jitter
        self._scheduler: Any = BackgroundScheduler(daemon=True)

    def start(self) -> None:
        self._scheduler.add_job(
            self.trigger.fire,
            "interval",
            seconds=self.interval,
            jitter=self.jitter or None,
            args=["poll"],
            id="poll",
            coalesce=True,
            max_instances=1,
        )
        self._scheduler.start()

    def retry_in(self, seconds: float, reason: str = RETRY) -> None:
        self._scheduler.add_job(
            self.trigger.fire,
            "date",
            run_date=datetime.now() + timedelta(seconds=seconds),
            args=[reason],
            id="retry",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)


# A ref changes by a write or a rename (git writes ``main.lock``, then moves it over ``main``).
_WRITES = frozenset(
    {
        EVENT_TYPE_CREATED,
        EVENT_TYPE_MODIFIED,
        EVENT_TYPE_MOVED,
        EVENT_TYPE_DELETED,
        EVENT_TYPE_CLOSED,
    }
)


class _RefHandler(FileSystemEventHandler):
    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WRITES:  # our own fetch opens and reads the refs
            return
        path = str(getattr(event, "dest_path", "") or event.src_path)
        # A push writes objects first and moves the ref last; only the ref matters.
        is_ref = "/refs/heads/" in path or path.endswith("packed-refs")
        if is_ref and not path.endswith(".lock"):
            self.trigger.fire("push")


class RefWatcher:
    """Watches a repository on this machine so a ``git push`` into it starts a pass at once.

    Only where refs live: ``refs/heads`` (recursively: branch names may hold '/') and the git
    directory itself (``packed-refs``), never ``objects``, whose directories a push creates
    and removes by the dozen (watching them cost an inotify watch each and made watchdog warn
    of races between adding and removing them)."""

    def __init__(self, trigger: Trigger, git_dir: Path) -> None:
        self.git_dir = git_dir
        self._observer: Any = Observer()
        handler = _RefHandler(trigger)
        self._observer.schedule(handler, str(git_dir), recursive=False)
        heads = git_dir / "refs" / "heads"
        heads.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(handler, str(heads), recursive=True)

    def start(self) -> None:
        self._observer.daemon = True
        self._observer.start()
        log.info("watching %s for pushes", self.git_dir)

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
