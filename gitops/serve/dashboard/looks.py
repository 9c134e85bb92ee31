"""The nodes as the dashboard's pages show them, without asking the engines on every page.

A page of several lists (a resource view: pods, Services, claims) reads one look, and every
page and tab shares it: the reconciler's own last look when it is recent and no change was made
after it (as Argo CD's UI reads its cluster cache), else a look of the dashboard's own, taken
at most once per ``MAX_AGE`` however many tabs ask, and dropped when a pass ends after it. A
page drawn on a change event always sees the pass that raised it: that pass's look, or a newer
one. While a page is open its event stream keeps the look warm, so that moving between pages
never waits on the engines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gitops.model.live import LiveState
from gitops.serve.readmodel import ReadModel

MAX_AGE = 2.0  # seconds a look serves the pages
WARM_MARGIN = 0.75  # seconds before it expires that an open page's stream looks again


class Looks:
    def __init__(
        self, model: ReadModel, clock: Callable[[], float] = time.time, max_age: float = MAX_AGE
    ) -> None:
        self.model, self.clock, self.max_age = model, clock, max_age
        self._own: tuple[float, LiveState] | None = None
        self._lock = threading.Lock()  # one look of its own at a time

    def get(self) -> tuple[float, LiveState]:
        """(when it was taken, the look), on the reconciler's clock."""
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._lock:
            fresh = self._fresh()  # another tab may have looked while this one waited
            if fresh is not None:
                return fresh
            started = self.clock()
            self._own = (started, self.model.look())
            return self._own

    def keep_warm(self) -> None:
        """While a page is open (its event stream calls this), look again shortly before the
        shared look expires, so that the next page drawn finds one: one look however many tabs
        are open, and none while another is being taken."""
        newest = self._fresh(self.max_age - WARM_MARGIN)
        if newest is not None or not self._lock.acquire(blocking=False):
            return
        try:
            self._own = (self.clock(), self.model.look())
        finally:
            self._lock.release()

    def _fresh(self, max_age: float | None = None) -> tuple[float, LiveState] | None:
        own = self._own
        if own is not None and own[0] < self.model.status.time:
            own = None  # a pass ended since, and may have changed what it saw
        known = [x for x in (self.model.last_look, own) if x is not None]
        newest = max(known, key=lambda x: x[0], default=None)
        limit = self.max_age if max_age is None else max_age
        if newest is not None and self.clock() - newest[0] <= limit:
            return newest
        return None
