"""Leader election on PostgreSQL (``--leader-elect``): which of several ``gitops run`` sharing
one state database acts, and a term that fences a leader whose time ended.

As Kubernetes' leader election (client-go ``leaderelection``, a Lease object), with the
database as the object store:

- The lease is a row (``leases``: holder, the holder's API address, term, acquired, renewed,
  the holder's server backend), and a session-level advisory lock the holder keeps on a
  connection of its own. Times are the database server's clock, so the machines' clocks
  need not agree.
- The holder renews every ``retry`` seconds. A renewal names the holder and its term: after
  another took the lease over, it matches nothing, and the old holder steps down.
- A candidate takes the lease when it is free or its last renewal is older than ``duration``
  (15 s, as kube-controller-manager's). A holder frozen past that (SIGSTOP, a VM paused) still
  holds the advisory lock on its session: the candidate ends that session
  (``pg_terminate_backend``), then takes the lock and the row, with the next term.
- The holder acts only while its last successful renewal, by its own monotonic clock, is
  younger than ``renew_deadline`` (10 s < 15 s: it stops acting before anyone may take over).
  A process that wakes up after a freeze finds that at once, before it touches an engine.
- ``fence`` runs in every state write's transaction (``PostgresDatabase.fence``): it reads the
  row with ``FOR SHARE`` and refuses the write unless this holder's term is the current one.
  A takeover waits for that transaction, so a write lands before the next term or not at all.

A database that does not answer is a renewal that fails: after ``renew_deadline`` the holder
stops acting, and keeps what runs running (its containers and proxies are left as they are).
Reconciling without the database would be acting on a lease nobody can check: another process
may already hold it, and two leaders would fight over the same containers. When the database
answers again, the first candidate takes the expired lease with a new term.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gitops.errors import NotLeader, StateUnavailable
from gitops.state.database import Tx
from gitops.state.postgres import PostgresDatabase

log = logging.getLogger(__name__)
LOCK_TRIES = 10  # 0.5 s for a terminated session to let its lock go
LOCK_CLASS = 0x6709  # the advisory lock's first key: gitops' leases (the second: the name's hash)


@dataclass(frozen=True)
class Timing:
    duration: float = 15.0  # a lease not renewed for this long may be taken over
    renew_deadline: float = 10.0  # the holder acts only this long after its last renewal
    retry: float = 2.0  # seconds between tries (renewals, or a candidate's attempts)


@dataclass(frozen=True)
class Leader:
    """Who leads, as the row says."""

    holder: str
    address: str
    term: int
    age: float  # seconds since its last renewal, by the database's clock

    def as_dict(self) -> dict[str, object]:
        return {"holder": self.holder, "address": self.address, "term": self.term,
                "renewedSecondsAgo": round(self.age, 3)}  # fmt: skip


def identity() -> str:
    """A holder's name: host, process and a random part (a restarted process is a new one)."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(3)}"


