"""The reconciler's HTTP API: ``/healthz``, ``/readyz``, ``/metrics``, ``/api/v1/...``.

Reads: status, history, and live views (a fresh look at the nodes on each request); open to
whoever can reach the listener, which is 127.0.0.1 unless told otherwise, and they hold no
secret value. Calls that change something need the bearer token. ``POST /api/v1/sync`` and the
webhooks only say "look again" (level-triggered), so they carry no data the reconciler trusts;
``sync?wait=true`` then answers when the commit is delivered (``gitops.delivery``).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gitops import delivery, views, webhooks
from gitops.cluster import NodeNotFound
from gitops.durations import format_duration, parse_duration
from gitops.live import observe
from gitops.metrics import CONTENT_TYPE
from gitops.reconciler import Reconciler
from gitops.source.triggers import Trigger

log = logging.getLogger(__name__)
WEBHOOKS = "/api/v1/webhooks/"
WAIT_POLL = 0.25  # seconds between looks while a deploy-and-wait request waits
MAX_BODY = 64 * 1024  # for calls other than webhooks, which have their own limit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""

    def arg(self, name: str, default: str = "") -> str:
        return next(iter(self.query.get(name, [])), default)


class App:
    """Routes a request to a (status code, JSON-able body)."""

    def __init__(
        self, reconciler: Reconciler, trigger: Trigger, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.reconciler, self.trigger, self.clock = reconciler, trigger, clock
        settings = reconciler.settings
        self.token = settings.api_token.encode()
        self.webhook_secret = settings.webhook_secret.encode()

    def authorized(self, req: Request) -> bool:
        """Bearer token, compared in constant time. Reads and webhooks do not need it (a
        webhook is verified by its provider's signature instead)."""
        given = req.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        return (
            bool(self.token)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(token.strip().encode(), self.token)
        )

    def handle(self, req: Request) -> tuple[int, Any]:
        method, path = req.method, req.path
        ns = req.arg("namespace") or None
        rec = self.reconciler
        if method == "POST" and path.startswith(WEBHOOKS):
            return self.webhook(path.removeprefix(WEBHOOKS), req)
        if method == "POST" and not self.authorized(req):
            return 401, {"error": "this call changes state: send Authorization: Bearer <token>"}
        if method == "GET" and path == "/healthz":
            return 200, {"status": "ok"}
        if method == "GET" and path == "/readyz":
            # Ready: a pass has run, the source answered, and some node answers (one NotReady
            # node of several is the cluster's business, shown here, not a reason to pull us).
            nodes = {n: "Ready" if rec.cluster.usable(n) else "NotReady" for n in rec.nodes}
            ok = (
                bool(rec.status.time)
                and rec.status.reason != "SourceUnavailable"
                and "Ready" in nodes.values()
            )
            body = {"ready": ok, "reason": rec.status.reason, "nodes": nodes}
            return (200 if ok else 503), body
        if method == "GET" and path == "/api/v1/status":
            return 200, rec.status.to_dict()
        if method == "GET" and path == "/api/v1/history":
            return 200, [asdict(r) for r in rec.history.syncs(int(req.arg("limit", "50")))]
        if method == "GET" and path.startswith("/api/v1/rollouts/"):
            parts = path.removeprefix("/api/v1/rollouts/").split("/")
            if len(parts) == 2:
                return self._rollouts(parts[0], parts[1], int(req.arg("limit", "20")))
        if method == "GET" and path == "/api/v1/nodes":
            return 200, rec.cluster.describe()
        if method == "POST" and path.startswith("/api/v1/nodes/"):
            name, _, verb = path.removeprefix("/api/v1/nodes/").partition("/")
            if verb in ("cordon", "uncordon", "drain"):
                try:
                    if verb == "uncordon":
                        rec.cluster.uncordon(name)
                    else:
                        rec.cluster.cordon(name, drain=verb == "drain")
                except NodeNotFound as exc:
                    return 404, {"error": str(exc)}
                self.trigger.fire(f"api:{verb}")
                return 200, next(r for r in rec.cluster.describe() if r["name"] == name)
        if method == "POST" and path == "/api/v1/sync":
            return self.sync(req)
        if method == "GET" and path.startswith("/api/v1/sync/"):
            after = int(req.arg("after", "0"))
            return self._delivery_answer(
                self.delivery_of(path.removeprefix("/api/v1/sync/"), after)
            )
        if method == "GET" and path.startswith("/api/v1/"):
            kind = path.removeprefix("/api/v1/")
            live = observe(list(rec.nodes.values()))
            rows: list[dict[str, Any]] | None = {
                "pods": lambda: views.pod_rows(
                    live, ns, rec.crash.counts(), rec.probe_ready, rec.unstarted, rec.pending
                ),
                "deployments": lambda: views.deployment_rows(rec.status, live, ns),
                "services": lambda: views.service_rows(rec.desired, live, ns, rec.probe_ready),
                "namespaces": lambda: views.namespace_rows(rec.status, rec.desired),
                "configmaps": lambda: views.config_rows(rec.desired, "configmaps", ns),
                "secrets": lambda: views.config_rows(rec.desired, "secrets", ns),
                "endpoints": lambda: views.endpoint_rows(rec.endpoints, ns),
            }.get(kind, lambda: None)()
            if rows is not None:
                return 200, rows
        return 404, {"error": f"no route for {method} {path}"}

    # -- webhooks ---------------------------------------------------------------------------
    def webhook(self, provider: str, req: Request) -> tuple[int, Any]:
        settings = self.reconciler.settings
        verdict = webhooks.judge(
            provider, req.headers, req.body, self.webhook_secret, settings.repo, settings.branch
        )
        self.reconciler.metrics.webhook(provider, verdict.result)
        if verdict.result == webhooks.ACCEPTED:
            self.trigger.fire(f"webhook:{provider}")  # a burst of pushes makes one pass
        log.log(
            logging.INFO if verdict.status < 400 else logging.WARNING,
            "webhook %s: %s (%s)", provider[:20], verdict.result, verdict.message,
        )  # fmt: skip
        body = {"result": verdict.result, "message": verdict.message}
        return verdict.status, body | ({"revision": verdict.revision} if verdict.revision else {})

    # -- deploy and wait --------------------------------------------------------------------
    def sync(self, req: Request) -> tuple[int, Any]:
        """Fetch and reconcile now. With ``wait=true``, answer when ``revision`` (default:
        the branch head the next pass fetches) is delivered, failed, or ``timeout`` passes."""
        revision = req.arg("revision")
        after = self.reconciler.fetches_started  # a fetch numbered above this reads git anew
        self.trigger.fire("api")
        if req.arg("wait").lower() not in ("1", "true", "yes"):
            return 202, {"accepted": True, "revision": revision, "after": after}
        try:
            timeout = parse_duration(req.arg("timeout", "5m"))
        except ValueError as exc:
            return 400, {"error": str(exc)}
        deadline = self.clock() + timeout
        while True:
            answer = self.delivery_of(revision, after)
            if answer.done:
                return self._delivery_answer(answer)
            if self.clock() >= deadline:
                timed_out = replace(
                    answer,
                    state=delivery.TIMED_OUT,
                    message=f"timed out after {format_duration(timeout)}: {answer.message}",
                )
                return self._delivery_answer(timed_out)
            time.sleep(WAIT_POLL)

    def delivery_of(self, revision: str, after: int) -> delivery.Delivery:
        """Where ``revision`` stands; ``after``: the last fetch begun before the request."""
        rec = self.reconciler
        fetched_since = rec.fetches_finished > after
        status = rec.status
        if not revision:
            if not fetched_since:
                return delivery.Delivery(delivery.WAITING, "", "", "waiting for a fetch")
            revision = status.revision
        deployments = rec.desired.deployments if rec.desired else ()
        latest = {d.key: rec.revisions.latest(d.key) for d in deployments}
        return delivery.judge(
            revision, status, latest, rec.source.contains, fetched_since, rec.settings.branch
        )

    @staticmethod
    def _delivery_answer(answer: delivery.Delivery) -> tuple[int, Any]:
        return delivery.HTTP_STATUS.get(answer.state, 200), answer.to_dict()

    def _rollouts(self, namespace: str, name: str, limit: int) -> tuple[int, Any]:
        rec = self.reconciler
        status = next(
            (
                asdict(r)
                for r in rec.status.resources
                if (r.kind, r.namespace, r.name) == ("Deployment", namespace, name)
            ),
            None,
        )
        records = [asdict(r) for r in rec.history.rollouts(namespace, name, limit)]
        known = rec.desired is not None and rec.desired.deployment(namespace, name) is not None
        if status is None and not records and not known:  # in git but not yet reported: 200
            return 404, {"error": f"deployment {namespace}/{name} not found"}
        return 200, {"deployment": status, "rollouts": records, "revision": rec.status.revision}


def _handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "gitops"

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            if method == "GET" and url.path == "/metrics":
                text = app.reconciler.metrics.exposition()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
                return
            code, body = self._body(method, url.path)
            if body is None:
                try:
                    req = Request(
                        method,
                        url.path,
                        parse_qs(url.query),
                        {k.lower(): v for k, v in self.headers.items()},
                        self._read,
                    )
                    code, body = app.handle(req)
                except Exception as exc:  # the API must outlive any one bad request
                    log.exception("API %s %s failed", method, url.path)
                    code, body = 500, {"error": str(exc)}
            self._answer(code, body)

        def _body(self, method: str, path: str) -> tuple[int, Any]:
            """Read the request body within its limit: (0, None) when read, else the answer."""
            self._read = b""
            if method != "POST":
                return 0, None
            webhook = path.startswith(WEBHOOKS)
            limit = app.reconciler.settings.webhook_max_bytes if webhook else MAX_BODY
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                return 411, {"error": "send Content-Length, not a chunked body"}
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return 400, {"error": "bad Content-Length"}
            if length > limit:
                # Refused unread; the connection is closed, so the unread rest does no harm.
                self.close_connection = True
                if webhook:
                    app.reconciler.metrics.webhook(path.removeprefix(WEBHOOKS), webhooks.TOO_LARGE)
                return 413, {"error": f"body of {length} bytes is over the {limit}-byte limit"}
            self._read = self.rfile.read(length) if length else b""
            return 0, None

        def _answer(self, code: int, body: Any) -> None:
            data = json.dumps(body, indent=2, default=str).encode()
            self.send_response(code)
            if code == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="gitops"')
            if self.close_connection:
                self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("api: " + format, *args)

    return Handler


class ApiServer:
    def __init__(self, host: str, port: int, app: App) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(app))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="api")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
