"""The dashboard over HTTP, in front of a reconciler on the in-memory node, through the
listener ``gitops run`` serves: every page renders what the API knows, every value from a
manifest is escaped, actions need a session and its CSRF token, and bad requests get a page
that says why (never a traceback)."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode

import pytest

from gitops.nodes.memory import MemoryNode
from gitops.reconciler import Reconciler
from gitops.serve.api import App
from tests.conftest import GitRemote, git
from tests.helpers import deployment
from tests.hostile.test_front_door import IMAGE, api_of, make

TOKEN = "dash-t0ken"
EVIL = "<img src=x onerror=alert(1)>"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str


class Browser:
    """A client that keeps its cookie, as a browser does (no script)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.cookie = ""

    def call(self, method: str, path: str, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        body = urlencode(form).encode() if form is not None else None
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        got = {k.lower(): v for k, v in resp.getheaders()}
        text = resp.read().decode()
        conn.close()
        if "set-cookie" in got:
            self.cookie = got["set-cookie"].split(";")[0]
        return Reply(resp.status, got, text)

    def get(self, path: str) -> Reply:
        return self.call("GET", path)

    def sign_in(self, token: str = TOKEN) -> Reply:
        return self.call("POST", "/ui/login", {"token": token, "back": "/"})

    def csrf(self, path: str = "/") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, "no CSRF token on the page"
        return found.group(1)


@dataclass
class Served:
    url: str
    reconciler: Reconciler
    node: MemoryNode
    app: App


@pytest.fixture
def served(remote: GitRemote, tmp_path: Path) -> Iterator[Served]:
    remote.write("web.yaml", deployment(image=IMAGE, replicas=2,
                                        metadata={"annotations": {"team": EVIL}}))  # fmt: skip
    remote.push("web: two replicas")
    node = MemoryNode("local", {IMAGE})
    reconciler = make(remote, tmp_path, node)
    reconciler.settings = replace(reconciler.settings, api_token=TOKEN)
    reconciler.reconcile("test")
    reconciler.reconcile("test")  # the pods made by the first are found by the second
    with api_of(reconciler) as (url, app):
        yield Served(url, reconciler, node, app)


def test_the_overview_shows_the_source_the_commits_the_totals_and_the_nodes(
    served: Served, remote: GitRemote,
) -> None:  # fmt: skip
    url, reconciler = served.url, served.reconciler
    page = Browser(url).get("/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    head = reconciler.status.revision
    assert head[:7] in page.text and "web: two replicas" in page.text
    assert str(remote.bare) in page.text and "branch main" in page.text
    assert "Healthy" in page.text and "Synced" in page.text and ">local<" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "Sync now" not in page.text  # no action without signing in


def test_filters_are_kept_in_the_url_and_narrow_the_list(
    served: Served,
) -> None:
    url = served.url
    b = Browser(url)
    assert "/ui/resources/Deployment/demo/web" in b.get("/?kind=Deployment").text
    none = b.get("/?health=Degraded").text
    assert "Nothing matches." in none and "/ui/resources/Deployment/demo/web" not in none
    assert 'href="/ui/map?health=Degraded"' in none  # the filter goes along to the map


def test_the_map_puts_each_pod_under_its_node_with_its_commit(
    served: Served,
) -> None:
    url, reconciler = served.url, served.reconciler
    page = Browser(url).get("/ui/map").text
    commit = reconciler.status.applied[:7]
    assert page.count(f'data-commit="{commit}"') == 2 and 'data-workload="demo/web"' in page


def test_the_resource_view_has_pods_manifest_live_state_history_and_events(
    served: Served,
) -> None:
    url, reconciler = served.url, served.reconciler
    page = Browser(url).get("/ui/resources/Deployment/demo/web").text
    for pod in reconciler.look().pods:
        assert pod.name in page
    assert "replicas: 2" in page  # the manifest as git has it
    assert "Rollout history" in page and "web: two replicas" in page
    assert "No difference at" in page
    live = page[page.index('data-test="live-object"') :]
    assert "team:" in live and "replicas: 2" in live  # the live object has its spec and labels
    missing = Browser(url).get("/ui/resources/Deployment/demo/nope")
    assert missing.status == 404 and "neither in git nor running" in missing.text
    assert Browser(url).get("/ui/resources/Bogus/demo/web").status == 404


def test_a_secrets_values_are_never_shown_only_its_keys(
    remote: GitRemote, tmp_path: Path,
) -> None:  # fmt: skip
    remote.write("s.yaml", {"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "db", "namespace": "demo"},
                            "stringData": {"password": "hunter2-s3cret"}})  # fmt: skip
    remote.write("web.yaml", deployment(image=IMAGE))
    remote.push("a secret")
    reconciler = make(remote, tmp_path, MemoryNode("local", {IMAGE}))
    reconciler.settings = replace(reconciler.settings, api_token=TOKEN)
    reconciler.reconcile("test")
    with api_of(reconciler) as (url, _):
        b = Browser(url)
        b.sign_in()
        page = b.get("/ui/resources/Secret/demo/db")
        assert page.status == 200 and "password: (hidden)" in page.text
        for path in ("/", "/ui/resources/Secret/demo/db", "/ui/events", "/ui/map"):
            assert "hunter2" not in b.get(path).text, path


def test_a_manifests_markup_is_text_everywhere(served: Served) -> None:
    url = served.url
    b = Browser(url)
    b.sign_in()
    for path in ("/", "/ui/map", "/ui/resources/Deployment/demo/web", "/ui/events"):
        text = b.get(path).text
        assert EVIL not in text, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in b.get("/ui/resources/Deployment/demo/web").text


def test_a_rejected_commit_shows_its_file_document_and_field_as_text(
    served: Served, remote: GitRemote,
) -> None:  # fmt: skip
    url, reconciler = served.url, served.reconciler
    remote.write("web.yaml", deployment(image=IMAGE, replicas=2,
                                        metadata={"labels": {"team": EVIL}}))  # fmt: skip
    remote.push("a label no one may have")
    reconciler.reconcile("test")
    page = Browser(url).get("/").text
    assert 'data-test="errors"' in page and EVIL not in page
    assert "web.yaml:0: Deployment/web: metadata.labels: invalid label value" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_signing_in_gives_a_strict_cookie_and_sync_now_starts_a_pass(served: Served) -> None:
    b = Browser(served.url)
    wrong = b.sign_in("nope")
    assert wrong.status == 401 and "not the API token" in wrong.text and not b.cookie
    right = b.sign_in()
    assert right.status == 303
    flags = right.headers["set-cookie"]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Secure" not in flags
    assert TOKEN not in flags and TOKEN not in b.get("/").text
    assert "Sync now" in b.get("/").text
    trigger = served.app.trigger
    assert trigger.wait(0) == set()
    done = b.call("POST", "/ui/sync", {"csrf": b.csrf(), "back": "/"})
    assert trigger.wait(0) == {"dashboard"}  # the next pass starts now
    assert done.status == 303 and done.headers["location"].startswith("/?done=sync")
    assert "A sync was asked for" in b.get(done.headers["location"]).text
    served.reconciler.reconcile("dashboard")  # the pass the runner starts for it
    served.reconciler.reconcile("poll")  # and one after, for another reason
    status = json.loads(b.get("/api/v1/status").text)
    assert status["trigger"] == "poll" and set(status["triggeredAt"]) >= {"dashboard", "poll"}


def test_a_forged_post_is_refused(served: Served) -> None:
    url, reconciler = served.url, served.reconciler
    trigger = served.app.trigger
    anonymous = Browser(url).call("POST", "/ui/sync", {"back": "/"})
    assert anonymous.status == 401
    b = Browser(url)
    b.sign_in()
    for form in ({"back": "/"}, {"csrf": "forged", "back": "/"}, {"csrf": "", "back": "/"}):
        assert b.call("POST", "/ui/sync", form).status == 403
    assert b.call("POST", "/ui/nodes/local/cordon", {"back": "/"}).status == 403
    assert all(r["status"] == "Ready" for r in reconciler.cluster.describe())  # not cordoned
    assert trigger.wait(0) == set()  # and no pass asked for


def test_a_signed_in_user_cordons_and_uncordons_a_node(
    served: Served,
) -> None:
    url, reconciler = served.url, served.reconciler
    b = Browser(url)
    b.sign_in()
    assert b.call("POST", "/ui/nodes/local/cordon", {"csrf": b.csrf(), "back": "/"}).status == 303
    assert "SchedulingDisabled" in reconciler.cluster.describe()[0]["status"]
    assert "Uncordon" in b.get("/").text
    assert b.call("POST", "/ui/nodes/local/uncordon", {"csrf": b.csrf()}).status == 303
    assert reconciler.cluster.describe()[0]["status"] == "Ready"
    gone = b.call("POST", "/ui/nodes/nope/cordon", {"csrf": b.csrf()})
    assert gone.status == 404 and "nope" in gone.text


def test_a_rollout_action_without_push_access_shows_the_exact_command(
    served: Served, remote: GitRemote,
) -> None:  # fmt: skip
    url = served.url
    b = Browser(url)
    b.sign_in()
    page = b.call("POST", "/ui/rollout/Deployment/demo/web/restart", {"csrf": b.csrf()})
    assert page.status == 200
    assert f"gitops rollout restart deployment/web -n demo --repo {remote.bare} --push" in page.text
    bad = b.call("POST", "/ui/rollout/Deployment/demo/web/explode", {"csrf": b.csrf()})
    assert bad.status == 400


def test_with_write_back_a_rollout_action_commits_and_pushes_as_the_cli_does(
    remote: GitRemote, tmp_path: Path,
) -> None:  # fmt: skip
    remote.write("web.yaml", deployment(image=IMAGE, replicas=2))
    first = remote.push("web: two replicas")
    reconciler = make(remote, tmp_path, MemoryNode("local", {IMAGE}))
    reconciler.settings = replace(reconciler.settings, api_token=TOKEN, write_back=True)
    for _ in range(3):
        reconciler.reconcile("test")
    with api_of(reconciler) as (url, _):
        b = Browser(url)
        b.sign_in()
        done = b.call("POST", "/ui/rollout/Deployment/demo/web/restart",
                      {"csrf": b.csrf(), "back": "/ui/resources/Deployment/demo/web"})  # fmt: skip
        assert done.status == 303 and "done=pushed" in done.headers["location"]
        head = git(remote.bare, "rev-parse", "HEAD")
        assert head != first and done.headers["location"].endswith(f"commit={head[:12]}")
        said = git(remote.bare, "log", "-1", "--format=%an|%s|%b")
        assert said.startswith("gitops dashboard|Restart deployment demo/web|")
        assert "Made-with: the gitops dashboard (rollout restart)" in said
        assert "gitops.io/restartedAt" in git(remote.bare, "show", "HEAD:web.yaml")
        page = b.get(done.headers["location"])
        assert "Committed and pushed" in page.text and head[:12] in page.text
        for _ in range(3):  # the reconciler deploys it like any other commit
            reconciler.reconcile("test")
        assert reconciler.status.applied == head

        again = b.call("POST", "/ui/rollout/Deployment/demo/web/resume", {"csrf": b.csrf()})
        assert "done=unchanged" in again.headers["location"]  # not paused: nothing to commit
        assert git(remote.bare, "rev-parse", "HEAD") == head

        undo = b.call("POST", "/ui/rollout/Deployment/demo/web/undo?revision=1",
                      {"csrf": b.csrf()})  # fmt: skip
        assert undo.status == 303, undo.text
        assert git(remote.bare, "log", "-1", "--format=%s") == (
            f"Roll back deployment demo/web to {first[:12]}"
        )
        assert "restartedAt" not in git(remote.bare, "show", "HEAD:web.yaml")
        nowhere = b.call("POST", "/ui/rollout/Deployment/demo/web/undo?revision=99",
                         {"csrf": b.csrf()})  # fmt: skip
        assert nowhere.status == 409 and "revision 99 not found" in nowhere.text
        paused = b.call("POST", "/ui/rollout/DaemonSet/demo/web/pause", {"csrf": b.csrf()})
        assert paused.status == 400


def test_logs_need_a_session_and_stream_a_pods_output(
    served: Served,
) -> None:
    url, reconciler, node = served.url, served.reconciler, served.node
    pod = sorted(reconciler.look().pods, key=lambda p: p.name)[0]
    node.output[pod.app_containers()[0].id] = "hello from the pod\n"
    b = Browser(url)
    assert b.get(f"/ui/logs/demo/{pod.name}").status == 303  # to the sign-in page
    assert b.get(f"/ui/log/demo/{pod.name}").status == 401
    b.sign_in()
    assert f"/ui/log/demo/{pod.name}?follow=true" in b.get(f"/ui/logs/demo/{pod.name}").text
    assert b.get(f"/ui/log/demo/{pod.name}").text == "hello from the pod\n"
    assert b.get("/ui/log/demo/nope").status == 404
    every = b.get("/ui/logs/demo/Deployment/web").text
    assert every.count('class="src"') == 2


def test_the_event_stream_says_change_when_a_pass_ends(
    served: Served,
) -> None:
    url, reconciler = served.url, served.reconciler
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/ui/stream")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type") == "text/event-stream"
    assert resp.readline() == b"retry: 2000\n"
    resp.readline()
    started = time.monotonic()
    reconciler.reconcile("test")
    lines = [resp.readline() for _ in range(2)]
    assert lines[0] == b"event: change\n" and time.monotonic() - started < 5
    conn.close()


def test_bad_requests_get_a_page_that_says_why(served: Served) -> None:
    url = served.url
    b = Browser(url)
    assert b.get("/ui/nowhere").status == 404
    assert b.get("/ui/diff/Deployment/demo/web?from=zz&to=--help").status == 400
    unknown = b.get("/ui/diff/Deployment/demo/web?from=deadbeef&to=" + "b" * 40)
    assert unknown.status == 404 and "commit deadbeef is not in the repository" in unknown.text
    assert b.get("/ui/static/../../etc/passwd").status == 404
    assert b.get("/ui/static/app.js").headers["content-type"].startswith("text/javascript")
    form = b.get("/ui/login?back=/ui/map").text
    assert 'name="back" value="/ui/map"' in form  # signing in returns where it came from
    assert 'value="//evil.example/"' not in b.get("/ui/login?back=//evil.example/").text
    b.sign_in()
    back = b.call("POST", "/ui/login", {"token": TOKEN, "back": "//evil.example/"})
    assert back.headers["location"] == "/"  # never another site
    assert b.call("PUT", "/ui/sync").status == 405
