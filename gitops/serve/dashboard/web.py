"""The dashboard's HTTP side: ``/`` and ``/ui/...``, pages rendered from ``pages``, the event
stream that keeps them live, the static files, sign-in, and the actions a signed-in user may
take (each the same request the CLI makes of the API, or, for a change that is a commit, the
CLI command that makes it).

Every page carries a Content-Security-Policy that allows only this listener's own script and
styles, so that even a value the escaping missed could run nothing; every form that changes
something carries the session's CSRF token, checked before anything else is read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

import jinja2

from gitops.config import build as build_info
from gitops.errors import GitopsError
from gitops.serve import logs, streams
from gitops.serve.api import HTML, App, Page, Request
from gitops.serve.dashboard import pages
from gitops.serve.dashboard.grid import WORKLOAD_KINDS, Filters
from gitops.serve.dashboard.looks import Looks
from gitops.serve.dashboard.sessions import Session, Sessions, TooManyAttempts, cookie, session_id
from gitops.serve.streams import MAX_STREAMS, Stream
from gitops.source import changes
from gitops.source.git import Commit, Edit, NothingToChange
from gitops.state.cluster import NodeNotFound

log = logging.getLogger(__name__)


class Writer(Protocol):
    """Commits and pushes to the reconciler's branch (``gitops.source.git.GitWriter``)."""

    def commit(
        self, message: str, edit: Edit, push: bool, attempts: int = 3,
        author: tuple[str, str] | None = None,
    ) -> Commit: ...  # fmt: skip


STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
KEEPALIVE = 15.0  # seconds between comments on a quiet event stream (proxies drop idle ones)
LOOK = 0.25  # seconds between an event stream's changes, and its looks at the event log
DONE = {
    "sync": "A sync was asked for: a pass starts now.",
    "cordon": "The node is cordoned: nothing new is scheduled on it.",
    "uncordon": "The node is uncordoned.",
    "drain": "The node is cordoned and its pods move to other nodes.",
    "pushed": "Committed and pushed: the reconciler deploys the commit now.",
    "unchanged": "Nothing to commit: git already says so.",
}
AUTHOR = ("gitops dashboard", "gitops@localhost")  # who a write-back commit says made it


