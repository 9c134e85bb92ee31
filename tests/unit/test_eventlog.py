"""The event log on a real SQLite file: repeats fold into one event with a count, old ones
go after the retention, at most MAX_EVENTS stay, and a watcher wakes for a change."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gitops.model import events as notes
from gitops.model.eventlog import event, from_notification, to_object
from gitops.state import eventlog
from gitops.state.database import SqliteDatabase
from gitops.state.eventlog import EventLog


def test_repeats_fold_into_one_event_counted_from_first_to_last(tmp_path: Path) -> None:
    now = [100.0]
    log = EventLog(SqliteDatabase(tmp_path / "db"), clock=lambda: now[0])
    for t in (100.0, 105.0, 130.0):
        log.record([event("Pod", "demo", "web-1", "BackOff", "Back-off restarting", t, True)])
    log.record([event("Pod", "demo", "web-1", "Started", "Started container web", 131.0)])
    folded, started = log.list("demo")
    assert (folded.count, folded.first, folded.last, folded.type) == (3, 100.0, 130.0, "Warning")
    assert started.seq > folded.seq == 3 and log.seq == 4
    shown = to_object(folded)
    assert shown["kind"] == "Event" and shown["involvedObject"] == {
        "kind": "Pod", "namespace": "demo", "name": "web-1"}  # fmt: skip
    assert shown["count"] == 3 and shown["firstTimestamp"] == "1970-01-01T00:01:40Z"
    assert [e.reason for e in log.list("demo", "Pod", "web-1", after=3)] == ["Started"]
    assert log.list("other") == []
    again = EventLog(
        SqliteDatabase(tmp_path / "db"), clock=lambda: now[0]
    )  # a restart keeps them, and the order
    assert again.seq == 4 and len(again.list()) == 2
    now[0] += eventlog.RETENTION + 200
    assert again.list() == []


def test_at_most_max_events_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventlog, "MAX_EVENTS", 10)
    log = EventLog(SqliteDatabase(tmp_path / "db"), clock=lambda: 1000.0)
    for i in range(25):
        log.record([event("Pod", "demo", f"p{i}", "Scheduled", "placed", 1000.0)])
        log._expired_at = 0.0  # bound every time here (a minute apart in a real run)
    names = [e.name for e in log.list()]
    assert len(names) <= 11 and names[-1] == "p24"


def test_a_watcher_wakes_for_a_change(tmp_path: Path) -> None:
    log = EventLog(SqliteDatabase(tmp_path / "db"))
    assert log.wait(0, 0.05) is False
    threading.Timer(
        0.1, lambda: log.record([event("Node", "", "n1", "NodeReady", "", 1.0)])
    ).start()
    assert log.wait(0, 5.0) is True


def test_a_notification_is_the_event_of_its_object() -> None:
    failed = from_notification(notes.Event(notes.ROLLOUT_FAILED, "boom", 5.0, "demo", "db"),
                               "StatefulSet")  # fmt: skip
    assert (failed.kind, failed.name, failed.reason, failed.type) == (
        "StatefulSet", "db", "RolloutFailed", "Warning")  # fmt: skip
    node = from_notification(notes.Event(notes.NODE_NOT_READY, "silent", 5.0, name="n2"))
    assert (node.kind, node.namespace, node.name) == ("Node", "", "n2")
    sync = from_notification(notes.Event(notes.SYNC_FAILED, "bad yaml", 5.0, commit="abc" * 10))
    assert (sync.kind, sync.name, sync.type) == ("Commit", "abcabcabcabc", "Warning")
