"""Durable history in the state database (``gitops.state.database``: SQLite under the state
directory, or PostgreSQL): syncs, rollout records, Job runs and small facts (last good commit).

Survives restarts. Writes are rare (a row when something happened, not one per poll). A
database that cannot be opened or written (a full disk, no file descriptor left, a server
that is down) raises ``StateUnavailable``, a temporary error: the pass that needed it fails
and is retried, the process lives on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from gitops.model.labels import JobRecord
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Rollout
from gitops.state.database import Database, SqliteDatabase, Tx, scalar
from gitops.state.facts import Facts
from gitops.state.schema import migrate


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
    def __init__(self, db: Database | Path) -> None:
        """``db``: the state database, or a state directory (its SQLite file, ``gitops.db``)."""
        self.db = SqliteDatabase(db / "gitops.db") if isinstance(db, Path) else db
        migrate(self.db)
        self.facts = Facts(self.get, self.put)  # the typed facts, parsed in one place

    @contextmanager
    def _connect(self) -> Iterator[Tx]:
        with self.db.transaction() as tx:
            yield tx

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

    # -- Job runs ---------------------------------------------------------------------------
    def record_job(self, run: JobRecord) -> bool:
        """A Job's end, once (True when it was not known yet)."""
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO jobs (namespace, job, template_hash, commit_sha, started,"
                " finished, result, reason, message, succeeded, failed)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    run.namespace, run.job, run.template_hash, run.commit, run.started,
                    run.finished, run.result, run.reason, run.message, run.succeeded, run.failed,
                ),
            )  # fmt: skip
            return cur.rowcount > 0

    def job_runs(self, namespace: str, job: str, limit: int = 50) -> list[JobRecord]:
        """A Job's ends, newest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT namespace, job, template_hash, result, reason, succeeded, failed,"
                " started, finished, commit_sha, message FROM jobs"
                " WHERE namespace = ? AND job = ? ORDER BY finished DESC LIMIT ?",
                (namespace, job, limit),
            ).fetchall()
        return [
            JobRecord(ns, name, h, res, why, ok, bad, start, end, commit, message=msg)
            for ns, name, h, res, why, ok, bad, start, end, commit, msg in rows
        ]

    # -- rollouts ---------------------------------------------------------------------------
    _SELECT_ROLLOUTS = (
        "SELECT namespace, deployment, revision, commit_sha, template_hash, author, subject,"
        " images, started, finished, result, reason, rolled_back_to, id FROM rollouts"
        " WHERE namespace = ? AND deployment = ? ORDER BY revision DESC LIMIT ?"
    )

    def rollout_counts(self) -> list[tuple[str, str, bool, int]]:
        """(result, reason, rolled back, count) of every finished rollout: what metrics count."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT result, reason, rolled_back_to != '', count(*) FROM rollouts "
                "WHERE finished IS NOT NULL GROUP BY 1, 2, 3"
            ).fetchall()
        return [(str(r[0]), str(r[1]), bool(r[2]), int(r[3])) for r in rows]

    def rollouts(self, namespace: str, deployment: str, limit: int = 50) -> list[RolloutRecord]:
        """Newest first."""
        with self._connect() as db:
            rows = db.execute(self._SELECT_ROLLOUTS, (namespace, deployment, limit)).fetchall()
        return [_rollout(row) for row in rows]

    def first_rollouts(self) -> dict[tuple[str, str], float]:
        """When each workload's first recorded rollout began: its age, as a Deployment's
        creationTimestamp is (its pods' would be the age of its last rollout)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT namespace, deployment, MIN(started) FROM rollouts "
                "GROUP BY namespace, deployment"
            ).fetchall()
        return {(str(ns), str(name)): float(t) for ns, name, t in rows}

    def latest_rollout(self, namespace: str, deployment: str) -> RolloutRecord | None:
        found = self.rollouts(namespace, deployment, 1)
        return found[0] if found else None

    def start_rollout(self, rec: RolloutRecord) -> RolloutRecord:
        """Insert ``rec`` as the next revision of its deployment."""
        with self._connect() as db:
            top = scalar(
                db,
                "SELECT COALESCE(MAX(revision), 0) FROM rollouts"
                " WHERE namespace = ? AND deployment = ?",
                (rec.namespace, rec.deployment),
            )
            rec = replace(rec, revision=int(top) + 1)
            cur = db.execute(
                "INSERT INTO rollouts (namespace, deployment, revision, commit_sha, template_hash,"
                " author, subject, images, started, finished, result, reason, rolled_back_to)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (
                    rec.namespace,
                    rec.deployment,
                    rec.revision,
                    rec.commit,
                    rec.template_hash,
                    rec.author,
                    rec.subject,
                    json.dumps(list(rec.images)),
                    rec.started,
                    rec.finished,
                    rec.result,
                    rec.reason,
                    rec.rolled_back_to,
                ),
            )
            row = cur.fetchone()
            return replace(rec, id=None if row is None else int(row[0]))

    def finish_rollout(
        self,
        rec: RolloutRecord,
        result: str,
        finished: float,
        reason: str = "",
        rolled_back_to: str = "",
    ) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE rollouts SET result = ?, finished = ?, reason = ?, rolled_back_to = ?"
                " WHERE id = ?",
                (result, finished, reason or rec.reason, rolled_back_to, rec.id),
            )


def _rollout(row: tuple[object, ...]) -> RolloutRecord:
    (
        ns,
        dep,
        revision,
        commit,
        template_hash,
        author,
        subject,
        images,
        started,
        finished,
        result,
        reason,
        back,
        rid,
    ) = row
    return RolloutRecord(
        namespace=str(ns),
        deployment=str(dep),
        revision=int(revision),  # type: ignore[call-overload]
        commit=str(commit),
        template_hash=str(template_hash),
        author=str(author),
        subject=str(subject),
        images=tuple(json.loads(str(images) or "[]")),
        started=float(started),  # type: ignore[arg-type]
        finished=None if finished is None else float(finished),  # type: ignore[arg-type]
        result=Rollout(str(result)),
        reason=str(reason),
        rolled_back_to=str(back),
        id=int(rid),  # type: ignore[call-overload]
    )
