"""The reconciler's HTTP API: ``/healthz``, ``/readyz``, ``/metrics``, ``/api/v1/...``.

Reads: status, history, and live views (a fresh look at the nodes on each request); open to
whoever can reach the listener, which is 127.0.0.1 unless told otherwise, and they hold no
secret value. Calls that change something need the bearer token. ``POST /api/v1/sync`` and the
webhooks only say "look again" (level-triggered), so they carry no data the reconciler trusts;
``sync?wait=true`` then answers when the commit is delivered (``gitops.decide.delivery``).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs

from gitops.config import build
from gitops.config.durations import format_duration, parse_duration
from gitops.config.settings import Settings
from gitops.decide import delivery, webhooks
from gitops.errors import GitopsError
from gitops.manifests.fields import DNS1123_LABEL
from gitops.model import selectors
from gitops.model.apis import API
from gitops.model.live import LiveState
from gitops.report.metrics import CONTENT_TYPE, Metrics
from gitops.serve import autoscalers, events, logs, objects, quotas, top, views
from gitops.serve.httpserver import HttpServer
from gitops.serve.readmodel import ReadModel
from gitops.serve.streams import Stream
from gitops.source.triggers import Trigger
from gitops.state.cluster import Cluster, NodeNotFound
from gitops.state.history import History

log = logging.getLogger(__name__)
WEBHOOKS = "/api/v1/webhooks/"
CLAIMS = "/api/v1/persistentvolumeclaims/"  # + NAMESPACE/NAME/delete
NAMESPACES = "/api/v1/namespaces/"  # + NAMESPACE/cronjobs/NAME/run
WAIT_POLL = 0.25  # seconds between looks while a deploy-and-wait request waits
MAX_WAIT = 3600.0  # a deploy-and-wait request holds a worker thread this long at most
MAX_BODY = 64 * 1024  # for calls other than webhooks, which have their own limit
REVISION = re.compile(r"[0-9a-fA-F]{4,40}")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""
    # Whether the client has gone (a streamed answer stops for it).
    disconnected: Callable[[], bool] = lambda: False

    def arg(self, name: str, default: str = "") -> str:
        return next(iter(self.query.get(name, [])), default)

    def number(self, name: str, default: int, low: int = 0, high: int = 1000) -> int:
        """An integer query parameter within [low, high]; ``BadRequest`` (400) otherwise."""
        text = self.arg(name)
        if not text:
            return default
        digits = len(text) <= 10 and text.isascii() and text.isdigit()
        if not digits or not low <= int(text) <= high:
            raise BadRequest(f"{name}: expected an integer from {low} to {high}")
        return int(text)

    def namespace(self) -> str | None:
        ns = self.arg("namespace")
        if ns and (len(ns) > 63 or not DNS1123_LABEL.fullmatch(ns)):
            raise BadRequest("namespace: expected a namespace name (a DNS-1123 label)")
        return ns or None


def revision(text: str) -> str:
    """A commit as a request names it: hex, abbreviated or whole; ``BadRequest`` otherwise
    (it goes to git, which must never take it for an option)."""
    if text and not REVISION.fullmatch(text):
        raise BadRequest("revision: expected a commit SHA (4 to 40 hex digits)")
    return text.lower()


class BadRequest(Exception):
    """A request the API cannot take as sent: answered 400 with the reason."""


class App:
    """Routes a request to a (status code, JSON-able body)."""

    def __init__(
        self,
        model: ReadModel,
        trigger: Trigger,
        settings: Settings,
        metrics: Metrics,
        history: History,
        cluster: Cluster,
        contains: Callable[[str, str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``model``: what the last pass found; ``contains(newer, older)``: the source's
        ancestry; ``cluster``: node state and the cordon and drain commands."""
        self.model, self.trigger, self.settings = model, trigger, settings
        self.metrics, self.history, self.cluster = metrics, history, cluster
        self.contains, self.clock = contains, clock
        self.token = settings.api_token.encode()
        self.stream_port = 0  # the stream listener's (gitops.serve.tunnels), once it listens
        self.webhook_secret = settings.webhook_secret.encode()
        # --leader-elect: what the election says (``gitops.runner.role``); None without one
        self.role: Callable[[], dict[str, Any]] | None = None

    def _ingress_listen(self) -> tuple[str, int, int]:
        st = self.settings
        return st.ingress_address, st.ingress_http_port, st.ingress_https_port

    def _run_cronjob(self, namespace: str, name: str) -> tuple[int, Any]:
        """A run of a CronJob now, as ``kubectl create job --from=cronjob/NAME``: made by the
        next pass, named NAME-manual-xxxxx, kept and counted like its scheduled runs."""
        run = self.model.run_cronjob(namespace, name)
        if run is None:
            return 404, {"error": f"cronjob {namespace}/{name} not found in the applied commit"}
        self.trigger.fire("api:create-job")
        return 201, {"job": run, "namespace": namespace, "cronjob": name}

    def _delete_claim(self, namespace: str, name: str, req: Request) -> tuple[int, Any]:
        """Remove a claim's volume and its data: only with ``confirm=true``, and only while no
        pod uses it (Kubernetes' pvc-protection). A claim still in git is made again, empty,
        the next time a pod uses it."""
        if req.arg("confirm") != "true":
            return 400, {"error": "deleting a volume deletes its data: add confirm=true"}
        live = self.model.look()
        volumes = [*live.volumes, *self.cluster.remembered(live.unreachable)]
        found = [v for v in volumes if v.key == (namespace, name)]
        if not found:
            return 404, {"error": f"persistentvolumeclaim {namespace}/{name} has no volume"}
        users = sorted(p.name for p in live.pods if p.namespace == namespace and name in p.claims)
        if users:
            why = f"used by pod(s) {', '.join(users)}: scale them down or remove them from git"
            return 409, {"error": f"persistentvolumeclaim {namespace}/{name} is {why} first"}
        silent = sorted({v.node for v in found} & set(live.unreachable))
        if silent:  # all or nothing: a shared claim has a volume on each node that used it
            return 503, {"error": f"its volume is on node {silent[0]}, which does not answer"}
        try:
            for volume in found:
                self.cluster.delete_volume(volume)
        except GitopsError as exc:
            return 500, {"error": str(exc)}
        self.trigger.fire("api:delete-pvc")
        return 200, {"deleted": f"{namespace}/{name}",
                     "node": ",".join(sorted({v.node for v in found})),
                     "volume": found[0].name}  # fmt: skip

    def mark_node(self, name: str, verb: str, by: str) -> None:
        """Cordon, uncordon or drain a node (NodeNotFound), and look again at once."""
        if verb == "uncordon":
            self.cluster.uncordon(name)
        else:
            self.cluster.cordon(name, drain=verb == "drain")
        self.trigger.fire(f"{by}:{verb}")

    def rows(
        self, kind: str, ns: str | None, live: LiveState | None = None
    ) -> list[dict[str, Any]] | None:
        """The rows ``gitops get`` shows of a kind (None for a kind there are none of), from
        ``live`` when the caller has looked already (a page of several kinds looks once)."""
        rec, cluster = self.model, self.cluster
        if live is None:  # the engines are asked only for the kinds whose rows need them
            live = rec.look() if kind in _LIVE_KINDS else LiveState((), {}, {})
        born = self.history.first_rollouts  # for the kinds that show them
        return {
            "pods": lambda: views.pod_rows(
                live,
                ns,
                rec.restart_counts(),
                rec.probe_ready,
                rec.unstarted,
                rec.pending,
                rec.blocked,
                {(r.namespace, r.name): r.kind for r in rec.status.resources},
            ),
            "nodes": cluster.describe,
            "deployments": lambda: views.deployment_rows(rec.status, live, ns, born=born()),
            "replicasets": lambda: views.deployment_rows(rec.status, live, ns, "ReplicaSet"),
            "statefulsets": lambda: views.deployment_rows(
                rec.status, live, ns, "StatefulSet", born()
            ),
            "daemonsets": lambda: views.deployment_rows(rec.status, live, ns, "DaemonSet", born()),
            "jobs": lambda: views.job_rows(rec.status, live, ns),
            "cronjobs": lambda: views.cronjob_rows(rec.status, rec.desired, ns),
            "replicationcontrollers": lambda: views.deployment_rows(
                rec.status, live, ns, "ReplicationController"
            ),
            "poddisruptionbudgets": lambda: views.budget_rows(rec.status, rec.desired, ns),
            "persistentvolumeclaims": lambda: views.claim_rows(
                rec.desired, live, [*live.volumes, *cluster.remembered(live.unreachable)], ns
            ),
            "services": lambda: views.service_rows(rec.desired, live, ns, rec.probe_ready),
            "namespaces": lambda: [
                {**r, **(quotas.of_namespace(rec.desired, live, r["name"]) if rec.desired else {})}
                for r in views.namespace_rows(rec.status, rec.desired)
            ],
            "configmaps": lambda: views.config_rows(rec.desired, "configmaps", ns),
            "secrets": lambda: views.config_rows(rec.desired, "secrets", ns),
            "endpoints": lambda: views.endpoint_rows(rec.endpoints, ns),
            "horizontalpodautoscalers": lambda: autoscalers.rows(rec.desired, rec.autoscaled, ns),
            "ingresses": lambda: views.ingress_rows(
                rec.status, rec.desired, rec.ingress, self._ingress_listen(), ns
            ),
        }.get(kind, lambda: None)()

    def _kube(self, path: str, ns: str | None, req: Request) -> tuple[int, Any]:
        """``/k8s`` + a Kubernetes API path: the objects as Kubernetes serves them (a List, or
        one object), ``labelSelector`` and ``fieldSelector=metadata.name=`` as it takes them."""
        parts = path.strip("/").split("/")
        namespace = ns
        if parts[:1] == ["api"]:
            group, rest = "v1", parts[2:] if parts[1:2] == ["v1"] else None
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            rest = None
        if rest and rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2 or API.get(rest[0], ("",))[0] != group:
            return 404, _status(404, "NotFound", f"the server could not find {path[:200]}")
        kind, name = rest[0], rest[1] if len(rest) == 2 else ""
        try:
            match = selectors.parse(req.arg("labelSelector")) if req.arg("labelSelector") else None
        except ValueError as exc:
            return 400, _status(400, "BadRequest", f"labelSelector: {exc}")
        field = req.arg("fieldSelector")
        if field and not field.startswith("metadata.name="):
            return 400, _status(400, "BadRequest", "fieldSelector: only metadata.name= is known")
        name = name or field.removeprefix("metadata.name=")
        rows = [r for r in self.rows(kind, namespace) or [] if not name or r["name"] == name]
        manifests = objects.manifests_of(self.model.desired, kind)
        items = [objects.to_object(kind, r, manifests) for r in rows]
        items = [o for o in items if match is None or match(o["metadata"]["labels"])]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if len(rest) == 2:
            if not items:
                return 404, _status(404, "NotFound", f'{kind} "{name}" not found')
            return 200, items[0]
        return 200, objects.as_list(items)

    def _pod_log(self, namespace: str, name: str, req: Request) -> tuple[int, Any]:
        """A container's log: app output may hold what its Secrets hold, so, as an exec, it
        needs the token."""
        if not self.authorized(req):
            return 401, {"error": "logs need the token: send Authorization: Bearer <token>"}
        try:
            opts = logs.options(req.arg, time.time())
            return 200, logs.pod_log(self.model, namespace, name, opts, req.disconnected)
        except logs.LogRequestError as exc:
            return exc.code, {"error": str(exc)}

    def _events(self, req: Request, namespace: str | None) -> tuple[int, Any]:
        log = self.model.events
        if log is None:
            return 404, {"error": "this reconciler keeps no events"}
        try:
            wanted = events.target(req.arg("for"))
            watch = req.arg("watch").lower() in ("1", "true")
            after = req.number("resourceVersion", 0, 0, 2**62)
            return 200, events.answer(log, namespace, wanted, watch, after, req.disconnected)
        except events.EventRequestError as exc:
            return exc.code, {"error": str(exc)}

    def _not_leader(self, elected: dict[str, Any]) -> tuple[int, Any]:
        """A follower changes nothing: the caller is told where the leader is (the CLI asks
        it in turn), as a Kubernetes API server's peer would redirect."""
        leader = elected.get("leader") or {}
        where = leader.get("address", "") if leader.get("holder") != elected["holder"] else ""
        said = f"the leader is at {where}" if where else "no process leads now"
        return 503, {"error": f"this reconciler follows ({said}): it changes nothing",
                     "reason": "NotLeader", "leader": where,
                     "lease": elected.get("lease", "")}  # fmt: skip

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
        ns = req.namespace()
        rec, cluster = self.model, self.cluster
        elected = self.role() if self.role is not None else None
        if method == "POST" and elected is not None and not elected["leading"]:
            return self._not_leader(elected)
        if method == "POST" and path.startswith(WEBHOOKS):
            return self.webhook(path.removeprefix(WEBHOOKS), req)
        if method == "POST" and not self.authorized(req):
            return 401, {"error": "this call changes state: send Authorization: Bearer <token>"}
        if method == "GET" and path == "/version":
            return 200, build.info()
        if method == "GET" and path == "/healthz":
            return 200, {"status": "ok"}
        if method == "GET" and path == "/readyz":
            # Ready: a pass has run, the source answered, and some node answers (one NotReady
            # node of several is the cluster's business, shown here, not a reason to pull us).
            nodes = {n: "Ready" if cluster.usable(n) else "NotReady" for n in cluster.nodes}
            ok = (
                bool(rec.status.time)
                and rec.status.reason != "SourceUnavailable"
                and "Ready" in nodes.values()
            )
            body = {"ready": ok, "reason": rec.status.reason, "nodes": nodes}
            if elected is not None:  # a follower serves reads: ready while it can read state
                ok = ok and not elected["error"]
                body |= {"ready": ok, "role": elected["role"], "lease": elected}
            return (200 if ok else 503), body
        if method == "GET" and path == "/readyz/leader":  # for a balancer of mutating calls
            leading = elected is None or bool(elected["leading"])
            return (200 if leading else 503), {"leader": leading} | (elected or {})
        if method == "GET" and path == "/api/v1/status":
            return 200, rec.status.to_dict() | {"trigger": rec.trigger,
                                                "triggeredAt": dict(rec.triggered)}  # fmt: skip
        if method == "GET" and path.startswith("/api/v1/jobs/") and path.count("/") == 5:
            namespace, _, name = path.removeprefix("/api/v1/jobs/").partition("/")
            runs = [
                asdict(r)
                for r in self.history.job_runs(namespace, name, req.number("limit", 20, 1))
            ]
            row = next((j for j in views.job_rows(rec.status, rec.look(), namespace)
                        if j["name"] == name), None)  # fmt: skip
            if row is None and not runs:
                return 404, {"error": f"job {namespace}/{name} not found"}
            return 200, {"job": row, "runs": runs}
        if method == "GET" and path.startswith(NAMESPACES) and path.endswith("/log"):
            parts = path.removeprefix(NAMESPACES).split("/")
            if len(parts) == 4 and parts[1] == "pods":
                return self._pod_log(parts[0], parts[2], req)
        if method == "GET" and path in ("/api/v1/top/pods", "/api/v1/top/nodes"):
            pods = top.pod_usage(rec.look(), ns if path.endswith("pods") else None, rec.usage)
            return 200, pods if path.endswith("pods") else top.node_usage(pods, cluster.describe())
        if method == "GET" and path == "/api/v1/streams":  # where exec and port-forward go
            if not self.stream_port:
                return 404, {"error": "this reconciler serves no exec or port-forward"}
            return 200, {"port": self.stream_port}
        if method == "GET" and path == "/api/v1/events":
            return self._events(req, ns)
        if method == "GET" and path == "/api/v1/keptlogs":  # the crashed pods since removed
            return 200, [
                {"namespace": k.namespace, "name": k.name, "node": k.node,
                 "workload": k.workload, "removed": k.removed,
                 "containers": [c for c, _ in k.containers]}
                for k in rec.kept_logs.list(ns)
            ]  # fmt: skip
        if method == "GET" and path == "/api/v1/history":
            return 200, [asdict(r) for r in self.history.syncs(req.number("limit", 50, 1))]
        if method == "GET" and path.startswith("/api/v1/rollouts/"):
            parts = path.removeprefix("/api/v1/rollouts/").split("/")
            if len(parts) == 2:
                return self._rollouts(parts[0], parts[1], req)
        if method == "POST" and path.startswith("/api/v1/nodes/"):
            name, _, verb = path.removeprefix("/api/v1/nodes/").partition("/")
            if verb in ("cordon", "uncordon", "drain"):
                try:
                    self.mark_node(name, verb, "api")
                except NodeNotFound as exc:
                    return 404, {"error": str(exc)}
                return 200, next(r for r in cluster.describe() if r["name"] == name)
        if method == "POST" and path.startswith(CLAIMS) and path.endswith("/delete"):
            claim_ns, _, name = path.removeprefix(CLAIMS).removesuffix("/delete").partition("/")
            return self._delete_claim(claim_ns, name, req)
        if method == "POST" and path.startswith(NAMESPACES) and path.endswith("/run"):
            parts = path.removeprefix(NAMESPACES).removesuffix("/run").split("/")
            if len(parts) == 3 and parts[1] == "cronjobs":
                return self._run_cronjob(parts[0], parts[2])
        if method == "POST" and path == "/api/v1/sync":
            return self.sync(req)
        if method == "GET" and path.startswith("/api/v1/sync/"):
            after = req.number("after", 0, 0, 2**31)
            return self._delivery_answer(
                self.delivery_of(revision(path.removeprefix("/api/v1/sync/")), after)
            )
        if method == "GET" and path.startswith("/k8s/"):
            return self._kube(path.removeprefix("/k8s"), ns, req)
        if method == "GET" and path.startswith("/api/v1/"):
            rows = self.rows(path.removeprefix("/api/v1/"), ns)
            if rows is not None:
                return 200, rows
        return 404, {"error": f"no route for {method} {path}"}

    # -- webhooks ---------------------------------------------------------------------------
    def webhook(self, provider: str, req: Request) -> tuple[int, Any]:
        settings = self.settings
        verdict = webhooks.judge(
            provider, req.headers, req.body, self.webhook_secret, settings.repo, settings.branch
        )
        self.metrics.webhook(provider, verdict.result)
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
        wanted = revision(req.arg("revision"))
        after = self.model.fetches_started  # a fetch numbered above this reads git anew
        self.trigger.fire("api")
        if req.arg("wait").lower() not in ("1", "true", "yes"):
            return 202, {"accepted": True, "revision": wanted, "after": after}
        try:
            timeout = parse_duration(req.arg("timeout", "5m"))
        except ValueError as exc:
            return 400, {"error": f"timeout: {exc}"}
        if timeout > MAX_WAIT:
            return 400, {"error": f"timeout: at most {format_duration(MAX_WAIT)}"}
        deadline = self.clock() + timeout
        while True:
            answer = self.delivery_of(wanted, after)
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

    def delivery_of(
        self, revision: str, after: int, only: tuple[str, str] | None = None
    ) -> delivery.Delivery:
        """Where ``revision`` stands; ``after``: the last fetch begun before the request;
        ``only``: one deployment's verdict."""
        rec = self.model
        fetched_since = rec.fetches_finished > after
        status = rec.status
        if not revision:
            if not fetched_since:
                return delivery.Delivery(
                    delivery.WAITING, "", "", "waiting for the reconciler to fetch the branch"
                )
            revision = status.revision
        deployments = rec.desired.deployments if rec.desired else ()
        latest = {d.key: rec.latest_rollout(d.key) for d in deployments}
        return delivery.judge(
            revision, status, latest, self.contains, fetched_since, self.settings.branch, only
        )

    @staticmethod
    def _delivery_answer(answer: delivery.Delivery) -> tuple[int, Any]:
        return delivery.HTTP_STATUS.get(answer.state, 200), answer.to_dict()

    def _rollouts(self, namespace: str, name: str, req: Request) -> tuple[int, Any]:
        """A deployment's status, its newest rollout records, and the verdict on ``revision``
        (default: the branch head that a fetch begun after fetch ``after`` found), as
        ``rollout status`` follows it."""
        rec = self.model
        status = next(
            (
                asdict(r)
                for r in rec.status.resources
                if r.kind in ("Deployment", "StatefulSet", "DaemonSet")
                and (r.namespace, r.name) == (namespace, name)
            ),
            None,
        )
        records = [
            asdict(r) for r in self.history.rollouts(namespace, name, req.number("limit", 20, 1))
        ]
        known = rec.desired is not None and rec.desired.deployment(namespace, name) is not None
        if status is None and not records and not known:  # in git but not yet reported: 200
            return 404, {"error": f"deployment {namespace}/{name} not found"}
        after = req.number("after", -1, 0, 2**31)  # absent: any fetch will do
        verdict = self.delivery_of(revision(req.arg("revision")), after, (namespace, name))
        return 200, {
            "deployment": status,
            "rollouts": records,
            "revision": rec.status.revision,
            "applied": rec.status.applied,
            "fetches": rec.fetches_started,
            "verdict": verdict.to_dict(),
        }


