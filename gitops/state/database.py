"""The state database behind one small interface: SQLite, the embedded default (a file in the
state directory), or PostgreSQL (``--state postgresql://…``), which several reconcilers share.

Every module of ``gitops.state`` speaks SQL through ``Database.transaction()``: a block that
commits when it ends well and rolls back otherwise, its statements written once, with ``?``
placeholders, in the SQL both servers take (``ON CONFLICT``, ``RETURNING``). The schema is
one list of migrations (``gitops.state.schema``). Whatever the server says is one temporary
error, ``StateUnavailable``: the pass that needed it fails and is retried, the process lives
on. A database URL is a secret (it may carry a password): only ``display`` is ever shown.

This module is the one ``sqlite3`` import; ``gitops.state.postgres`` the one ``psycopg`` import.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from gitops.errors import PermanentError, StateUnavailable

SQLITE, POSTGRESQL = "sqlite", "postgresql"
Row = tuple[Any, ...]  # what a row holds is what its statement selected


class Result(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...  # the columns selected, each with its name first

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> list[Row]: ...


class Tx(Protocol):
    """One transaction's statements."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Result: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...


def scalar(tx: Tx, sql: str, params: Sequence[object] = ()) -> Any:
    """The one value an aggregate (``MAX``, ``COUNT``) selects."""
    row = tx.execute(sql, params).fetchone()
    return None if row is None else row[0]


class Database(Protocol):
    dialect: str  # SQLITE or POSTGRESQL: what the schema's few differing words are
    display: str  # where it is, with no password: the only form logs and answers show
    shared: bool  # other processes write it too (a reader cannot rely on its own writes)

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def close(self) -> None: ...


class BadStateUrl(PermanentError):
    """``--state`` names no database gitops can use."""


def redact(url: str) -> str:
    """``url`` with its password (and a ``password=`` parameter) hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if "@" not in parts.netloc and "password=" not in parts.query.lower():
        return url  # nothing to hide (and a sqlite:/// URL keeps its empty host)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}" if ":" in user else netloc
    query = "&".join(
        "password=***" if p.lower().startswith("password=") else p
        for p in parts.query.split("&")
        if p
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def open_database(url: str | None, state_dir: Path) -> Database:
    """The database ``--state`` names: none is ``sqlite:///<state dir>/gitops.db``."""
    if not url:
        return SqliteDatabase(state_dir / "gitops.db")
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        path = url.partition("://")[2]
        if not path.startswith("/") or path == "/":
            raise BadStateUrl(f"--state {redact(url)}: sqlite:/// and an absolute file path")
        return SqliteDatabase(Path(path[1:] if path.startswith("//") else path))
    if scheme in ("postgresql", "postgres"):
        from gitops.state.postgres import PostgresDatabase  # noqa: PLC0415 - only when asked for

        return PostgresDatabase(url)
    raise BadStateUrl(f"--state {redact(url)}: a sqlite:///path or postgresql://user@host/db URL")


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[object] = ()) -> Result:
        return self._db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._db.executemany(sql, [tuple(r) for r in rows])


class SqliteDatabase:
    """One short-lived connection per transaction: writes are rare (a row when something
    happened), and a connection made in the thread that uses it is safe from any thread."""

    dialect, shared = SQLITE, False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = f"sqlite:///{path}"
        self._lock = threading.Lock()  # one writer at a time in this process: no busy waits

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=10)
                try:
                    with db:
                        yield _SqliteTx(db)
                finally:
                    db.close()
        except (sqlite3.Error, OSError) as exc:
            raise StateUnavailable(f"state database {self.path}: {exc}") from exc

    def close(self) -> None:
        pass
