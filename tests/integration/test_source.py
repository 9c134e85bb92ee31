"""The git source against real servers: smart HTTP with a token, file:// URLs, sub-paths."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gitops.errors import SourceUnavailable
from gitops.manifests import parse_manifests
from gitops.source.git import GitSource
from gitops.source.triggers import RefWatcher, Trigger
from tests.conftest import GitRemote
from tests.helpers import deployment, namespace

TOKEN = "tok-3f9a-very-secret"


def _git_http_server(root: Path) -> ThreadingHTTPServer:
    """``git http-backend`` (git's own smart HTTP server) behind Basic auth, on loopback."""
    expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def _cgi(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {
                **os.environ,
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "x-access-token",
            }
            out = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=True
            ).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                key, _, value = line.partition(": ")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _cgi
        do_POST = _cgi

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def http_remote(remote: GitRemote) -> Iterator[str]:
    server = _git_http_server(remote.bare.parent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{remote.bare.name}"
    server.shutdown()
    server.server_close()


def test_https_style_token_comes_from_the_environment_and_is_never_shown(
    remote: GitRemote,
    http_remote: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    remote.write("ns.yaml", namespace("a"))
    sha = remote.push("one")
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("GITOPS_GIT_TOKEN", raising=False)
    no_token = GitSource(http_remote, tmp_path / "a")
    with pytest.raises(SourceUnavailable):
        no_token.fetch()
    monkeypatch.setenv("GITOPS_GIT_TOKEN", "wrong-" + TOKEN)
    with pytest.raises(SourceUnavailable) as info:
        GitSource(http_remote, tmp_path / "b").fetch()
    assert TOKEN not in str(info.value)
    monkeypatch.setenv("GITOPS_GIT_TOKEN", TOKEN)
    source = GitSource(http_remote, tmp_path / "c")
    assert source.fetch() == sha
    assert list(source.snapshot(sha).files) == ["ns.yaml"]
    # the token is in no log line, no URL, no git config of the mirror
    assert TOKEN not in caplog.text
    config = (tmp_path / "c" / "mirror.git" / "config").read_text()
    assert TOKEN not in config and http_remote in config


def test_credentials_in_a_url_are_redacted_from_errors(tmp_path: Path) -> None:
    source = GitSource("http://user:hunter2@127.0.0.1:9/repo.git", tmp_path)
    with pytest.raises(SourceUnavailable) as info:
        source.fetch()
    assert "hunter2" not in str(info.value)
    assert source.display_url == "http://***@127.0.0.1:9/repo.git"


def test_file_url_branch_and_sub_path(remote: GitRemote, tmp_path: Path) -> None:
    remote.write("prod/ns.yaml", namespace("prod"))
    remote.write("prod/apps/web.yaml", deployment(namespace="prod"))
    remote.write("staging/ns.yaml", namespace("staging"))
    remote.write_text("prod/README.md", "not a manifest")
    remote.push("two environments")
    subprocess.run(
        ["git", "-C", str(remote.work), "push", "-q", "origin", "main:release"], check=True
    )
    source = GitSource(f"file://{remote.bare}", tmp_path, branch="release", path="prod/")
    snap = source.snapshot(source.fetch())
    assert sorted(snap.files) == ["apps/web.yaml", "ns.yaml"]  # only manifests are read
    assert snap.subject == "two environments" and "Test Author" in snap.author
    assert sorted(e.name for e in parse_manifests(snap.files).entries) == ["prod", "web"]
    missing = GitSource(str(remote.bare), tmp_path / "x", path="nope")
    assert missing.snapshot(missing.fetch()).files == {}
    with pytest.raises(SourceUnavailable):
        GitSource(str(remote.bare), tmp_path / "y", branch="no-such-branch").fetch()


def test_ref_watcher_fires_on_a_push_and_not_on_its_own_fetch(
    remote: GitRemote, tmp_path: Path
) -> None:
    """inotify also reports reads: a fetch opening the refs must not start another pass
    (which would fetch again, and so on for ever)."""
    remote.write("a.yaml", namespace("demo"))
    first = remote.push("first")
    trigger = Trigger()
    watcher = RefWatcher(trigger, remote.bare)
    watcher.start()
    try:
        source = GitSource(str(remote.bare), tmp_path / "cache")
        assert source.fetch() == first
        assert source.fetch() == first
        assert trigger.wait(timeout=1.0) == set()  # reading git fired nothing
        second = remote.push("second")
        assert trigger.wait(timeout=5.0) == {"push"}
        assert source.fetch() == second
        assert trigger.wait(timeout=1.0) == set()
    finally:
        watcher.stop()
