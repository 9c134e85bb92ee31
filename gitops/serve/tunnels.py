"""The stream listener: ``gitops exec`` and ``gitops port-forward`` to a pod on any node, over
one upgraded connection each, as the kubelet's streaming server serves kubectl.

A request is HTTP/1.1 with ``Upgrade: tcp`` and the API token (an exec is a mutating call):
``POST /exec/NS/POD?container=C&tty=true&command=sh&command=-c...`` or
``POST /portforward/NS/POD?port=8080``. Refused, it is answered with a status and a JSON
reason; taken, with ``101 Switching Protocols``, after which the connection carries frames
(``gitops.model.sessions``) for an exec, and the forwarded port's bytes for a port-forward: a
``nc`` to the pod's own 127.0.0.1 in its network holder container, through its node's engine,
so it reaches pods on nodes this machine has no route to. The listener is separate from the
API's (waitress cannot hand a connection over) and on the API's host, on a port of its own
(``GET /api/v1/streams`` says which).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gitops.errors import GitopsError
from gitops.manifests.fields import DNS1123_LABEL
from gitops.model import sessions as ch
from gitops.model.live import LiveState, PodInfo
from gitops.model.sessions import ExecSession, FrameReader
from gitops.serve.logs import default_container

log = logging.getLogger(__name__)
MAX_TUNNELS = 32
HEAD_TIMEOUT = 10.0  # seconds a client has to send its request line and headers
MAX_HEAD = 16 * 1024

Look = Callable[[], LiveState]
Start = Callable[[str, str, list[str], bool], ExecSession]  # node, container, command, tty


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Tunnels:
    def __init__(self, host: str, port: int, token: bytes, look: Look, start: Start) -> None:
        self.token, self.look, self.start_exec = token, look, start
        self._slots = threading.BoundedSemaphore(MAX_TUNNELS)
        self.server = _Server((host, port), _Handler)
        self.server.tunnels = self
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="tunnels")  # fmt: skip

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- one connection -------------------------------------------------------------------
    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(HEAD_TIMEOUT)
        try:
            method, target, headers = _head(conn)
            if not self._slots.acquire(blocking=False):
                raise Refused(429, f"{MAX_TUNNELS} sessions are open already: try again later")
        except Refused as exc:
            _refuse(conn, exc.code, str(exc))
            return
        except (OSError, ValueError):
            return  # a client that sent no request
        try:
            self._serve(conn, method, target, headers)
        except Refused as exc:
            _refuse(conn, exc.code, str(exc))
        finally:
            self._slots.release()

    def _serve(
        self, conn: socket.socket, method: str, target: str, headers: dict[str, str]
    ) -> None:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if not (self.token and scheme.lower() == "bearer"
                and hmac.compare_digest(given.strip().encode(), self.token)):  # fmt: skip
            raise Refused(401, "exec and port-forward need the token: Authorization: Bearer")
        if method != "POST" or headers.get("upgrade", "").lower() != "tcp":
            raise Refused(400, "expected POST with Connection: Upgrade and Upgrade: tcp")
        url = urlsplit(target)
        query = parse_qs(url.query)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if len(parts) != 3 or parts[0] not in ("exec", "portforward"):
            raise Refused(404, f"no route for {url.path[:100]}")
        verb, namespace, name = parts
        pod = self._pod(namespace, name)
        if verb == "exec":
            self._exec(conn, pod, query)
        else:
            self._forward(conn, pod, query)

    def _pod(self, namespace: str, name: str) -> PodInfo:
        if not DNS1123_LABEL.fullmatch(namespace) or len(name) > 253:
            raise Refused(400, "expected /VERB/NAMESPACE/POD")
        pod = next((p for p in self.look().pods
                    if (p.namespace, p.name) == (namespace, name)), None)  # fmt: skip
        if pod is None:
            raise Refused(404, f'pods "{name}" not found')
        return pod

    def _exec(self, conn: socket.socket, pod: PodInfo, query: dict[str, list[str]]) -> None:
        command = query.get("command") or []
        if not command:
            raise Refused(400, "command: give the command to run (command=sh&command=-c...)")
        wanted = (query.get("container") or [""])[0]
        apps = {c.meta.container or c.name: c for c in pod.app_containers()}
        if not wanted:
            try:
                wanted = default_container(pod.name, list(apps))
            except LookupError as exc:
                raise Refused(400, str(exc)) from exc
        c = apps.get(wanted)
        if c is None or c.state != "running":
            raise Refused(400, f"container {wanted} is not running in pod {pod.name}")
        tty = (query.get("tty") or ["false"])[0] == "true"
        session = self._start(pod.node, c.id, command, tty)
        log.info("exec in %s/%s (%s): %s", pod.namespace, pod.name, wanted, command[0][:40])
        _upgrade(conn)
        _pump_frames(conn, session)

    def _forward(self, conn: socket.socket, pod: PodInfo, query: dict[str, list[str]]) -> None:
        text = (query.get("port") or [""])[0]
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise Refused(400, "port: expected a port from 1 to 65535")
        holder = pod.holder or next(iter(pod.app_containers()), None)
        if holder is None or holder.state != "running":
            raise Refused(400, f"pod {pod.name} is not running")
        session = self._start(pod.node, holder.id, ["nc", "127.0.0.1", text], False)
        _upgrade(conn)
        _pump_raw(conn, session)

    def _start(self, node: str, cid: str, command: list[str], tty: bool) -> ExecSession:
        try:
            return self.start_exec(node, cid, command, tty)
        except GitopsError as exc:
            raise Refused(503, str(exc)) from exc


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    tunnels: Tunnels


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        try:
            server.tunnels.serve(self.request)
        except Exception:  # one session's failure is its own
            log.exception("stream session failed")


def _head(conn: socket.socket) -> tuple[str, str, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(4096)
        if not more:
            raise ValueError("closed")
        data += more
        if len(data) > MAX_HEAD:
            raise Refused(431, "request head over 16 KiB")
    head, _, rest = data.partition(b"\r\n\r\n")
    if rest:
        raise Refused(400, "no body before the upgrade")
    lines = head.decode("latin-1").split("\r\n")
    words = lines[0].split(" ")
    if len(words) != 3 or not words[2].startswith("HTTP/1."):
        raise Refused(400, "expected an HTTP/1.1 request line")
    headers = {}
    for line in lines[1:]:
        key, colon, value = line.partition(":")
        if colon:
            headers[key.strip().lower()] = value.strip()
    return words[0], words[1], headers


def _refuse(conn: socket.socket, code: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    reason = HTTPStatus(code).phrase
    head = (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        conn.sendall(head.encode() + body)


def _upgrade(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    conn.settimeout(None)


def _pump_frames(conn: socket.socket, session: ExecSession) -> None:
    """Client frames to the command (stdin, resizes, the end of stdin); its output back as
    frames, then its exit code."""

    reader = FrameReader()

    def take(data: bytes) -> None:
        for channel, payload in reader.feed(data):
            if channel == ch.STDIN:
                session.write(payload)
            elif channel == ch.RESIZE:
                session.resize(*ch.size_of(payload))
            elif channel == ch.STDIN_EOF:
                session.close_stdin()

    _inbound(conn, session, take)
    try:
        while True:
            channel, data = session.read()
            if not data:
                break
            conn.sendall(ch.frame(channel, data))
        conn.sendall(ch.frame(ch.EXIT, str(session.exit_code()).encode()))
    except (OSError, GitopsError) as exc:
        with contextlib.suppress(OSError):
            conn.sendall(ch.frame(ch.ERROR, str(exc).encode()))
    finally:
        session.close()
        with contextlib.suppress(OSError):
            conn.close()


def _inbound(conn: socket.socket, session: ExecSession, take: Callable[[bytes], None]) -> None:
    """What the client sends, to ``take`` in a thread of its own; its end is the end of the
    command's stdin."""

    def run() -> None:
        try:
            while data := conn.recv(65536):
                take(data)
        except (OSError, ValueError):  # gone, or a frame past the limit
            pass
        session.close_stdin()

    threading.Thread(target=run, daemon=True, name="session-in").start()


def _pump_raw(conn: socket.socket, session: ExecSession) -> None:
    _inbound(conn, session, session.write)
    try:
        while True:
            _, data = session.read()
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    finally:
        session.close()
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
