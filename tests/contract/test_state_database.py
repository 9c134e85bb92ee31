"""The state database's contract, held by SQLite and by the real PostgreSQL server alike: the
history, the rollout records, Job runs, facts, the event log and kept logs read back what was
written, across a restart; migrations apply once, refuse a newer schema, and (PostgreSQL) let
two starters race; a database that cannot be reached is ``StateUnavailable`` within seconds,
and its message never carries the password."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.errors import StateUnavailable
from gitops.model.eventlog import event
from gitops.model.labels import JobRecord
from gitops.model.logs import LogLine
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Rollout
from gitops.state.database import Database, SqliteDatabase, open_database, redact, scalar
from gitops.state.eventlog import EventLog
from gitops.state.history import History, SyncRecord
from gitops.state.lastlogs import KeptLogs, KeptPod
from gitops.state.schema import LATEST, NewerSchema, migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(url: str, tmp_path: Path) -> Iterator[Database]:
    opened = open_database(url, tmp_path)
    yield opened
    opened.close()


def test_history_reads_back_what_it_wrote_across_a_restart(url: str, tmp_path: Path) -> None:
    history = History(open_database(url, tmp_path))
    history.record(SyncRecord(1.5, 2.25, "abc", "abc", "Succeeded", "", "ok", "startup", 3, 1))
    history.put("last_good_commit", "abc")
    history.put("last_good_commit", "def")  # an upsert
    first = history.start_rollout(RolloutRecord("demo", "web", "abc", "h1", 10.0, images=("a",)))
    second = history.start_rollout(RolloutRecord("demo", "web", "def", "h2", 20.0))
    history.finish_rollout(first, Rollout.COMPLETE.value, 11.0)
    run = JobRecord("demo", "migrate", "h9", "Complete", "", 1, 0, 5.0, 6.0, "abc", message="m")
    assert history.record_job(run) is True
    assert history.record_job(run) is False  # once

    again = History(open_database(url, tmp_path))  # a restart: what was written is there
    assert [s.revision for s in again.syncs()] == ["abc"]
    sync = again.syncs()[0]
    assert (sync.started, sync.finished, sync.created, sync.removed) == (1.5, 2.25, 3, 1)
    assert again.get("last_good_commit") == "def" and again.get("missing") is None
    rollouts = again.rollouts("demo", "web")
    assert [(r.revision, r.commit) for r in rollouts] == [(2, "def"), (1, "abc")]
    assert first.id is not None and second.id is not None and second.id > first.id
    assert rollouts[1].result == Rollout.COMPLETE and rollouts[1].images == ("a",)
    assert rollouts[1].finished == 11.0 and rollouts[0].finished is None
    assert again.rollout_counts() == [(Rollout.COMPLETE.value, "", False, 1)]
    assert again.first_rollouts() == {("demo", "web"): 10.0}
    assert [j.message for j in again.job_runs("demo", "migrate")] == ["m"]


def test_events_fold_and_watchers_see_each_change(db: Database) -> None:
    now = [100.0]
    log = EventLog(db, clock=lambda: now[0])
    for t in (100.0, 105.0):
        log.record([event("Pod", "demo", "web-1", "BackOff", "Back-off", t, True)])
    log.record([event("Pod", "demo", "web-1", "Started", "Started container web", 106.0)])
    folded, started = log.list("demo")
    assert (folded.count, folded.first, folded.last) == (2, 100.0, 105.0)
    assert started.seq > folded.seq and log.seq == started.seq
    assert [e.reason for e in log.list("demo", after=folded.seq)] == ["Started"]
    seen = log.seq
    threading.Timer(
        0.1, lambda: log.record([event("Node", "", "n1", "NodeReady", "", 107.0)])
    ).start()
    assert log.wait(seen, 5.0) is True and log.seq > seen
    assert EventLog(db, clock=lambda: now[0]).seq == log.seq  # a restart goes on counting


def test_kept_logs_survive_a_restart(db: Database) -> None:
    kept = KeptLogs({}, clock=lambda: 50.0, db=db)
    pod = KeptPod("demo", "web-1", "n1", "web", 40.0, (("web", (LogLine(1.0, "boom"),)),))
    kept._save(pod, [])
    kept._save(pod, [])  # the same pod again: replaced, not a second row
    again = KeptLogs({}, clock=lambda: 50.0, db=db)
    found = again.get("demo", "web-1")
    assert found is not None and found.lines("web") == (LogLine(1.0, "boom"),)


def test_migrations_apply_once_and_a_newer_schema_is_refused(db: Database) -> None:
    assert migrate(db) == LATEST
    assert migrate(db) == 0
    with db.transaction() as tx:
        assert scalar(tx, "SELECT MAX(version) FROM schema_migrations") == LATEST
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
            (LATEST + 1, "from the future", 0.0),
        )
    with pytest.raises(NewerSchema, match=f"schema version {LATEST + 1}"):
        migrate(db)


def test_a_database_of_the_versions_before_migrations_is_adopted(tmp_path: Path) -> None:
    """Its tables were made with CREATE TABLE IF NOT EXISTS: migration 1 keeps their rows."""
    import sqlite3

    path = tmp_path / "gitops.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE facts (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        old.execute("INSERT INTO facts VALUES ('last_good_commit', 'abc')")
    history = History(SqliteDatabase(path))
    assert history.get("last_good_commit") == "abc"


def test_two_starters_migrate_one_postgresql_database_at_once(postgres_url: str) -> None:
    dbs = [open_database(postgres_url, Path("/nonexistent")) for _ in range(2)]
    errors: list[BaseException] = []
    counts: list[int] = []

    def start(d: Database) -> None:
        try:
            counts.append(migrate(d))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(d,)) for d in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and sorted(counts) == [0, LATEST]
    for d in dbs:
        d.close()


def test_an_unreachable_server_is_state_unavailable_and_never_shows_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://gitops:s3cret-Pa55@127.0.0.1:9/gitops"  # nothing listens on port 9
    db = open_database(url, tmp_path)
    assert "s3cret" not in db.display and db.display.startswith("postgresql://gitops:***@")
    started = time.monotonic()
    with pytest.raises(StateUnavailable) as caught, db.transaction() as tx:
        tx.execute("SELECT 1")
    assert time.monotonic() - started < 5
    assert "s3cret" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_a_wrong_password_is_state_unavailable_without_it(
    postgres_url: str, tmp_path: Path
) -> None:
    user, _, rest = postgres_url.partition("@")
    wrong = user.rpartition(":")[0] + ":Wr0ng-Pa55w0rd@" + rest
    with pytest.raises(StateUnavailable) as caught, open_database(wrong, tmp_path).transaction():
        pass
    assert "Wr0ng" not in str(caught.value) and "password authentication failed" in str(
        caught.value
    )


def test_redact_hides_passwords_in_each_place_a_url_holds_them() -> None:
    assert redact("postgresql://u:p@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact("postgresql://u@h/d?sslmode=require&password=p") == (
        "postgresql://u@h/d?sslmode=require&password=***"
    )
    assert redact("sqlite:////var/lib/gitops/gitops.db") == "sqlite:////var/lib/gitops/gitops.db"


def test_state_migrate_copies_sqlite_into_postgresql_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """The CLI verb, as a user moving to two reconcilers runs it."""
    import json
    import subprocess
    import sys

    history = History(tmp_path)
    history.record(SyncRecord(1.0, 2.0, "abc", "abc", "Succeeded", "", "ok", "startup"))
    history.put("cordons", '["n2"]')
    started = history.start_rollout(RolloutRecord("demo", "web", "abc", "h1", 10.0))
    EventLog(history.db).record([event("Pod", "demo", "web-1", "Started", "Started", time.time())])
    cli = [sys.executable, "-m", "gitops", "state", "migrate",
           "--from", f"sqlite:///{tmp_path / 'gitops.db'}", "--to", postgres_url]  # fmt: skip
    done = subprocess.run([*cli, "-o", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["rows"]["syncs"] == 1 and answer["rows"]["events"] == 1
    assert answer["rows"]["facts"] >= 1 and answer["rows"]["rollouts"] == 1
    password = postgres_url.partition("@")[0].rpartition(":")[2]
    assert password not in done.stdout + done.stderr and "events: 1 row(s)" in done.stderr

    moved = History(open_database(postgres_url, tmp_path))
    assert moved.get("cordons") == '["n2"]' and [s.revision for s in moved.syncs()] == ["abc"]
    assert moved.rollouts("demo", "web")[0].id == started.id
    nxt = moved.start_rollout(RolloutRecord("demo", "web", "def", "h2", 20.0))
    assert nxt.revision == 2 and nxt.id is not None and started.id is not None
    assert nxt.id > started.id  # the server counts on after the copied ids
    assert [e.reason for e in EventLog(moved.db).list()] == ["Started"]

    again = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already holds state (table syncs)" in again.stderr
    assert password not in again.stderr
    missing = subprocess.run([*cli[:5], "--from", "sqlite:///nowhere/x.db", "--to", postgres_url],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 2 and "no such file" in missing.stderr
