"""The reconciler's HTTP API: ``/healthz``, ``/readyz``, ``/api/v1/...``.

Reads: status, history, and live views (a fresh look at the nodes on each request).
``POST /api/v1/sync`` only says "look again" (level-triggered), so it carries no data.
Listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gitops import views
from gitops.cluster import NodeNotFound
from gitops.live import observe
from gitops.metrics import CONTENT_TYPE
from gitops.reconciler import Reconciler
from gitops.source.triggers import Trigger

log = logging.getLogger(__name__)


class App:
    """Routes a request to a (status code, JSON-able body)."""

    def __init__(self, reconciler: Reconciler, trigger: Trigger) -> None:
        self.reconciler, self.trigger = reconciler, trigger

    def handle(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        ns = next(iter(query.get("namespace", [])), None)
        rec = self.reconciler
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
            limit = int((query.get("limit") or ["50"])[0])
            return 200, [asdict(r) for r in rec.history.syncs(limit)]
        if method == "GET" and path.startswith("/api/v1/rollouts/"):
            parts = path.removeprefix("/api/v1/rollouts/").split("/")
            if len(parts) == 2:
                return self._rollouts(parts[0], parts[1], int((query.get("limit") or ["20"])[0]))
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
            self.trigger.fire("api")
            return 202, {"accepted": True}
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
                "endpoints": lambda: views.endpoint_rows(rec.endpoints, ns),
            }.get(kind, lambda: None)()
            if rows is not None:
                return 200, rows
        return 404, {"error": f"no route for {method} {path}"}

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
            try:
                code, body = app.handle(method, url.path, parse_qs(url.query))
            except Exception as exc:  # the API must outlive any one bad request
                log.exception("API %s %s failed", method, url.path)
                code, body = 500, {"error": str(exc)}
            data = json.dumps(body, indent=2, default=str).encode()
            self.send_response(code)
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
