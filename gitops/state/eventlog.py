"""The event log: Kubernetes-style Events in the state database, folded and bounded.

A repeat of an event (same object, type, reason and message) counts up the one row and moves
its last time, as Kubernetes' event correlator folds repeats. Rows older than ``RETENTION``
(Kubernetes keeps events an hour) go, and at most ``MAX_EVENTS`` stay. Every change takes the
next sequence number, so a watcher (``GET /api/v1/events?watch=true``) asks for what changed
after the last one it saw and waits for more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress

from gitops.errors import StateUnavailable
from gitops.model import events as notes
from gitops.model.eventlog import ObjectEvent, from_notification
from gitops.state.database import Database, scalar
from gitops.state.schema import migrate

log = logging.getLogger(__name__)

RETENTION = 3600.0
MAX_EVENTS = 5000
SHARED_POLL = 0.5  # seconds between reads of the last number, on a shared database
_COLUMNS = "kind, namespace, name, type, reason, message, first, last, count, node, seq"
_INSERT = (
    f"INSERT INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "  # noqa: S608 - constants
    "ON CONFLICT (kind, namespace, name, type, reason, message) DO UPDATE SET "
    "count = events.count + excluded.count, last = excluded.last, seq = excluded.seq,"
    " node = excluded.node"
)
_LAST = "SELECT COALESCE(MAX(seq), 0) FROM events"
_SELECT = f"SELECT {_COLUMNS} FROM events WHERE "  # noqa: S608 - conditions are constants too


class EventLog:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db, self.clock = db, clock
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        migrate(db)
        self._committed = self._last_seq()  # what readers see: rows up to it are written
        self._seq = self._committed
        self._expired_at = 0.0

    def _last_seq(self) -> int:
        with self.db.transaction() as db:
            return int(scalar(db, _LAST))

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
        with self.db.transaction() as db:
            # The next numbers after the last written, by this process or (a shared database)
            # by the leader before it: one writer at a time (the lease), so no two take one.
            seq = max(self._seq, int(scalar(db, _LAST)))
            for e in batch:
                seq += 1
                db.execute(_INSERT, (*e.key, e.first, e.last, e.count, e.node, seq))
            self._seq = seq
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
        with self.db.transaction() as db:
            rows = db.execute(_SELECT + " AND ".join(where) + " ORDER BY seq", args).fetchall()
        return [ObjectEvent(*row) for row in rows]

    @property
    def seq(self) -> int:
        """The last change written."""
        return self._committed

    def wait(self, after: int, timeout: float) -> bool:
        """True once something changed after ``after``; False when ``timeout`` passed first.
        On a shared database another process writes too (a follower's readers wait on what
        the leader writes): the last number is read again every ``SHARED_POLL`` seconds."""
        if not self.db.shared:
            with self._changed:
                return self._changed.wait_for(lambda: self._committed > after, timeout)
        deadline = time.monotonic() + timeout
        while True:
            with suppress(StateUnavailable):  # the readers' next look says so; waiting goes on
                self._committed = max(self._committed, self._last_seq())
            left = deadline - time.monotonic()
            if self._committed > after or left <= 0:
                return self._committed > after
            with self._changed:
                self._changed.wait(min(SHARED_POLL, left))


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
