"""Log values on plain data: RFC 3339 times both ways, the masked tail a failure reason quotes,
and the kept logs of removed pods (bounded, expiring), read through the in-memory node."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.act.observe import group_pods
from gitops.decide.actions import Remove
from gitops.model.logs import LogLine, LogQuery, log_tail, parse_rfc3339, rfc3339
from gitops.model.templates import ContainerSpec, EnvVar, PodTemplate
from gitops.nodes.memory import MemoryNode
from gitops.state import lastlogs
from gitops.state.database import SqliteDatabase
from gitops.state.lastlogs import KeptLogs


def test_times_are_rfc3339_with_nanoseconds_both_ways() -> None:
    assert parse_rfc3339("2026-12-03T05:32:13.123456789Z") == pytest.approx(1796275933.123456)
    assert parse_rfc3339("2026-12-03T06:32:13+01:00") == parse_rfc3339("2026-12-03T05:32:13Z")
    assert rfc3339(1796275933.5) == "2026-12-03T05:32:13.500000000Z"
    assert parse_rfc3339(rfc3339(1796275933.25)) == 1796275933.25
    for bad in ("yesterday", "2026-12-03T05:32:13", ""):
        with pytest.raises(ValueError):
            parse_rfc3339(bad)


def test_a_tail_is_bounded_and_masks_the_pods_secret_values() -> None:
    spec = ContainerSpec(
        "app",
        "reg/app:v1",
        "IfNotPresent",
        env=(EnvVar("DB_URL", "postgres://u:hunter22@db", sensitive=True),),
    )
    template = PodTemplate("ns", "app", "h", (spec,))
    lines = ["", "connecting to postgres://u:hunter22@db", "x" * 500, "panic: refused"]
    tail = log_tail(lines, template, 3)
    assert tail == ("connecting to ******", "x" * 200, "panic: refused")
    assert log_tail(lines, None, 0) == ()


def test_a_crashed_pods_logs_are_kept_past_its_removal_and_expire() -> None:
    node = MemoryNode("n1", {"reg/web:v1"})
    node.ensure_network("demo")
    node.pull("reg/web:v1")
    template = PodTemplate(
        "demo", "web", "abc", (ContainerSpec("web", "reg/web:v1", "IfNotPresent"),)
    )
    node.create_pod(template, "web-abc-1")
    node.create_pod(template, "web-abc-2")
    crashed, healthy = sorted(group_pods(node.list_containers()), key=lambda p: p.name)
    cid = crashed.containers[0].id
    node.output[cid] = "starting\nexec /app failed: No such file or directory\n"
    node.crash(cid, 127)
    crashed = next(p for p in group_pods(node.list_containers()) if p.name == "web-abc-1")
    now = [1000.0]
    kept = KeptLogs({"n1": node}, clock=lambda: now[0])
    assert "No such file" in kept.words(crashed, crashed.containers[0], template)
    assert kept.words(healthy, healthy.containers[0], template) == ""  # running: nothing to say
    kept.before_removal([Remove(crashed, "rollback"), Remove(healthy, "rollback")], {})
    node.remove_pod(crashed)
    found = kept.get("demo", "web-abc-1")
    assert found is not None and found.workload == "web" and found.node == "n1"
    lines = found.lines("web")
    assert lines is not None and [x.text for x in lines][-1].startswith("exec /app failed")
    assert kept.get("demo", "web-abc-2") is None  # a healthy pod's logs are not copied
    now[0] += lastlogs.RETENTION + 1
    assert kept.list() == []


def test_kept_logs_outlive_a_restart_of_the_reconciler(tmp_path: Path) -> None:
    now = [1000.0]
    kept = KeptLogs({}, clock=lambda: now[0], db=SqliteDatabase(tmp_path / "db"))
    kept.keep("demo", "web-1", "n1", "web", {"web": [LogLine(999.0, "exec /app failed")]})
    again = KeptLogs({}, clock=lambda: now[0], db=SqliteDatabase(tmp_path / "db"))
    found = again.get("demo", "web-1")
    assert found is not None and found.lines("web") == (LogLine(999.0, "exec /app failed"),)
    now[0] += lastlogs.RETENTION + 1
    assert KeptLogs({}, clock=lambda: now[0], db=SqliteDatabase(tmp_path / "db")).list() == []


def test_kept_logs_are_bounded_in_pods_and_lines() -> None:
    kept = KeptLogs({})
    for i in range(lastlogs.MAX_PODS + 5):
        kept.keep("ns", f"p{i}", "n1", "w", {"c": [LogLine(1.0, "x")] * (lastlogs.MAX_LINES + 9)})
    pods = kept.list("ns")
    assert len(pods) == lastlogs.MAX_PODS and pods[0].name == "p5"
    assert len(pods[0].lines("c") or ()) == lastlogs.MAX_LINES
    assert LogQuery().tail is None


def test_a_reopened_log_skips_only_what_it_sent_again() -> None:
    """Lines that share a time (a float coarser than the engine's nanoseconds) all arrive;
    after a reopen from the last line's time, exactly the lines sent before are skipped."""
    from gitops.nodes.docker import SentLines

    sent = SentLines()
    first = [LogLine(1.0, "a"), LogLine(2.0, "b"), LogLine(2.0, "b"), LogLine(2.0, "c")]
    assert [sent.new(x) for x in first] == [True, True, True, True]
    sent.reopened()  # the engine sends again from 2.0 on, then what is new
    again = [LogLine(2.0, "b"), LogLine(2.0, "b"), LogLine(2.0, "c"), LogLine(2.0, "b"),
             LogLine(3.0, "d"), LogLine(3.0, "d")]  # fmt: skip
    assert [x.text for x in again if sent.new(x)] == ["b", "d", "d"]
    assert sent.last == 3.0
