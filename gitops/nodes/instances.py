"""Where each instance of a container restarted in place begins in its log, for the Docker node's
``read_logs`` (current instance, or ``previous``: the one before it).

The engine keeps one log for all of a container's instances and says only when the current
one started and when the last one finished; once the current instance has exited too, that
finish is its own, and the boundary before it is lost. The engine also records a start after
the process runs, so its first lines come before ``StartedAt`` (by about a millisecond on a
quiet machine; by more than 0.1 s on a loaded one, which cut a crashed pod's first line in CI).
So the node writes down each boundary itself when it starts a stopped container again: the
stopped instance's ``FinishedAt``, read before the start (a quick process may have ended its
next instance too by the time a look after the start is taken), on the engine's own clock (the
log's timestamps are on it too; the engine stops copying output before it records an exit, so
every line of that instance lies before it). A container this process created and never
restarted has one instance: its whole log is current, and there is no previous. Only for
containers it knows nothing of (made before a reconciler's restart) does it fall back to the
engine's times, with a margin.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from gitops.model.logs import parse_rfc3339

START_MARGIN = 0.1  # seconds a process's first lines may precede its recorded start
MAX_CONTAINERS = 4096  # remembered; the least recently touched are forgotten first
KEPT = 2  # boundaries a container keeps: its current and previous instances' beginnings

Span = tuple[float | None, float | None]  # (since, until) in the log; None: unbounded
NOTHING: Span = (1.0, 0.0)  # an empty span: no previous instance at all


class Instances:
    def __init__(self) -> None:
        # container -> the engine times its last instances began at (0.0: its first)
        self._marks: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def created(self, container_id: str) -> None:
        """A container this process made: one instance, beginning its log."""
        self._put(container_id, (0.0,))

    def stopped(self, state: Mapping[str, Any], container_id: str) -> None:
        """A container this process is about to start again, its engine state read while it is
        stopped: its ``FinishedAt`` is where its last instance ended (none: it never ran)."""
        finished = engine_time(str(state.get("FinishedAt") or ""))
        if state.get("Running") or finished <= 0:
            return
        with self._lock:
            known = self._marks.get(container_id)
        self._put(container_id, ((*known, finished) if known else (finished,))[-KEPT:])

    def span(self, container_id: str, state: Mapping[str, Any], previous: bool) -> Span:
        with self._lock:
            marks = self._marks.get(container_id)
            if marks is not None:
                self._marks.move_to_end(container_id)
        if marks:
            begin = marks[-1] or None
            if not previous:
                return (begin, None)
            if begin is None:
                return NOTHING
            before = marks[-2] if len(marks) > 1 else None  # unknown: from the log's start
            return (before or None, begin)
        start = _fallback_start(state)
        return (None, start or None) if previous else (start or None, None)

    def _put(self, container_id: str, marks: tuple[float, ...]) -> None:
        with self._lock:
            self._marks[container_id] = marks
            self._marks.move_to_end(container_id)
            while len(self._marks) > MAX_CONTAINERS:
                self._marks.popitem(last=False)


def _fallback_start(state: Mapping[str, Any]) -> float:
    """The current instance's beginning by the engine's times alone: a running container that
    was restarted begins where its previous instance finished; otherwise a margin before the
    recorded start (a restart stops, then starts: far longer than the margin lies between two
    instances)."""
    started = engine_time(str(state.get("StartedAt") or ""))
    finished = engine_time(str(state.get("FinishedAt") or ""))
    if 0 < finished < started:
        return finished
    return max(0.0, started - START_MARGIN) if started else 0.0


def engine_time(text: str) -> float:
    """An engine's RFC 3339 time; 0 for its "never" (year 1) or none."""
    try:
        when = parse_rfc3339(text)
    except ValueError:
        return 0.0
    return max(0.0, when)
