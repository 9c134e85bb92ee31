"""The nodes as the dashboard's pages show them, without asking the engines on every page.

A page of several lists (a resource view: pods, Services, claims) reads one look, and every
page and tab shares it: the reconciler's own last look when it is recent and nothing moved
after it, else a look of the dashboard's own, taken once however many tabs ask. A look is out
of date once something moved after it (the reconciler's ``moves``: a step a pass carried out,
a change an engine's event stream told) or a pass ended after it, so a page drawn on a change
sees that change. While every node's event stream is open, that is all that puts a look out
of date, as Argo CD's UI trusts its watched cluster cache: a look serves until the next move,
up to ``WATCHED_MAX_AGE`` as a safety net. While one is not, what changed there is not told,
and a look serves ``MAX_AGE``. While a page is open its event stream keeps the look warm, so
that moving between pages never waits on the engines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gitops.model.live import LiveState
from gitops.serve.readmodel import ReadModel

MAX_AGE = 2.0  # seconds a look serves the pages while a node's changes are not told
WATCHED_MAX_AGE = 30.0  # seconds it serves while every node's event stream tells them
WARM_MARGIN = 0.75  # seconds before it expires that an open page's stream looks again

Look = tuple[float, LiveState, int]  # when (the reconciler's clock), the look, ``moves`` then


class Looks:
    def __init__(self, model: ReadModel, clock: Callable[[], float] = time.time) -> None:
        self.model, self.clock = model, clock
        self._own: Look | None = None
        self._lock = threading.Lock()  # one look of its own at a time

    @property
    def max_age(self) -> float:
        return WATCHED_MAX_AGE if self.model.moves.watched else MAX_AGE

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
        moved, started = self.model.moves.count, self.clock()  # first: a move during it counts
        self._own = (started, self.model.look(), moved)
        return self._own

    def _fresh(self, max_age: float) -> Look | None:
        own = self._own
        if own is not None and own[0] < self.model.status.time:
            own = None  # a pass ended since, and may have changed what it saw
        moved, now = self.model.moves.count, self.clock()
        usable = [x for x in (self.model.last_look, own)
                  if x is not None and x[2] == moved and now - x[0] <= max_age]  # fmt: skip
        return max(usable, key=lambda x: x[0], default=None)
