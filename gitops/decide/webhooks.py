"""Webhook stage: is this request a push to the branch we deploy? Pure (stdlib only).

A webhook carries no data the reconciler trusts: a verified push to the watched repository
and branch only fires the trigger, and the pass fetches git itself (level-triggered). So a
burst of pushes coalesces into one pass of the newest commit, and a forged payload can at most
cause one fetch, which is why verification happens first and in constant time.

Each provider authenticates its own way:

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``;
- GitLab: ``X-Gitlab-Token: <the secret>`` (a shared token, no HMAC);
- Gitea (and Forgejo): ``X-Gitea-Signature: <hex HMAC-SHA256>``;
- Bitbucket (Cloud and Data Center): ``X-Hub-Signature: sha256=<hex HMAC-SHA256>``;
- generic (any CI or script): ``X-Gitops-Signature: sha256=<hex HMAC-SHA256>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

PROVIDERS: Final = ("github", "gitlab", "gitea", "bitbucket", "generic")
# Results: the label of gitops_webhook_requests_total and the HTTP status each maps to.
ACCEPTED: Final = "accepted"
IGNORED: Final = "ignored"
UNAUTHORIZED: Final = "unauthorized"
TOO_LARGE: Final = "too_large"
BAD_REQUEST: Final = "bad_request"
DISABLED: Final = "disabled"
HTTP_STATUS: Final = {
    ACCEPTED: 202,
    IGNORED: 200,
    UNAUTHORIZED: 401,
    TOO_LARGE: 413,
    BAD_REQUEST: 400,
    DISABLED: 403,
}


@dataclass(frozen=True)
class Verdict:
    result: str
    message: str
    revision: str = ""  # the pushed commit, when the payload names it

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.result]


@dataclass(frozen=True)
class Push:
    """What a push payload says: where, which ref, which commit."""

    repositories: tuple[str, ...]  # URLs and owner/name forms the payload gives
    ref: str  # refs/heads/main; "" when the payload does not say (generic)
    revision: str
    event: str  # "push", or the provider's event name when it is something else


def _signed(secret: bytes, body: bytes, given: str, prefix: str = "") -> bool:
    expected = prefix + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def authentic(provider: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    """The provider's own authentication, compared in constant time."""
    h = {k.lower(): v for k, v in headers.items()}
    if provider == "github":
        return _signed(secret, body, h.get("x-hub-signature-256", ""), "sha256=")
    if provider == "gitlab":
        return hmac.compare_digest(secret, h.get("x-gitlab-token", "").encode())
    if provider == "gitea":
        given = h.get("x-gitea-signature", "") or h.get("x-forgejo-signature", "")
        return _signed(secret, body, given)
    if provider == "bitbucket":
        return _signed(secret, body, h.get("x-hub-signature", ""), "sha256=")
    if provider == "generic":
        return _signed(secret, body, h.get("x-gitops-signature", ""), "sha256=")
    return False


class BadShape(ValueError):
    """A payload whose fields do not have the types its provider sends."""


_KINDS: Final[dict[type, str]] = {dict: "an object", list: "a list", str: "a string"}


def _get(data: Any, *path: str, kind: type | None = None) -> Any:
    """The value at ``path`` (None when absent); ``BadShape`` when a step is not an object or
    the value is not of ``kind``."""
    for i, key in enumerate(path):
        if data is None:
            return None
        if not isinstance(data, dict):
            raise BadShape(f"{'.'.join(path[:i]) or 'the body'}: expected an object")
        data = data.get(key)
    if kind is not None and data is not None and not isinstance(data, kind):
        raise BadShape(f"{'.'.join(path)}: expected {_KINDS[kind]}")
    return data


def _strs(*values: Any) -> tuple[str, ...]:
    return tuple(v for v in values if isinstance(v, str) and v)


def _text(data: Any, *path: str) -> str:
    return str(_get(data, *path, kind=str) or "")


def _last(data: Any, *path: str) -> Any:
    items = _get(data, *path, kind=list) or []
    if items and not isinstance(items[-1], dict):
        raise BadShape(f"{'.'.join(path)}: expected a list of objects")
    return items[-1] if items else {}