class Front:
    """The WSGI application ``gitops.serve.httpserver`` serves: a request becomes a ``Request`` for
    ``App.handle``, and every answer is JSON (errors too), never a traceback."""

    def __init__(self, app: App, ui: UI | None = None) -> None:
        self.app, self.ui = app, ui

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "") or "/")
        try:
            if method in ("GET", "HEAD") and path == "/metrics":
                text = self.app.metrics.exposition()
                return _reply(start_response, 200, text, CONTENT_TYPE, method)
            if self.ui is not None and self.ui.serves(path):
                return self._ui(method, path, environ, start_response)
            code, body = self._route(method, path, environ)
            if isinstance(body, Stream):
                return _streamed(start_response, 200, body)
        except Exception:  # the API must outlive any one bad request; say nothing of it
            log.exception("API %s %s failed", method, path[:200])
            code, body = 500, {"error": "internal error; the reconciler's log has the details"}
            if self.ui is not None and self.ui.serves(path):
                text = f"{body['error']}\n".encode()
                return _reply(start_response, code, text, "text/plain; charset=utf-8", method)
        data = json.dumps(body, indent=2, default=str).encode()
        extra = [("WWW-Authenticate", 'Bearer realm="gitops"')] if code == 401 else []
        if code == 405:
            extra.append(("Allow", "GET, HEAD, POST"))
        return _reply(start_response, code, data, "application/json", method, extra)

    def _ui(
        self, method: str, path: str, environ: Mapping[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """A dashboard page (``gitops.serve.dashboard``): its own answers, HTML, not JSON."""
        assert self.ui is not None
        req = self._request(method, path, environ)
        if not isinstance(req, Request):
            code, body = req
            data = str(body.get("error", "")).encode()
            return _reply(start_response, code, data, "text/plain; charset=utf-8", method)
        secure = environ.get("wsgi.url_scheme") == "https"
        answer = self.ui(req, secure)
        headers = [("Content-Security-Policy", UI_POLICY), ("X-Frame-Options", "DENY"),
                   ("Referrer-Policy", "no-referrer"), *answer.headers]  # fmt: skip
        if isinstance(answer.body, Stream):
            return _streamed(start_response, answer.code, answer.body, headers)
        return _reply(start_response, answer.code, answer.body, answer.content_type, method,
                      headers)  # fmt: skip

    def _request(
        self, method: str, path: str, environ: Mapping[str, Any]
    ) -> Request | tuple[int, Any]:
        """The request as ``App.handle`` and the dashboard take it, or the error answer."""
        if method not in ("GET", "HEAD", "POST"):
            return 405, {"error": f"method {method[:20]} is not allowed"}
        try:
            query = parse_qs(str(environ.get("QUERY_STRING", "")), strict_parsing=False)
        except ValueError as exc:
            return 400, {"error": f"query: {exc}"}
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        body = b""
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)  # the server checked it
            webhook = path.startswith(WEBHOOKS)
            limit = self.app.settings.webhook_max_bytes if webhook else MAX_BODY
            if length > limit:
                if webhook:
                    self.app.metrics.webhook(path.removeprefix(WEBHOOKS), webhooks.TOO_LARGE)
                return 413, {"error": f"body of {length} bytes is over the {limit}-byte limit"}
            body = environ["wsgi.input"].read(length) if length else b""
        gone = environ.get("waitress.client_disconnected") or (lambda: False)
        return Request("GET" if method == "HEAD" else method, path, query, headers, body, gone)

    def _route(self, method: str, path: str, environ: Mapping[str, Any]) -> tuple[int, Any]:
        req = self._request(method, path, environ)
        if not isinstance(req, Request):
            return req
        try:
            return self.app.handle(req)
        except BadRequest as exc:
            return 400, {"error": str(exc)}

    def refused(self, code: int, path: str) -> None:
        """The listener refused a request before it got here (too large, malformed)."""
        if code == 413 and path.startswith(WEBHOOKS):
            self.app.metrics.webhook(path.removeprefix(WEBHOOKS), webhooks.TOO_LARGE)


# The kinds whose rows need a fresh look at the engines (the others come from the applied
# commit, the last pass's status and the cluster's memory).
_LIVE_KINDS = frozenset({
    "pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs",
    "replicationcontrollers", "persistentvolumeclaims", "services", "namespaces",
})  # fmt: skip


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    """Kubernetes' ``Status`` for an error, as ``kubectl`` reads it."""
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code, "error": message}  # fmt: skip


