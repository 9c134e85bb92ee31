"""The nodes as the dashboard's pages show them, without asking the engines on every page.

A page of several lists (a resource view: pods, Services, claims) reads one look, and every
page and tab shares it: the reconciler's own last look when it is recent and nothing was done
after it (as Argo CD's UI reads its cluster cache), else a look of the dashboard's own, taken
at most once per ``MAX_AGE`` however many tabs ask. A look is out of date once a pass carried
out a step after it (a pod made or removed: the reconciler's ``acted`` count moved) or ended
after it, so a page drawn on a change sees that change. While a page is open its event stream
keeps the look warm, so that moving between pages never waits on the engines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gitops.model.live import LiveState
from gitops.serve.readmodel import ReadModel

MAX_AGE = 2.0  # seconds a look serves the pages
WARM_MARGIN = 0.75  # seconds before it expires that an open page's stream looks again

Look = tuple[float, LiveState, int]  # when (the reconciler's clock), the look, ``acted`` then


class Looks:
    def __init__(
        self, model: ReadModel, clock: Callable[[], float] = time.time, max_age: float = MAX_AGE
    ) -> None:
        self.model, self.clock, self.max_age = model, clock, max_age
        self._own: Look | None = None
        self._lock = threading.Lock()  # one look of its own at a time

    def get(self) -> tuple[float, LiveState]:
        """(when it was taken, the look)."""
        fresh = self._fresh(self.max_age)
        if fresh is None:
            with self._lock:
                fresh = self._fresh(self.max_age)  # another tab may have looked meanwhile
                if fresh is None:
                    fresh = self._look()
        return fresh[0], fresh[1]

    def keep_warm(self) -> None:
        """While a page is open (its event stream calls this), look again shortly before the
        shared look expires, so that the next page drawn finds one: one look however many tabs
        are open, and none while another is being taken."""
        if self._fresh(self.max_age - WARM_MARGIN) is not None:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._look()
        finally:
            self._lock.release()

    def _look(self) -> Look:
        acted, started = self.model.acted, self.clock()  # read first: a step during it counts
        self._own = (started, self.model.look(), acted)
        return self._own

    def _fresh(self, max_age: float) -> Look | None:
        own = self._own
        if own is not None and own[0] < self.model.status.time:
            own = None  # a pass ended since, and may have changed what it saw
        acted, now = self.model.acted, self.clock()
        usable = [x for x in (self.model.last_look, own)
                  if x is not None and x[2] == acted and now - x[0] <= max_age]  # fmt: skip
        return max(usable, key=lambda x: x[0], default=None)
