"""The state database's schema: one ordered list of migrations, for SQLite and PostgreSQL alike.

A database records the migrations applied to it (``schema_migrations``); ``migrate`` applies
the ones it lacks, in order, each in its own transaction, and refuses a database written by a
newer gitops (a version it does not know): running on it could lose what that version keeps.
On PostgreSQL an advisory lock held for the migration's transaction lets several reconcilers
start at once: the second waits, then finds nothing to do.

Statements are written once. The two servers differ here in one word only: an id that counts
itself (``{serial}``). ``DOUBLE PRECISION`` is a REAL to SQLite, and PostgreSQL's ``REAL`` would
be a 4-byte float, too coarse for a time.

Migration 1 is what versions before migrations made with ``CREATE TABLE IF NOT EXISTS``: on
such a database it changes nothing, and is recorded.
"""

from __future__ import annotations

import logging
import time

from gitops.errors import PermanentError
from gitops.state.database import POSTGRESQL, Database, Result, Tx

log = logging.getLogger(__name__)

_SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", POSTGRESQL: "BIGSERIAL PRIMARY KEY"}
MIGRATION_LOCK = 7_318_240_231  # pg_advisory_xact_lock's key for a migration (any fixed number)

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "history, rollouts, jobs, facts, events and kept logs",
        (
            """CREATE TABLE IF NOT EXISTS syncs (
          id {serial},
          started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION NOT NULL,
          revision TEXT NOT NULL, applied TEXT NOT NULL, result TEXT NOT NULL,
          reason TEXT NOT NULL, message TEXT NOT NULL, trigger TEXT NOT NULL,
          created INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0,
          restarted INTEGER NOT NULL DEFAULT 0)""",
            "CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE IF NOT EXISTS rollouts (
          id {serial},
          namespace TEXT NOT NULL, deployment TEXT NOT NULL, revision INTEGER NOT NULL,
          commit_sha TEXT NOT NULL, template_hash TEXT NOT NULL,
          author TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL DEFAULT '',
          images TEXT NOT NULL DEFAULT '',
          started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION,
          result TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
          rolled_back_to TEXT NOT NULL DEFAULT '')""",
            "CREATE INDEX IF NOT EXISTS rollouts_by_deployment"
            " ON rollouts (namespace, deployment, revision)",
            """CREATE TABLE IF NOT EXISTS jobs (
          id {serial},
          namespace TEXT NOT NULL, job TEXT NOT NULL, template_hash TEXT NOT NULL,
          commit_sha TEXT NOT NULL,
          started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION NOT NULL,
          result TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
          succeeded INTEGER NOT NULL, failed INTEGER NOT NULL,
          UNIQUE (namespace, job, template_hash, finished))""",
            """CREATE TABLE IF NOT EXISTS events (
          seq BIGINT NOT NULL,
          kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
          type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
          first DOUBLE PRECISION NOT NULL, last DOUBLE PRECISION NOT NULL,
          count INTEGER NOT NULL, node TEXT NOT NULL,
          UNIQUE (kind, namespace, name, type, reason, message))""",
            "CREATE INDEX IF NOT EXISTS events_by_seq ON events (seq)",
            """CREATE TABLE IF NOT EXISTS kept_logs (
          namespace TEXT NOT NULL, name TEXT NOT NULL, node TEXT NOT NULL,
          workload TEXT NOT NULL, removed DOUBLE PRECISION NOT NULL, containers TEXT NOT NULL,
          PRIMARY KEY (namespace, name))""",
        ),
    ),
    (
        2,
        "leases: who leads, since when, in which term",
        (
            """CREATE TABLE IF NOT EXISTS leases (
          name TEXT PRIMARY KEY, holder TEXT NOT NULL, address TEXT NOT NULL,
          term BIGINT NOT NULL, acquired DOUBLE PRECISION NOT NULL,
          renewed DOUBLE PRECISION NOT NULL, backend BIGINT NOT NULL DEFAULT 0)""",
        ),
    ),
)
LATEST = MIGRATIONS[-1][0]
TABLES = ("syncs", "facts", "rollouts", "jobs", "events", "kept_logs")  # what migrate copies


class NewerSchema(PermanentError):
    """The database was written by a newer gitops."""


def migrate(db: Database) -> int:
    """Apply what ``db`` lacks; the number of migrations applied."""
    applied = 0
    with db.transaction() as tx:
        _serialize(db, tx)  # two CREATE TABLE IF NOT EXISTS at once collide on PostgreSQL
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)"
        )
    for version, name, statements in MIGRATIONS:
        with db.transaction() as tx:
            _serialize(db, tx)  # the next starter waits here, then skips
            if version == 1:
                _refuse_newer(db, tx.execute("SELECT MAX(version) FROM schema_migrations"))
            done = tx.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,))
            if done.fetchone() is not None:
                continue
            for sql in statements:
                tx.execute(sql.format(serial=_SERIAL[db.dialect]))
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            applied += 1
            log.info("state database %s: migration %d (%s) applied", db.display, version, name)
    return applied


def _serialize(db: Database, tx: Tx) -> None:
    """On PostgreSQL, one migrating transaction at a time (the lock ends with it)."""
    if db.dialect == POSTGRESQL:
        tx.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))


def _refuse_newer(db: Database, found: Result) -> None:
    row = found.fetchone()
    top = row[0] if row else None
    if top is not None and int(top) > LATEST:
        raise NewerSchema(
            f"state database {db.display} has schema version {top}; this gitops knows up to "
            f"{LATEST}: run the newer gitops, or a database of this version's own"
        )