def _streamed(
    start_response: Callable[..., Any],
    code: int,
    body: Stream,
    extra: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    headers = [*(extra or []), ("Content-Type", body.content_type), ("Cache-Control", "no-store"),
               ("X-Content-Type-Options", "nosniff")]  # fmt: skip
    # Headers now, not with the first line a quiet container writes (PEP 3333 holds them until
    # then): through the write callable, as waitress's own file answers do.
    start_response(f"{code} {HTTPStatus(code).phrase}", headers)(b"")
    return body.chunks  # sent as they come


def _reply(
    start_response: Callable[..., Any],
    code: int,
    data: bytes,
    content_type: str,
    method: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(data))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *(extra or []),
    ]
    start_response(f"{code} {HTTPStatus(code).phrase}", headers)
    return [] if method == "HEAD" else [data]


HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Page:
    """A dashboard answer: HTML, a static file, a redirect, or a stream."""

    code: int
    body: bytes | Stream
    content_type: str = HTML
    headers: tuple[tuple[str, str], ...] = ()


class UI(Protocol):
    """The dashboard as the API's front door sees it (``gitops.serve.dashboard.web``)."""

    def serves(self, path: str) -> bool: ...

    def __call__(self, req: Request, secure: bool) -> Page: ...


UI_POLICY = (  # the dashboard's pages run only this listener's own script and styles
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def serve(app: App, host: str, port: int, ui: UI | None = None) -> HttpServer:
    """The API's listener, bounded as ``gitops.serve.httpserver`` says; started by the caller."""
    front = Front(app, ui)
    limit = max(app.settings.webhook_max_bytes, MAX_BODY)
    return HttpServer(host, port, front, limit, on_refused=front.refused)
