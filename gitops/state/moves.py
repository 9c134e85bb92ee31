"""What moved on the nodes since a reader last looked, for the readers that keep a look at them
(the dashboard's pages, its event stream) while passes run.

One count of changes: each step a pass carries out (a pod made or removed, a pull begun) and
each change an engine's event stream tells (a container started, died, removed, its health
changed). A look taken at a lower count is out of date. While every node's event stream is
open (``watched``), a look at the current count is as good as a new one: nothing was told since,
so it needs no age limit of its own beyond a safety net, as Argo CD's UI trusts its cluster
cache while its watches run. A reader can wait for the count to move instead of polling.
"""

from __future__ import annotations

import threading


class Moves:
    def __init__(self) -> None:
        self._count = 0
        self._moved = threading.Condition()
        self._watched: set[str] = set()  # nodes whose event stream is open
        self._nodes: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return self._count

    def moved(self) -> None:
        with self._moved:
            self._count += 1
            self._moved.notify_all()

    def wait(self, after: int, timeout: float) -> bool:
        """True once the count is past ``after``; False when ``timeout`` passed first."""
        with self._moved:
            return self._moved.wait_for(lambda: self._count > after, timeout)

    def expect(self, nodes: frozenset[str]) -> None:
        """The nodes whose streams must all be open for ``watched``."""
        with self._moved:
            self._nodes = nodes

    def stream(self, node: str, open_: bool) -> None:
        """A node's event stream opened or ended. Either way a look taken before may have
        missed what happened while it was closed: the count moves."""
        with self._moved:
            if open_:
                self._watched.add(node)
            else:
                self._watched.discard(node)
            self._count += 1
            self._moved.notify_all()

    @property
    def watched(self) -> bool:
        """Every node's event stream is open: what changes on them is told."""
        nodes = self._nodes
        return bool(nodes) and nodes <= self._watched
