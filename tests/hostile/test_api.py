"""Hostile clients of the API, over real sockets on 127.0.0.1: the listener is the one
``gitops run`` serves (waitress with gitops' limits), in front of a reconciler on the in-memory
node. Every answer is JSON with a reason, never a traceback; nothing a client sends grows the
process or locks operators out."""

from __future__ import annotations

import hashlib
import hmac
import json
import resource
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gitops.nodes.memory import MemoryNode
from gitops.reconciler import Reconciler
from gitops.runner import api_app
from gitops.serve.api import serve
from gitops.serve.httpserver import HttpServer
from gitops.source.triggers import Trigger
from tests.conftest import GitRemote
from tests.helpers import deployment
from tests.hostile.test_front_door import IMAGE, make

SECRET = "hook-secret"


def rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.fixture
def server(remote: GitRemote, tmp_path: Path) -> Iterator[tuple[HttpServer, Reconciler]]:
    remote.write("web.yaml", deployment(image=IMAGE, replicas=1))
    remote.push("web")
    reconciler = make(remote, tmp_path, MemoryNode("local", {IMAGE}))
    reconciler.settings = replace(
        reconciler.settings, webhook_secret=SECRET, api_token="t0ken", webhook_max_bytes=10_000
    )
    reconciler.reconcile("test")
    http = serve(api_app(reconciler, Trigger()), "127.0.0.1", 0)
    http.start()
    yield http, reconciler
    http.stop()


def raw(
    address: tuple[str, int], data: bytes, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is; the status, headers and body of the answer."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            head, sep, rest = b"".join(chunks).partition(b"\r\n\r\n")
            if sep:
                headers = _headers(head)
                if len(rest) >= int(headers.get("content-length", "-1")):
                    break
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, _headers(head), body


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def request(
    address: tuple[str, int], method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, Any]:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    if body and "Content_Length" not in headers:
        head += f"Content-Length: {len(body)}\r\n"
    status, hdrs, data = raw(address, head.encode() + b"\r\n" + body)
    assert b"Traceback" not in data
    if method == "HEAD":
        assert not data
        return status, ""
    if hdrs.get("content-type", "").startswith("application/json"):
        return status, json.loads(data)
    return status, data.decode("latin-1")


def test_negative_and_invalid_content_length(server: tuple[HttpServer, Reconciler]) -> None:
    http, _ = server
    before = rss_kib()
    for value in ("-1", "abc", "1e9", "+5", "5, 5"):
        status, _ = request(http.address, "POST", "/api/v1/sync", b"x" * 100, Content_Length=value)
        assert status == 400, value
    # a body sent after an invalid length is never read into memory
    with socket.create_connection(http.address, timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"
        )
        with pytest.raises(OSError):
            for _ in range(400):  # 400 MB, were it read
                sock.sendall(b"x" * 1024 * 1024)
    assert rss_kib() - before < 50 * 1024


def test_bodies_over_the_limit_are_refused_unread(server: tuple[HttpServer, Reconciler]) -> None:
    http, _reconciler = server
    status, _ = request(http.address, "POST", "/api/v1/webhooks/github", b"x" * 20_000)
    assert status == 413
    status, _ = request(
        http.address, "POST", "/api/v1/sync", b"x" * 70_000, Authorization="Bearer t0ken"
    )
    assert status == 413
    chunked = (
        b"POST /api/v1/webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunked += b"".join(b"1000\r\n" + b"x" * 4096 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    assert raw(http.address, chunked)[0] == 413
    metrics = request(http.address, "GET", "/metrics")[1]
    assert 'gitops_webhook_requests_total{provider="github",result="too_large"} 2.0' in metrics


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=-1", "limit=0", "limit=99999999999999", "limit=%C2%B2", "limit=1.5"],
)
def test_query_parameters_are_validated(server: tuple[HttpServer, Reconciler], query: str) -> None:
    http, _ = server
    status, body = request(http.address, "GET", f"/api/v1/history?{query}")
    assert status == 400 and body == {"error": "limit: expected an integer from 1 to 1000"}


def test_good_queries_still_answer(server: tuple[HttpServer, Reconciler]) -> None:
    http, _ = server
    status, rows = request(http.address, "GET", "/api/v1/history?limit=5")
    assert status == 200 and isinstance(rows, list) and 0 < len(rows) <= 5
    assert request(http.address, "GET", "/api/v1/pods?namespace=demo")[0] == 200
    assert request(http.address, "GET", "/api/v1/pods?namespace=..%2Fetc")[0] == 400
    assert request(http.address, "GET", "/api/v1/sync/--upload-pack=x")[0] == 400
    status, body = request(
        http.address, "POST", "/api/v1/sync?wait=true&timeout=nan", Authorization="Bearer t0ken"
    )
    assert status == 400 and "timeout" in body["error"]
    assert request(http.address, "HEAD", "/healthz")[0] == 200


def _signed(body: bytes) -> dict[str, str]:
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X_Hub_Signature_256": sig,
        "X_GitHub_Event": "push",
        "Content_Type": "application/json",
    }


