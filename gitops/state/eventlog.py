"""The event log: Kubernetes-style Events in the state database, folded and bounded.

A repeat of an event (same object, type, reason and message) counts up the one row and moves
its last time, as Kubernetes' event correlator folds repeats. Rows older than ``RETENTION``
(Kubernetes keeps events an hour) go, and at most ``MAX_EVENTS`` stay. Every change takes the
next sequence number, so a watcher (``GET /api/v1/events?watch=true``) asks for what changed
after the last one it saw and waits for more.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from gitops.errors import StateUnavailable
from gitops.model import events as notes
from gitops.model.eventlog import ObjectEvent, from_notification
from gitops.state.sqlite import connection

log = logging.getLogger(__name__)

RETENTION = 3600.0
MAX_EVENTS = 5000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
  first REAL NOT NULL, last REAL NOT NULL, count INTEGER NOT NULL, node TEXT NOT NULL,
  UNIQUE (kind, namespace, name, type, reason, message)
);
CREATE INDEX IF NOT EXISTS events_by_seq ON events (seq);
"""
_COLUMNS = "kind, namespace, name, type, reason, message, first, last, count, node, seq"
_INSERT = (
    f"INSERT INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "  # noqa: S608 - constants
    "ON CONFLICT (kind, namespace, name, type, reason, message) DO UPDATE SET "
    "count = count + excluded.count, last = excluded.last, seq = excluded.seq, node = excluded.node"
)
_SELECT = f"SELECT {_COLUMNS} FROM events WHERE "  # noqa: S608 - conditions are constants too


class EventLog:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path, self.clock = path, clock
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        with self._connect() as db:
            db.executescript(_SCHEMA)
            self._seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
        self._committed = self._seq  # what readers see: rows up to it are written
        self._expired_at = 0.0

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connection(self.path)

    def record(self, found: Iterable[ObjectEvent]) -> None:
        """Write events (a pass's, in one transaction); a repeat folds into its row."""
        batch = list(found)
        if not batch:
            return
        with self._lock:
            self._write(batch)
            self._committed = self._seq
        with self._changed:
            self._changed.notify_all()

    def _write(self, batch: list[ObjectEvent]) -> None:
        with self._connect() as db:
            for e in batch:
                self._seq += 1
                db.execute(_INSERT, (*e.key, e.first, e.last, e.count, e.node, self._seq))
            now = self.clock()
            if now - self._expired_at > 60:  # bounded: old ones go, and the oldest past the cap
                self._expired_at = now
                db.execute("DELETE FROM events WHERE last < ?", (now - RETENTION,))
                db.execute(
                    "DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC "
                    "LIMIT 1 OFFSET ?)", (MAX_EVENTS,),
                )  # fmt: skip

    def list(
        self, namespace: str | None = None, kind: str = "", name: str = "", after: int = 0
    ) -> list[ObjectEvent]:
        """Events in the order they last changed; ``after``: only those changed since."""
        where = ["seq > ?", "last >= ?"]
        args: list[object] = [after, self.clock() - RETENTION]
        for column, value in (("namespace", namespace), ("kind", kind), ("name", name)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        with self._connect() as db:
            rows = db.execute(_SELECT + " AND ".join(where) + " ORDER BY seq", args).fetchall()
        return [ObjectEvent(*row) for row in rows]

    @property
    def seq(self) -> int:
        """The last change written."""
        return self._committed

    def wait(self, after: int, timeout: float) -> bool:
        """True once something changed after ``after``; False when ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._committed > after, timeout)


class Recorder:
    """Notifications become events of their objects as they come, and go on to the receivers
    (``forward``, for the kinds sent). While a pass judges its rollouts (``held``), the ones it
    raises wait, so the pass's events land in the order things happened: a rollout started,
    then what the pass did to pods, then how the rollout stands."""

    def __init__(
        self,
        log: EventLog,
        kind_of: Callable[[str, str], str],
        forward: Callable[[notes.Event], None],
    ) -> None:
        self.log, self.kind_of, self.forward = log, kind_of, forward
        self._local = threading.local()

    def __call__(self, note: notes.Event) -> None:
        held: list[notes.Event] | None = getattr(self._local, "held", None)
        if held is not None:
            held.append(note)
            return
        self._write([self._event(note)])
        self._send(note)

    @contextmanager
    def held(self) -> Iterator[list[notes.Event]]:
        self._local.held = []
        try:
            yield self._local.held
        finally:
            self._local.held = None

    def after_pass(self, held: list[notes.Event], found: list[ObjectEvent]) -> None:
        starts = [n for n in held if n.kind == notes.ROLLOUT_STARTED]
        rest = [n for n in held if n.kind != notes.ROLLOUT_STARTED]
        self._write([*map(self._event, starts), *found, *map(self._event, rest)])
        for note in held:
            self._send(note)

    def _event(self, note: notes.Event) -> ObjectEvent:
        kind = self.kind_of(note.namespace, note.name) if note.namespace else "Deployment"
        return from_notification(note, kind)

    def _write(self, batch: list[ObjectEvent]) -> None:
        try:
            self.log.record(batch)
        except StateUnavailable as exc:  # the work is done and the notification goes out
            log.warning("events not recorded: %s", exc)

    def _send(self, note: notes.Event) -> None:
        if note.kind in notes.KINDS:  # the kinds receivers are sent
            self.forward(note)