def parse(provider: str, headers: Mapping[str, str], data: Any) -> Push:
    """The push a provider's payload describes (``event`` says when it is not a push).
    Raises ``BadShape`` for a payload whose fields have the wrong types."""
    h = {k.lower(): v for k, v in headers.items()}
    if not isinstance(data, dict):
        raise BadShape("the body: expected an object")
    if provider in ("github", "gitea"):
        event = h.get("x-github-event") or h.get("x-gitea-event") or h.get("x-forgejo-event")
        repo = _get(data, "repository", kind=dict) or {}
        return Push(
            _strs(*(repo.get(k) for k in ("clone_url", "ssh_url", "html_url", "full_name"))),
            _text(data, "ref"),
            _text(data, "after"),
            event or "push",
        )
    if provider == "gitlab":
        kind = _get(data, "object_kind", kind=str) or h.get("x-gitlab-event", "")
        project = _get(data, "project", kind=dict) or {}
        return Push(
            _strs(
                *(
                    project.get(k)
                    for k in ("git_http_url", "git_ssh_url", "web_url", "path_with_namespace")
                )
            ),
            _text(data, "ref"),
            _text(data, "checkout_sha") or _text(data, "after"),
            "push" if kind in ("push", "Push Hook") else str(kind),
        )
    if provider == "bitbucket":
        return _bitbucket(h.get("x-event-key", ""), data)
    # generic: {"repository": URL, "ref": "refs/heads/main" or "branch": "main", "revision": SHA}
    branch = _get(data, "branch", kind=str)
    ref = _text(data, "ref") or (f"refs/heads/{branch}" if branch else "")
    return Push(
        _strs(_get(data, "repository", kind=str)),
        ref,
        _text(data, "revision") or _text(data, "after"),
        _text(data, "event") or "push",
    )


def _bitbucket(event: str, data: Any) -> Push:
    repo = _get(data, "repository", kind=dict) or {}
    if event == "repo:push":  # Bitbucket Cloud
        new = _get(_last(data, "push", "changes"), "new", kind=dict) or {}
        ref = f"refs/heads/{_text(new, 'name')}" if new.get("type") == "branch" else ""
        links = _strs(_get(repo, "links", "html", "href"), repo.get("full_name"))
        return Push(links, ref, _text(new, "target", "hash"), "push")
    if event == "repo:refs_changed":  # Bitbucket Data Center / Server
        last = _last(data, "changes")
        clones = _get(repo, "links", "clone", kind=list) or []
        urls = _strs(*(c.get("href") for c in clones if isinstance(c, dict)))
        project = _get(repo, "project", "key", kind=str)
        slug = _get(repo, "slug", kind=str)
        named = _strs(f"{project}/{slug}" if project and slug else "")
        return Push(urls + named, _text(last, "ref", "id"), _text(last, "toHash"), "push")
    return Push((), "", "", event or "unknown")


_SCP = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")  # git@host:owner/repo


def normalize(url: str) -> str:
    """A repository URL reduced to host/path (no scheme, user, port, .git, case of host), so
    https, ssh and scp forms of one repository compare equal."""
    text = url.strip()
    m = _SCP.match(text)
    if m and "://" not in text:
        host, path = m.group(1), m.group(2)
    else:
        text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
        if text.startswith("/"):  # a local path (file:// or plain)
            host, path = "", text
        else:
            netloc, _, path = text.partition("/")
            host = netloc.rpartition("@")[2].split(":")[0]
    path = path.strip("/").removesuffix(".git").strip("/")
    return f"{host.lower()}/{path}" if host else "/" + path


def same_repository(ours: str, theirs: Iterable[str]) -> bool:
    """True when any URL (or owner/name) of the payload names our repository."""
    mine = normalize(ours)
    for url in theirs:
        if "/" in url and "://" not in url and "@" not in url and not url.startswith("/"):
            # owner/name (full_name): compare with our path's tail
            if mine.lower().endswith("/" + url.strip("/").lower().removesuffix(".git")):
                return True
            continue
        if normalize(url) == mine:
            return True
    return False


def judge(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    secret: bytes | None,
    repository: str,
    branch: str,
) -> Verdict:
    """Authenticate first, then decide: accepted (fire a pass), ignored, or refused."""
    if provider not in PROVIDERS:
        return Verdict(
            BAD_REQUEST, f"unknown provider {provider[:40]!r}; one of {', '.join(PROVIDERS)}"
        )
    if not secret:
        return Verdict(DISABLED, "webhooks are off: start gitops with a webhook secret")
    if not authentic(provider, headers, body, secret):
        return Verdict(UNAUTHORIZED, f"missing or wrong {provider} signature")
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:
        why = exc if isinstance(exc, ValueError) else "nested too deeply"
        return Verdict(BAD_REQUEST, f"the body is not JSON: {why}")
    try:
        push = parse(provider, headers, data)
    except BadShape as exc:
        return Verdict(BAD_REQUEST, f"not a {provider} push payload: {exc}")
    if push.event in ("ping",):
        return Verdict(IGNORED, "pong")
    if push.event != "push":
        return Verdict(IGNORED, f"event {push.event!r} is not a push")
    if push.repositories and not same_repository(repository, push.repositories):
        return Verdict(IGNORED, f"a push to {push.repositories[0]}, not to {repository}")
    if push.ref and push.ref != f"refs/heads/{branch}":
        return Verdict(IGNORED, f"a push to {push.ref}, not to refs/heads/{branch}")
    return Verdict(ACCEPTED, "fetching", push.revision)