@pytest.mark.parametrize(
    "payload",
    [b'{"repository": "a string", "ref": "refs/heads/main"}', b'{"ref": ["x"]}', b"[1, 2]",
     b'"text"', b"[" * 100_000 + b"]" * 100_000, b'{"after": {"x": 1}}'],
)  # fmt: skip
def test_webhook_payloads_of_the_wrong_shape(
    server: tuple[HttpServer, Reconciler], payload: bytes
) -> None:
    http, _ = server
    server[1].settings = replace(server[1].settings, webhook_max_bytes=300_000)
    status, body = request(
        http.address, "POST", "/api/v1/webhooks/github", payload, **_signed(payload)
    )
    assert status in (400, 413), body
    if status == 400:
        assert body["result"] == "bad_request"


def test_methods_and_paths_without_a_route_answer_json(
    server: tuple[HttpServer, Reconciler],
) -> None:
    http, _ = server
    status, body = request(http.address, "DELETE", "/api/v1/status")
    assert status == 405 and "not allowed" in body["error"]
    status, body = request(http.address, "PUT", "/x")
    assert status == 405
    status, body = request(http.address, "GET", "/no/such/thing")
    assert status == 404 and body == {"error": "no route for GET /no/such/thing"}
    status, body = request(http.address, "GARBAGE\x01", "/")
    assert status in {400, 405}


def test_an_exception_in_a_route_is_a_500_without_details(
    server: tuple[HttpServer, Reconciler], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, reconciler = server
    monkeypatch.setattr(reconciler.history, "syncs", lambda limit: 1 / 0)
    status, body = request(http.address, "GET", "/api/v1/history")
    assert status == 500 and body == {
        "error": "internal error; the reconciler's log has the details"
    }


def test_idle_connections_at_the_cap_make_room_for_new_clients(
    remote: GitRemote, tmp_path: Path
) -> None:
    remote.write("web.yaml", deployment(image=IMAGE, replicas=1))
    remote.push("web")
    reconciler = make(remote, tmp_path, MemoryNode("local", {IMAGE}))
    from gitops.serve.api import Front

    http = HttpServer("127.0.0.1", 0, Front(api_app(reconciler, Trigger())), 65536, connections=40)
    http.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(120):  # three times the cap: idle, and half-sent requests (slowloris)
            sock = socket.create_connection(http.address, timeout=5)
            if len(idle) % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            idle.append(sock)
        started = time.monotonic()
        status, body = request(http.address, "GET", "/healthz")
        assert status == 200 and body == {"status": "ok"}
        assert time.monotonic() - started < 5.0
        assert http.connections <= 40
    finally:
        for sock in idle:
            sock.close()
        http.stop()


def test_an_idle_connection_is_closed_after_the_timeout(remote: GitRemote, tmp_path: Path) -> None:
    remote.write("web.yaml", deployment(image=IMAGE, replicas=1))
    remote.push("web")
    reconciler = make(remote, tmp_path, MemoryNode("local", {IMAGE}))
    from gitops.serve.api import Front

    http = HttpServer(
        "127.0.0.1", 0, Front(api_app(reconciler, Trigger())), 65536, idle_timeout=1.0
    )
    http.start()
    try:
        with socket.create_connection(http.address, timeout=10) as sock:
            started = time.monotonic()
            assert sock.recv(10) == b""  # closed by the server
            assert 0.9 < time.monotonic() - started < 5.0
    finally:
        http.stop()


def test_running_a_cronjob_needs_the_token_and_an_existing_cronjob(
    server: tuple[HttpServer, Reconciler],
) -> None:
    http, _ = server
    path = "/api/v1/namespaces/demo/cronjobs/nightly/run"
    status, body = request(http.address, "POST", path)
    assert status == 401 and "Bearer" in body["error"]
    auth = {"Authorization": "Bearer t0ken"}
    status, body = request(http.address, "POST", path, b"", **auth)
    assert status == 404 and body == {
        "error": "cronjob demo/nightly not found in the applied commit"
    }
    for odd in ("/api/v1/namespaces/demo/cronjobs/run", "/api/v1/namespaces/demo/web/x/run",
                "/api/v1/namespaces/%00/cronjobs/%2e%2e/run", "/api/v1/jobs/demo",
                "/api/v1/jobs/demo/nope/extra"):  # fmt: skip
        method = "GET" if "/jobs/" in odd else "POST"
        status, body = request(http.address, method, odd, b"", **auth)
        assert status == 404, (odd, status, body)


def test_the_server_says_its_version_as_kubernetes_does(
    server: tuple[HttpServer, Reconciler],
) -> None:
    from gitops.config import build

    http, _ = server
    status, body = request(http.address, "GET", "/version")
    assert status == 200 and body == build.info() and body["gitVersion"].startswith("v")
