"""The CLI's one client of the running reconciler's HTTP API (``--server``, ``GITOPS_SERVER``).

A POST carries the API token (``GITOPS_API_TOKEN``, ``GITOPS_API_TOKEN_FILE``, or the state
directory's ``api-token``, as ``gitops run`` made it). A reconciler that cannot be reached ends
the verb with exit 2.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from gitops.cli.common import ERROR, FAILED
from gitops.config.tokens import api_token, default_state_dir


def read_token() -> str:
    """The API token the verbs send ("" for none); exit 2 when it cannot be read."""
    try:
        return api_token(default_state_dir())
    except OSError as exc:
        print(f"gitops: cannot read the API token: {exc}", file=sys.stderr)
        raise SystemExit(ERROR) from exc


def request(server: str, path: str, method: str = "GET", timeout: float = 10.0) -> tuple[int, Any]:
    """(HTTP status, JSON body) of one call. A call that changes something, answered by a
    follower (``--leader-elect``), is made again once to the leader the follower names."""
    code, body = _request(server, path, method, timeout)
    leader = body.get("leader") if isinstance(body, dict) else None
    if method == "POST" and code == 503 and body.get("reason") == "NotLeader" and leader:
        print(f"gitops: {server} follows; asking the leader at {leader}", file=sys.stderr)
        return _request(str(leader), path, method, timeout)
    return code, body


def _request(server: str, path: str, method: str, timeout: float) -> tuple[int, Any]:
    body = b"" if method == "POST" else None
    headers = {}
    if method == "POST":
        given = read_token()
        if given:
            headers["Authorization"] = f"Bearer {given}"
    req = urllib.request.Request(  # noqa: S310
        server.rstrip("/") + path, method=method, data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our server
            return int(resp.status), json.load(resp)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:  # not our server's JSON: say what came back
            return exc.code, {"error": f"HTTP {exc.code}: {text[:200]}"}
    except (urllib.error.URLError, OSError) as exc:
        print(f"gitops: cannot reach the reconciler at {server}: {exc}", file=sys.stderr)
        raise SystemExit(ERROR) from exc


def stream(server: str, path: str) -> Iterator[str]:
    """The lines of a streamed answer (a watch) as they come; exit 2 when it cannot be had."""
    req = urllib.request.Request(server.rstrip("/") + path)  # noqa: S310 - our server
    try:
        with urllib.request.urlopen(req, timeout=None) as resp:  # noqa: S310 - our server
            for raw in resp:
                yield raw.decode("utf-8", "replace").rstrip("\n")
    except urllib.error.HTTPError as exc:
        print(f"gitops: {server.rstrip('/')}{path}: HTTP {exc.code}", file=sys.stderr)
        raise SystemExit(ERROR) from exc
    except (urllib.error.URLError, OSError) as exc:
        print(f"gitops: cannot reach the reconciler at {server}: {exc}", file=sys.stderr)
        raise SystemExit(ERROR) from exc


def get(server: str, path: str) -> Any:
    """GET a body; an error answer exits 2, as an unreachable server does."""
    code, body = request(server, path)
    if code >= 400:
        error = body.get("error", body) if isinstance(body, dict) else body
        print(f"gitops: {server.rstrip('/')}{path}: {error}", file=sys.stderr)
        raise SystemExit(ERROR)
    return body


def pods(server: str, namespace: str | None) -> list[dict[str, Any]]:
    """The pods' rows, of one namespace or (none) every one."""
    query = f"?namespace={quote(namespace)}" if namespace else ""
    rows: list[dict[str, Any]] = get(server, f"/api/v1/pods{query}")
    return rows


def command(server: str, path: str, expect: int, timeout: float) -> dict[str, Any] | int:
    """A POST that changes something: its answer when it is ``expect``, else the verb's exit
    code (2 when the reconciler cannot be asked or refuses the token, else 1), said why."""
    code, body = request(server, path, "POST", timeout=timeout)
    if code != expect:
        said = body.get("error", body) if isinstance(body, dict) else body
        print(f"gitops: {said}", file=sys.stderr)
        return ERROR if code in (401, 502, 503) else FAILED
    return dict(body)
