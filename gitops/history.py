"""Durable history in SQLite under the state directory: syncs and small facts (last good commit).

Survives restarts. Writes are rare (a row when something happened, not one per poll), so one
short-lived connection per call is simple and safe from any thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS syncs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started REAL NOT NULL,
  finished REAL NOT NULL,
  revision TEXT NOT NULL,
  applied TEXT NOT NULL,
  result TEXT NOT NULL,
  reason TEXT NOT NULL,
  message TEXT NOT NULL,
  trigger TEXT NOT NULL,
  created INTEGER NOT NULL DEFAULT 0,
  removed INTEGER NOT NULL DEFAULT 0,
  restarted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SyncRecord:
    started: float
    finished: float
    revision: str
    applied: str
    result: str
    reason: str
    message: str
    trigger: str
    created: int = 0
    removed: int = 0
    restarted: int = 0
    id: int | None = None


class History:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "gitops.db"
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = sqlite3.connect(self.path, timeout=10)
            try:
                with db:
                    yield db
            finally:
                db.close()

    def record(self, rec: SyncRecord) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO syncs (started, finished, revision, applied, result, reason, message,"
                " trigger, created, removed, restarted) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.started,
                    rec.finished,
                    rec.revision,
                    rec.applied,
                    rec.result,
                    rec.reason,
                    rec.message,
                    rec.trigger,
                    rec.created,
                    rec.removed,
                    rec.restarted,
                ),
            )

    def syncs(self, limit: int = 50) -> list[SyncRecord]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT started, finished, revision, applied, result, reason, message, trigger,"
                " created, removed, restarted, id FROM syncs ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [SyncRecord(*row) for row in rows]

    def get(self, key: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM facts WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO facts (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
