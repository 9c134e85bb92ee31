"""The HTTP listener of ``gitops run``: waitress, the one adapter to it.

Why waitress rather than the standard library's ``http.server``: it parses requests strictly
(an invalid or negative ``Content-Length``, a smuggling attempt, an oversized header or body is
answered 400/413 before the application sees it, and a refused body is never read), it serves
every connection from one event loop with a bounded pool of worker threads (an idle connection
costs a file descriptor, not a thread), it closes connections idle past a timeout, caps how
many are open, and never puts a traceback in an answer. What it lacks is added here: at the cap
it makes room by closing the connections idle longest instead of leaving new clients queued
behind them, as nginx reuses idle connections when it runs out, so a flood of idle sockets
cannot lock operators out; and the cap follows the process's file-descriptor limit, so the
passes, git and the engines always keep descriptors of their own.
"""

from __future__ import annotations

import json
import logging
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

log = logging.getLogger(__name__)
THREADS = 16  # requests served at once; the rest wait in the event loop, costing no thread
IDLE_TIMEOUT = 30.0  # seconds a connection may sit with no request in progress
MAX_HEADER_BYTES = 64 * 1024
MAX_CONNECTIONS = 512
RESERVED_FDS = 3 / 4  # of RLIMIT_NOFILE, kept for everything but the listener

WSGIApp = Callable[..., Any]


def connection_cap(limit: int = MAX_CONNECTIONS) -> int:
    """Open connections at most: ``limit``, and a quarter of the descriptors the process may
    open, whichever is smaller."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limit
    return max(8, min(limit, int(soft * (1 - RESERVED_FDS))))


class _Refusal(ErrorTask):  # type: ignore[misc]
    """waitress's own refusals (400, 413, ...) answered as every gitops answer is, in JSON,
    and told to ``on_refused`` first, so those made before the application runs still count."""

    def execute(self) -> None:
        error = self.request.error
        hook = getattr(self.channel.server, "on_refused", None)
        if hook is not None:
            try:
                hook(int(error.code), str(self.request.path or ""))
            except Exception:  # counting must never cost the answer
                log.exception("counting a refused request failed")
        body = json.dumps({"error": f"{error.reason}: {error.body}"}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _Refusal


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel
    on_refused: Callable[[int, str], None] | None = None

    def readable(self) -> bool:
        if self.accepting and len(self._map) >= self.adj.connection_limit:
            self._make_room()
        return bool(super().readable())

    def _make_room(self) -> None:
        """Close the connections idle longest (nothing being read into a request that was
        completed, nothing being answered): an eighth of the cap, so the next clients get in."""
        idle = sorted(
            (
                c
                for c in self.active_channels.values()
                if not c.requests and not c.total_outbufs_len and not c.will_close
            ),
            key=lambda c: c.last_activity,
        )
        room = max(1, self.adj.connection_limit // 8)
        for channel in idle[:room]:
            channel.will_close = True  # closed by the event loop's next turn
        if idle:
            log.warning(
                "API: %d connections open, the cap; closed the %d idle longest",
                len(self.active_channels), min(room, len(idle)),
            )  # fmt: skip


class HttpServer:
    """Serves one WSGI application on ``host:port`` from a thread of its own."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApp,
        max_body: int,
        on_refused: Callable[[int, str], None] | None = None,
        connections: int | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self._map: dict[int, Any] = {}
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(THREADS)
        self._server = _Server(
            app,
            map=self._map,
            dispatcher=dispatcher,
            host=host,
            port=port,
            threads=THREADS,
            connection_limit=connections or connection_cap(),
            channel_timeout=idle_timeout,
            cleanup_interval=max(1.0, idle_timeout / 4),
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=max_body,
            backlog=1024,
            ident="gitops",
            asyncore_use_poll=True,  # select() cannot watch a descriptor above 1023
            expose_tracebacks=False,
            clear_untrusted_proxy_headers=True,
            log_socket_errors=False,
            # Reading ahead lets a streamed answer (a followed log) see its client leave.
            channel_request_lookahead=4,
        )
        self._server.on_refused = on_refused
        self._thread = threading.Thread(target=self._run, daemon=True, name="api")

    @property
    def address(self) -> tuple[str, int]:
        return str(self._server.effective_host), int(self._server.effective_port)

    @property
    def connections(self) -> int:
        return len(self._server.active_channels)

    def _run(self) -> None:
        while True:
            try:
                self._server.run()
                return
            except Exception:  # the listener must outlive any one failure
                if not self._map:
                    return
                log.exception("API event loop failed; serving again")
                time.sleep(0.1)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        for channel in list(self._map.values()):
            channel.close()
        self._map.clear()
        self._thread.join(timeout=5)