class Lease:
    def __init__(
        self,
        db: PostgresDatabase,
        name: str,
        holder: str,
        address: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        changed: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self.db, self.name, self.holder, self.address = db, name, holder, address
        self.timing, self.clock, self.changed = timing, clock, changed
        self._session = db.session()
        self._lock = threading.Lock()
        self.term = 0  # the term this process holds; 0: none
        self._renewed = float("-inf")  # monotonic time of the last successful renewal
        self.leader: Leader | None = None  # as last read
        self.error = ""  # why the last step failed ("": it did not)
        self.changes = 0  # times this process became leader or stopped being it

    # -- asked by everything that acts ----------------------------------------------------
    @property
    def leading(self) -> bool:
        return self.term > 0 and self.clock() - self._renewed < self.timing.renew_deadline

    def check(self) -> None:
        """Raise ``NotLeader`` unless this process may act now."""
        if not self.leading:
            raise NotLeader(self._not_leading())

    def fence(self, tx: Tx) -> None:
        """In a state write's transaction: the write goes only with the current term."""
        self.check()
        row = tx.execute(
            "SELECT holder, term FROM leases WHERE name = ? FOR SHARE", (self.name,)
        ).fetchone()
        if row is None or (str(row[0]), int(row[1])) != (self.holder, self.term):
            raise NotLeader(f"lease {self.name}: term {self.term} is over; the write is refused")

    def _not_leading(self) -> str:
        if self.error:
            return f"lease {self.name} not held: {self.error}"
        leader = self.leader
        if leader is not None and leader.holder != self.holder:
            return f"lease {self.name} is held by {leader.holder} ({leader.address})"
        return f"lease {self.name} not held"

    # -- the election ---------------------------------------------------------------------
    def step(self) -> bool:
        """One try: renew when holding, else take the lease if it is free or expired.
        Whether this process leads afterwards."""
        with self._lock:
            was = self.leading
            try:
                if self.term:
                    self._renew()
                if not self.term:
                    self._acquire()
                self.error = ""
            except StateUnavailable as exc:
                self.error = str(exc)
                if self.term and not self.leading:  # the deadline passed without a renewal
                    log.warning("lease %s: stepping down, not renewed for %.0fs: %s",
                                self.name, self.timing.renew_deadline, exc)  # fmt: skip
                    self._lost()
            now = self.leading
        if now != was:
            self.changes += 1
            self.changed(now)
        return now

    def _renew(self) -> None:
        renew = (
            "UPDATE leases SET renewed = EXTRACT(EPOCH FROM clock_timestamp()), address = ?"
            " WHERE name = ? AND holder = ? AND term = ? RETURNING term"
        )
        args = (self.address, self.name, self.holder, self.term)
        try:
            rows = self._session.execute(renew, args)
        except StateUnavailable:  # the session was lost (ended by a candidate, a restart)
            rows = self._session.execute(renew, args)  # on a new one; a second failure counts
            if rows:
                self._try_lock()  # the lock went with the old session
        if rows:
            self._renewed = self.clock()
            self.leader = Leader(self.holder, self.address, self.term, 0.0)
            return
        log.warning("lease %s: term %d was taken over; stepping down", self.name, self.term)
        self._lost()

    def _acquire(self) -> None:
        self.leader = self.read()
        leader, timing = self.leader, self.timing
        if leader is not None and leader.holder != self.holder and leader.age < timing.duration:
            return  # held, and renewed in time
        if leader is not None and leader.holder != self.holder:
            # Expired. A holder frozen with its session open keeps the advisory lock: end it.
            self._session.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = ? AND objid = hashtext(?)::oid AND objsubid = 2 AND granted"
                " AND pid <> pg_backend_pid()",
                (LOCK_CLASS, self.name),
            )
        if not self._try_lock():
            return  # another candidate is at it, or the old session is not ended yet
        rows = self._session.execute(
            "INSERT INTO leases (name, holder, address, term, acquired, renewed, backend)"
            " VALUES (?, ?, ?, 1, EXTRACT(EPOCH FROM clock_timestamp()),"
            " EXTRACT(EPOCH FROM clock_timestamp()), pg_backend_pid())"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " address = excluded.address, term = leases.term + 1, acquired = excluded.acquired,"
            " renewed = excluded.renewed, backend = excluded.backend"
            " WHERE leases.renewed < EXTRACT(EPOCH FROM clock_timestamp()) - ?"
            " OR leases.holder = excluded.holder RETURNING term",
            (self.name, self.holder, self.address, timing.duration),
        )
        if not rows:  # renewed meanwhile by its holder: not ours after all
            self._session.execute(
                "SELECT pg_advisory_unlock(?, hashtext(?))", (LOCK_CLASS, self.name)
            )
            return
        self.term, self._renewed = int(rows[0][0]), self.clock()
        self.leader = Leader(self.holder, self.address, self.term, 0.0)
        log.info("lease %s: leading, term %d (%s)", self.name, self.term, self.holder)

    def _try_lock(self) -> bool:
        for _ in range(LOCK_TRIES):  # an ended session lets its locks go within moments
            got = self._session.execute(
                "SELECT pg_try_advisory_lock(?, hashtext(?))", (LOCK_CLASS, self.name)
            )
            if got and got[0][0]:
                return True
            time.sleep(0.05)
        return False

    def _lost(self) -> None:
        self.term, self._renewed = 0, float("-inf")
        self._session.close()  # the advisory lock goes with the session

    def read(self) -> Leader | None:
        rows = self._session.execute(
            "SELECT holder, address, term, EXTRACT(EPOCH FROM clock_timestamp()) - renewed"
            " FROM leases WHERE name = ?",
            (self.name,),
        )
        if not rows:
            return None
        holder, address, term, age = rows[0]
        return Leader(str(holder), str(address), int(term), float(age))

    def release(self) -> None:
        """A clean stop: the lease is marked expired, so a follower takes it at its next try
        rather than after ``duration`` (client-go's ReleaseOnCancel)."""
        with self._lock:
            if not self.term:
                return
            try:
                self._session.execute(
                    "UPDATE leases SET renewed = 0 WHERE name = ? AND holder = ? AND term = ?",
                    (self.name, self.holder, self.term),
                )
            except StateUnavailable as exc:
                log.warning("lease %s: not released: %s", self.name, exc)
            self._lost()

    def run(self, stop: threading.Event) -> None:
        """Try every ``retry`` seconds until ``stop``; then release."""
        while True:
            try:
                self.step()
            except Exception:  # the election must outlive any one failure
                log.exception("lease %s: a step failed", self.name)
            if stop.wait(self.timing.retry):
                break
        self.release()
