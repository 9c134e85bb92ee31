"""The dashboard's map and sessions on plain data: which pod goes in which cell, the commits a
rolling row shows, what filters admit; sign-in, CSRF and their bounds."""

from __future__ import annotations

import pytest

from gitops.serve.dashboard import sessions as s
from gitops.serve.dashboard.grid import Filters, build


def pod(
    name: str,
    node: str,
    commit: str,
    created: float,
    ready: str = "1/1",
    owner: str = "web",
) -> dict[str, object]:
    return {"namespace": "demo", "name": name, "node": node, "commit": commit, "created": created,
            "ready": ready, "status": "Running", "restarts": 0, "deployment": owner,
            "ownerKind": "Deployment"}  # fmt: skip


NODES = [{"name": "n2", "status": "Ready"}, {"name": "n1", "status": "NotReady"}]
WEB = {"kind": "Deployment", "namespace": "demo", "name": "web", "health": "Progressing",
       "sync": "OutOfSync"}  # fmt: skip


def test_a_rolling_row_has_both_commits_newest_first_and_each_pod_under_its_node() -> None:
    grid = build(
        [
            pod("web-a", "n1", "aaaaaaa111", 10),
            pod("web-b", "n2", "bbbbbbb222", 20, ready="0/1"),
        ],
        NODES,
        [WEB],
    )
    assert grid.nodes == (("n1", "NotReady"), ("n2", "Ready"))  # columns in name order
    [row] = grid.rows
    assert row.commits == ("bbbbbbb", "aaaaaaa") and row.rolling
    assert [m.name for m in row.cells[0]] == ["web-a"] and row.cells[0][0].ready
    assert not row.cells[1][0].ready


def test_a_workload_with_no_pods_has_a_row_and_pods_of_nothing_in_git_have_one_too() -> None:
    grid = build([pod("old-x", "n3", "c", 1, owner="old")], NODES, [WEB])
    assert [r.name for r in grid.rows] == ["old", "web"]
    old = grid.rows[0]
    assert old.health == "Unknown" and old.sync == "OutOfSync"
    assert [n for n, _ in grid.nodes] == ["n1", "n2", "n3"]  # a node no longer configured
    assert all(cell == () for cell in grid.rows[1].cells)


def test_filters_admit_by_namespace_kind_health_and_sync_and_keep_their_query() -> None:
    f = Filters.of({"kind": ["deployment"], "health": ["Healthy"], "junk": ["x"]})
    assert f.admits("Deployment", "any", "Healthy", "Synced")
    assert not f.admits("Deployment", "any", "Degraded", "Synced")
    assert not f.admits("Job", "any", "Healthy", "Synced")
    assert f.query() == "kind=deployment&health=Healthy"
    assert build([pod("web-a", "n1", "a", 1)], NODES, [WEB], f).rows == ()
    assert Filters.of({"namespace": ["x" * 10_000]}).namespace == "x" * 253  # bounded


def test_only_the_token_signs_in_and_wrong_ones_are_limited() -> None:
    now = [0.0]
    sessions = s.Sessions("right", clock=lambda: now[0])
    assert sessions.sign_in("wrong") is None
    session = sessions.sign_in(" right\n")
    assert session is not None and sessions.get(session.sid) == session
    assert s.Sessions.csrf_ok(session, session.csrf)
    assert not s.Sessions.csrf_ok(session, "") and not s.Sessions.csrf_ok(None, session.csrf)
    for _ in range(s.MAX_FAILURES - 1):
        sessions.sign_in("guess")
    with pytest.raises(s.TooManyAttempts):
        sessions.sign_in("right")  # even the right one, until the minute has passed
    now[0] += s.FAILURE_WINDOW + 1
    assert sessions.sign_in("right") is not None
    now[0] += s.LIFETIME
    assert sessions.get(session.sid) is None  # expired


def test_no_token_no_sign_in_and_sessions_are_bounded() -> None:
    assert s.Sessions("").sign_in("") is None and not s.Sessions("").enabled
    sessions = s.Sessions("t")
    made = [sessions.sign_in("t") for _ in range(s.MAX_SESSIONS + 5)]
    assert sessions.get(made[0].sid if made[0] else "") is None  # the oldest went first
    assert sessions.get(made[-1].sid if made[-1] else "") is not None


def test_the_cookie_is_http_only_strict_and_secure_over_tls() -> None:
    session = s.Sessions("t").sign_in("t")
    assert session is not None
    plain, tls = s.cookie(session, False), s.cookie(session, True)
    assert "HttpOnly" in plain and "SameSite=Strict" in plain and "Secure" not in plain
    assert tls.endswith("; Secure") and "Max-Age=0" in s.cookie(None, False)
    assert s.session_id(f"a=b; {s.COOKIE}={session.sid}; c=d") == session.sid
    assert s.session_id("nothing=here") == ""
