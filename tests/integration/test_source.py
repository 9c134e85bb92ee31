"""The git source against real servers: smart HTTP with a token, file:// URLs, sub-paths."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


def test_ref_watcher_watches_refs_only(remote: GitRemote) -> None:
    """A push creates and removes object directories by the dozen; watching them made
    watchdog warn (several KB a push) of races between adding and removing watches. Refs
    alone are watched: pushes to main and to a branch with a '/' fire, gc's packed-refs too,
    and nothing warns."""
    import warnings

    remote.write("a.yaml", namespace("demo"))
    remote.push("first")
    trigger = Trigger()
    watcher = RefWatcher(trigger, remote.bare)
    watched = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watcher.start()
        try:
            watched = [e.watch.path for e in watcher._observer.emitters]
            for i in range(10):
                remote.write("a.yaml", namespace(f"demo{i}"))
                remote.push(f"change {i}")
                assert trigger.wait(timeout=5.0) == {"push"}
            subprocess.run(
                ["git", "-C", str(remote.work), "push", "-q", "origin", "main:team/x"], check=True
            )
            assert trigger.wait(timeout=5.0) == {"push"}
            subprocess.run(["git", "-C", str(remote.bare), "pack-refs", "--all"], check=True)
            assert trigger.wait(timeout=5.0) == {"push"}
        finally:
            watcher.stop()
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], caught
    assert sorted(watched) == sorted([str(remote.bare), str(remote.bare / "refs" / "heads")])


def test_validate_and_the_reconciler_read_the_same_files_and_agree(
    remote: GitRemote, tmp_path: Path
) -> None:
    """One reader (gitops.manifests.files) for a commit and for a directory: the same files,
    the same errors, the same verdict, .gitopsignore and --exclude included."""
    from gitops.errors import ManifestError
    from gitops.manifests.files import MAX_FILE_BYTES, Rules, read_directory

    remote.write("apps/web.yaml", deployment())
    remote.write("apps/ns.yaml", namespace("demo"))
    remote.write_text("renovate.json", '{"extends": ["config:base"]}')  # not a manifest
    remote.write_text("compose/docker-compose.yml", "services: {web: {image: x}}\n")
    remote.write_text(".gitopsignore", "compose/\n")
    remote.write_text("apps/big.yaml", "# " + "x" * MAX_FILE_BYTES)
    (remote.work / "apps" / "link.yaml").symlink_to("web.yaml")
    remote.write_text("apps/.hidden.yaml", "not: [valid")
    sha = remote.push("a mixed tree")
    rules = Rules(exclude=("renovate.json",))

    def verdict(files: Any, problems: Any) -> list[str]:
        try:
            parse_manifests(files, problems)
        except ManifestError as exc:
            return [str(e) for e in exc.errors]
        return []

    source = GitSource(str(remote.bare), tmp_path / "cache", rules=rules)
    assert source.fetch() == sha
    snap = source.snapshot(sha)
    local = read_directory(remote.work, rules)
    assert sorted(snap.files) == sorted(local.files) == ["apps/ns.yaml", "apps/web.yaml"]
    from_git, from_dir = verdict(snap.files, snap.problems), verdict(local.files, local.problems)
    assert from_git == from_dir and len(from_git) == 2
    assert from_git[0].startswith("apps/big.yaml:0: file is") and "symbolic link" in from_git[1]
    cli = subprocess.run(
        [sys.executable, "-m", "gitops", "validate", str(remote.work), "--exclude", "renovate.json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 1 and cli.stdout.splitlines() == from_git