class Dashboard:
    def __init__(
        self,
        app: App,
        git: pages.Git,
        writer: Writer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.git, self.writer = app, git, writer
        self.sessions = Sessions(app.settings.api_token, clock)
        self.looks = Looks(app.model)
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("gitops.serve.dashboard", "templates"),
            autoescape=True,  # every value a manifest, a commit or a log holds is text
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._static = {
            name: (resources.files("gitops.serve.dashboard") / "static" / name).read_bytes()
            for name in STATIC
        }

    @staticmethod
    def serves(path: str) -> bool:
        return path == "/" or path.startswith("/ui/")

    def __call__(self, req: Request, secure: bool) -> Page:
        session = self.sessions.get(session_id(req.headers.get("cookie", "")))
        if req.method == "POST":
            return self._post(req, session, secure)
        return self._get(req, session)

    # -- reading ----------------------------------------------------------------------------
    def _get(self, req: Request, session: Session | None) -> Page:
        path, filters = req.path, Filters.of(req.query)
        parts = [p for p in path.split("/") if p][1:]  # after "ui"
        ctx: dict[str, Any] = {"session": session, "filters": filters, "back": _back(req),
                               "flash": _flash(req)}  # fmt: skip
        if path == "/":
            return self._page("overview.html", ctx | pages.overview(self.app, self.git, filters),
                              "overview", live=True)  # fmt: skip
        if parts == ["map"]:
            ctx |= pages.choices([asdict(r) for r in self.app.model.status.resources])
            when, live = self.looks.get()
            ctx |= {
                "grid": pages.map_of(self.app, filters, live),
                "seen": pages.ago(when, time.time()),
            }
            return self._page("map.html", ctx, "map", live=True)
        if parts == ["events"]:
            listed = pages.events(self.app, namespace=filters.namespace or None)
            return self._page("events.html", ctx | {"events": listed}, "events", live=True)
        if parts == ["stream"]:
            return self._stream(req)
        if len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC:
            return Page(200, self._static[parts[1]], STATIC[parts[1]],
                          (("Cache-Control", "max-age=300"),))  # fmt: skip
        if parts == ["login"]:
            back = _safe_back(req.arg("back") or "/")  # where the sign-in came from
            return self._page("login.html", ctx | {"enabled": self.sessions.enabled, "back": back},
                              "login")  # fmt: skip
        if len(parts) == 4 and parts[0] == "resources":
            kind, ns, name = parts[1], "" if parts[2] == "-" else parts[2], parts[3]
            found = pages.resource(self.app, self.git, kind, ns, name, self.looks.get()[1])
            if found is None:
                return self._error(404, f"{kind} {ns}/{name} is neither in git nor running")
            extra = {"workload": kind in WORKLOAD_KINDS, "verbs": changes.VERBS.get(kind, ())}
            return self._page("resource.html", ctx | found | extra, "resource", live=True)
        if len(parts) == 4 and parts[0] == "diff":
            return self._diff(req, ctx, parts[1], parts[2], parts[3])
        if parts[:1] == ["logs"] and len(parts) in (3, 4):
            return self._logs_page(req, ctx, session, parts[1:])
        if parts[:1] == ["log"] and len(parts) == 3:
            return self._log(req, session, parts[1], parts[2])
        return self._error(404, f"no page at {path[:200]}")

    def _diff(self, req: Request, ctx: dict[str, Any], kind: str, ns: str, name: str) -> Page:
        try:
            older, newer = _sha(req.arg("from")), _sha(req.arg("to"))
        except ValueError as exc:
            return self._error(400, str(exc))
        for sha in (older, newer):
            try:
                self.git.describe(sha)
            except GitopsError:
                return self._error(404, f"commit {sha} is not in the repository")
        lines = pages.diff(self.git, (kind, ns, name), older, newer)
        ctx |= {"kind": kind, "namespace": ns, "name": name, "older": older, "newer": newer,
                "lines": lines}  # fmt: skip
        return self._page("diff.html", ctx, "diff")

    def _logs_page(
        self, req: Request, ctx: dict[str, Any], session: Session | None, target: list[str]
    ) -> Page:
        if session is None:
            return self._sign_in_first(req)
        previous = req.arg("previous") == "true"
        flags = "?follow=true" + ("&previous=true" if previous else "")
        ns = target[0]
        if len(target) == 2:  # one pod
            pods = [target[1]]
            title = target[1]
        else:  # every pod of a workload
            kind, name = target[1], target[2]
            rows = self.app.rows("pods", ns, self.looks.get()[1]) or []
            pods = sorted(p["name"] for p in pages.owned_by(rows, kind, name))
            title = f"{kind.lower()}/{name}"
            pods = pods[: MAX_STREAMS // 2]  # each followed log holds a stream
        sources = [{"url": f"/ui/log/{quote(ns, safe='')}/{quote(p, safe='')}{flags}",
                    "prefix": p if len(target) == 3 else ""} for p in pods]  # fmt: skip
        ctx |= {"namespace": ns, "title": title, "sources": sources, "previous": previous}
        return self._page("logs.html", ctx, "logs")

    def _log(self, req: Request, session: Session | None, ns: str, pod: str) -> Page:
        """A pod's log, streamed as the API streams it (``gitops.serve.logs``): only for a
        signed-in session, as the API's needs the token (output may hold what Secrets hold)."""
        if session is None:
            return Page(401, b"sign in first\n", "text/plain; charset=utf-8")
        try:
            opts = logs.options(req.arg, time.time())
            stream = logs.pod_log(self.app.model, ns, pod, opts, req.disconnected)
        except logs.LogRequestError as exc:
            return Page(exc.code, f"{exc}\n".encode(), "text/plain; charset=utf-8")
        return Page(200, stream, stream.content_type)

    def _stream(self, req: Request) -> Page:
        """Server-sent events: ``change`` whenever something moved on the nodes, the event
        log moved or a pass ended (at once, then at most once a ``LOOK``)."""
        if not streams.take():
            return Page(429, b"too many streams\n", "text/plain; charset=utf-8")
        return Page(200, Stream(self._changes(req.disconnected), "text/event-stream"))

    def _changes(self, disconnected: Callable[[], bool]) -> Iterator[bytes]:
        model = self.app.model
        try:
            events, moves = model.events, model.moves

            def now() -> tuple[int, float, int]:
                return (events.seq if events else 0), model.status.time, moves.count

            seen, said = now(), time.monotonic()
            yield b"retry: 2000\n\n"
            while not disconnected():
                if now() != seen:
                    # A pod made or removed, an engine's change, an event, a pass ended.
                    seen, said = now(), time.monotonic()
                    yield f"event: change\ndata: {seen[0]}\n\n".encode()
                    time.sleep(LOOK)  # a burst of moves is one change a LOOK, not one each
                elif time.monotonic() - said >= KEEPALIVE:
                    said = time.monotonic()
                    yield b": quiet\n\n"
                self._warm()
                moves.wait(seen[2], LOOK)  # woken by a move; the event log is read each LOOK
        finally:
            streams.give_back()

    def _warm(self) -> None:
        try:
            self.looks.keep_warm()
        except GitopsError as exc:  # the page's own look will say; the stream goes on
            log.debug("dashboard: a look to keep the pages warm failed: %s", exc)

    # -- changing ---------------------------------------------------------------------------
    def _post(self, req: Request, session: Session | None, secure: bool) -> Page:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        back = _safe_back(form.get("back", "/"))
        if req.path == "/ui/login":
            return self._login(form.get("token", ""), back, secure)
        if session is None:
            return self._error(401, "sign in first: actions need the API token")
        if not Sessions.csrf_ok(session, form.get("csrf", "")):
            return self._error(403, "the form's CSRF token is missing or wrong: reload the page")
        parts = [p for p in req.path.split("/") if p][1:]
        if parts == ["logout"]:
            self.sessions.sign_out(session.sid)
            return _redirect("/", (("Set-Cookie", cookie(None, secure)),))
        if parts == ["sync"]:
            self.app.trigger.fire("dashboard")
            return _redirect(_done(back, "sync"))
        if len(parts) == 3 and parts[0] == "nodes" and parts[2] in ("cordon", "uncordon", "drain"):
            return self._node(parts[1], parts[2], back)
        if len(parts) == 5 and parts[0] == "rollout":
            return self._rollout(parts[1], parts[2], parts[3], parts[4], req, back)
        return self._error(404, f"no action at {req.path[:200]}")

    def _login(self, token: str, back: str, secure: bool) -> Page:
        try:
            session = self.sessions.sign_in(token)
        except TooManyAttempts as exc:
            return self._error(429, str(exc))
        if session is None:
            log.warning("dashboard: a sign-in with a wrong token")
            return self._page("login.html", {"session": None, "filters": None, "back": back,
                                             "enabled": self.sessions.enabled,
                                             "flash": "That is not the API token.",
                                             "flash_kind": "err"}, "login", code=401)  # fmt: skip
        return _redirect(back, (("Set-Cookie", cookie(session, secure)),))

    def _node(self, name: str, verb: str, back: str) -> Page:
        try:
            self.app.mark_node(name, verb, "dashboard")
        except NodeNotFound as exc:
            return self._error(404, str(exc))
        return _redirect(_done(back, verb))

    def _rollout(self, kind: str, ns: str, name: str, verb: str, req: Request, back: str) -> Page:
        """The rollout verb's commit, made and pushed here with ``--write-back``; else the exact
        CLI command that makes it."""
        if verb not in changes.VERBS.get(kind, ()):
            return self._error(400, f"a {kind[:40]} has no rollout {verb[:20]}")
        revision: int | None = None
        if verb == "undo" and req.arg("revision"):
            if not req.arg("revision").isdigit() or len(req.arg("revision")) > 9:
                return self._error(400, "revision: expected a number from the rollout history")
            revision = int(req.arg("revision"))
        if self.writer is None:
            settings = self.app.settings
            command = pages.command_for(verb, kind, ns, name, self.git.display_url,
                                        settings.branch, settings.path, revision)  # fmt: skip
            ctx = {"session": None, "filters": None, "back": back, "command": command,
                   "heading": f"Rollout {verb} of {kind.lower()}/{name}"}  # fmt: skip
            return self._page("command.html", ctx, "command")
        try:
            made = self._change(kind, ns, name, verb, revision)
            pushed = self.writer.commit(made.message, made.edit, True, author=AUTHOR)
        except NothingToChange:
            return _redirect(_done(back, "unchanged"))
        except GitopsError as exc:  # redacted by the writer; the page says why, the log too
            log.warning("dashboard: rollout %s of %s %s/%s: %s", verb, kind, ns, name, exc)
            return self._error(409 if isinstance(exc, changes.NoSuchChange) else 502, str(exc))
        log.info("dashboard: rollout %s of %s %s/%s pushed as %s", verb, kind, ns, name,
                 pushed.sha[:12])  # fmt: skip
        self.app.trigger.fire(f"dashboard:{verb}")  # fetch the commit now, not at the poll
        return _redirect(_done(back, "pushed") + f"&commit={pushed.sha[:12]}")

    def _change(
        self, kind: str, ns: str, name: str, verb: str, revision: int | None
    ) -> changes.Change:
        target = replaced = ""
        if verb == "undo":
            rows = [asdict(r) for r in self.app.history.rollouts(ns, name, 100)]
            target, replaced = changes.undo_target(rows, f"{kind.lower()} {ns}/{name}", revision)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        by = f"the gitops dashboard (rollout {verb})"
        return changes.rollout(verb, (kind, ns, name), self.app.settings.path, now, by, target,
                               replaced)  # fmt: skip

    # -- answers ----------------------------------------------------------------------------
    def _page(
        self, template: str, ctx: Mapping[str, Any], page: str, live: bool = False, code: int = 200
    ) -> Page:
        base = {"page": page, "live": live, "version": build_info.info().get("version", ""),
                "signin": self.sessions.enabled, "flash": "", "flash_kind": ""}  # fmt: skip
        html = self.env.get_template(template).render({**base, **ctx})
        return Page(code, html.encode(), HTML)

    def _error(self, code: int, message: str) -> Page:
        ctx = {"session": None, "filters": None, "back": "/", "code": code, "message": message}
        return self._page("error.html", ctx, "error", code=code)

    def _sign_in_first(self, req: Request) -> Page:
        return _redirect(f"/ui/login?back={quote(_back(req), safe='')}")


def _back(req: Request) -> str:
    """Where a form on this page returns to: the page itself, with its query."""
    query = "&".join(f"{quote(k)}={quote(v)}" for k, vs in req.query.items() for v in vs
                     if k != "done")  # fmt: skip
    return _safe_back(req.path + (f"?{query}" if query else ""))


def _safe_back(path: str) -> str:
    """Only a path on this listener: never another site (``//host``, ``/\\host``, a scheme)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 2000:
        return "/"
    return path


def _flash(req: Request) -> str:
    """What the last action did, from ``DONE`` only; a pushed commit's SHA when it is one."""
    said = DONE.get(req.arg("done"), "")
    sha = req.arg("commit")
    if said and req.arg("done") == "pushed" and 7 <= len(sha) <= 40 and _is_hex(sha):
        said += f" (commit {sha})"
    return said


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text.lower())


def _done(back: str, what: str) -> str:
    """The page to go back to, saying what was done (one of ``DONE``: a link cannot make the
    page say anything else)."""
    return f"{back}{'&' if '?' in back else '?'}done={what}"


def _sha(text: str) -> str:
    if not (4 <= len(text) <= 40 and _is_hex(text)):
        raise ValueError("from and to: expected commit SHAs (4 to 40 hex digits)")
    return text.lower()


def _redirect(to: str, headers: tuple[tuple[str, str], ...] = ()) -> Page:
    return Page(303, b"", HTML, (("Location", to), *headers))
