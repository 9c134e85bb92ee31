"""The state database on PostgreSQL (``--state postgresql://…``): the one ``psycopg`` import.

Connections are kept in a small free list, taken for one transaction and given back when it
ended well; one that failed is closed, and the next transaction connects anew, at once. That is
what a reconciler needs through a restart of the server: ``psycopg_pool`` reconnects in the
background with a growing back-off, so the first pass after the server is back would wait for
its next attempt. Every call has a deadline (``CONNECT_TIMEOUT``, ``STATEMENT_TIMEOUT``): a
database that stopped answering is a ``StateUnavailable`` within seconds, not a hung pass.

``fence``, when set, runs in a transaction before its first write: a leader's check that its
term still holds (``gitops.state.lease``), in the same transaction as the write, so that a
write of a leader that lost its lease is refused by the database itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from gitops.errors import StateUnavailable
from gitops.state.database import POSTGRESQL, Result, Tx, redact

CONNECT_TIMEOUT = 3  # seconds
STATEMENT_TIMEOUT_MS = 10_000
KEEP_IDLE = 4  # connections kept for the next transactions
_WRITES = ("INSERT", "UPDATE", "DELETE")


class _PgTx:
    def __init__(self, cur: psycopg.Cursor[Any], fence: Callable[[Tx], None] | None) -> None:
        self._cur, self._fence = cur, fence

    def _check(self, sql: str) -> None:
        if self._fence is not None and sql.lstrip()[:6].upper() in _WRITES:
            fence, self._fence = self._fence, None  # once a transaction
            fence(self)

    def execute(self, sql: str, params: Sequence[object] = ()) -> Result:
        self._check(sql)
        return self._cur.execute(_placeholders(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._check(sql)
        self._cur.executemany(_placeholders(sql), [tuple(r) for r in rows])


class Session:
    """A connection of its own, outside the free list, for what lives as long as a session:
    a lease's advisory lock. Each statement commits by itself."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._conn: psycopg.Connection[Any] | None = None

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows selected; the connection is made on first use and again after a failure
        (which is a ``StateUnavailable``: a session lost is a lock lost)."""
        if self._conn is None or self._conn.closed:
            self._conn = self._db.connect(autocommit=True)
        try:
            cur = self._conn.execute(_placeholders(sql), tuple(params))
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            self.close()
            raise self._db.unavailable(exc) from None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(psycopg.Error):
                conn.close()


def _placeholders(sql: str) -> str:
    """Statements are written with ``?`` (sqlite3's paramstyle); psycopg's is ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase:
    dialect, shared = POSTGRESQL, True

    def __init__(self, url: str) -> None:
        self._url = url
        self.display = redact(url)
        self.fence: Callable[[Tx], None] | None = None
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    def connect(self, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A new connection of its own (a lease holds one for as long as it leads)."""
        try:
            return psycopg.connect(
                self._url,
                connect_timeout=CONNECT_TIMEOUT,
                autocommit=autocommit,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                application_name="gitops",
            )
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None
        except (ValueError, OSError) as exc:  # a malformed URL, an unknown host
            raise self.unavailable(exc) from None

    def session(self) -> Session:
        return Session(self)

    def unavailable(self, exc: BaseException) -> StateUnavailable:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for secret in _secrets(self._url):  # never in a message, whatever the driver said
            text = text.replace(secret, "***")
        return StateUnavailable(f"state database {self.display}: {text}")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        conn = self._take()
        ok = False
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield _PgTx(cur, self.fence)
            ok = True
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None
        finally:
            self._give_back(conn, ok)

    def _take(self) -> psycopg.Connection[Any]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return self.connect()

    def _give_back(self, conn: psycopg.Connection[Any], ok: bool) -> None:
        healthy = ok and not conn.closed and conn.info.transaction_status.name == "IDLE"
        with self._lock:
            if healthy and not self._closed and len(self._idle) < KEEP_IDLE:
                self._idle.append(conn)
                return
        with suppress(psycopg.Error):
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _secrets(url: str) -> list[str]:
    """The password of ``url``, in the forms a message could quote it."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except (psycopg.Error, ValueError):
        return []
    password = info.get("password")
    return [str(password)] if password else []
