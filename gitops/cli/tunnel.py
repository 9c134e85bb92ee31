"""``gitops exec`` and ``gitops port-forward``: to a pod on whichever node holds it, through the
running reconciler's stream listener (``gitops.serve.tunnels``) and its token, so a user needs
no access to any engine.

    gitops exec POD [-c C] [-i] [-t] -- CMD [ARG...]   exits with the command's exit status
    gitops port-forward POD|svc/NAME [LOCAL:]REMOTE    listens on 127.0.0.1 only
    gitops proxy [--port 8001]                         as kubectl proxy: the API, with the
        token, and /api/v1/namespaces/NS/services/NAME[:PORT]/proxy/PATH into a Service
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from gitops.cli import client
from gitops.cli.common import ERROR, FAILED, OK
from gitops.model import sessions as ch


def add_parsers(sub: Any, server: str) -> None:
    p = sub.add_parser("exec", help="run a command in a pod's container, on any node (-it: a "
                       "terminal)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("pod", metavar="POD")
    p.add_argument("command", nargs="*", metavar="-- CMD", help="the command, after --")
    p.add_argument("-c", "--container", default="", help="this container (default: the only one)")
    p.add_argument("-i", "--stdin", action="store_true", help="pass this terminal's input on")
    p.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE"))
    p.add_argument("--server", default=server, help="the running reconciler's API")
    p = sub.add_parser("port-forward", help="forward a local port to a pod's (or a Service's "
                       "pod's) port, on any node", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("target", metavar="POD|svc/NAME")
    p.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE")
    p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE"))
    p.add_argument("--address", default="127.0.0.1", choices=("127.0.0.1", "localhost"),
                   help="where to listen: this machine only")  # fmt: skip
    p.add_argument("--server", default=server, help="the running reconciler's API")
    p = sub.add_parser("proxy", help="an HTTP proxy on 127.0.0.1 to the API (with the token) and "
                       "into Services, as kubectl proxy", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("-p", "--port", type=int, default=8001, help="where to listen (0: any free)")
    p.add_argument("--server", default=server, help="the running reconciler's API")


# -- shared ---------------------------------------------------------------------------------
def _pod(args: argparse.Namespace, name: str) -> dict[str, Any]:
    found = [p for p in client.pods(args.server, args.namespace) if p["name"] == name]
    if not found:
        print(f'Error from server (NotFound): pods "{name}" not found', file=sys.stderr)
        raise SystemExit(FAILED)
    if len({p["namespace"] for p in found}) > 1:
        print(f"gitops: pod {name} is in several namespaces: give -n", file=sys.stderr)
        raise SystemExit(ERROR)
    return dict(found[0])


def _connect(args: argparse.Namespace, path: str) -> socket.socket:
    """An upgraded connection to the stream listener, or an exit with its reason."""
    port = client.get(args.server, "/api/v1/streams")["port"]
    host = urlsplit(args.server).hostname or "127.0.0.1"
    token = client.read_token()
    try:
        conn = socket.create_connection((host, int(port)), timeout=30)
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                     "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())  # fmt: skip
        head = b""
        while b"\r\n\r\n" not in head:
            more = conn.recv(4096)
            if not more:
                break
            head += more
    except OSError as exc:
        print(f"gitops: cannot reach the reconciler's streams at {host}:{port}: {exc}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(ERROR) from exc
    status, _, rest = head.partition(b"\r\n\r\n")
    words = status.split(b" ", 2)
    code = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
    if code != 101:
        try:
            said = json.loads(rest.decode() or "{}").get("error", status.decode())
        except ValueError:
            said = status.decode(errors="replace")
        print(f"gitops: {said}", file=sys.stderr)
        conn.close()
        raise SystemExit(ERROR if code in (0, 401, 429, 503) else FAILED)
    conn.settimeout(None)
    return conn


# -- exec -----------------------------------------------------------------------------------
def cmd_exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("gitops: exec POD -- COMMAND: give the command to run", file=sys.stderr)
        return ERROR
    pod = _pod(args, args.pod)
    query = [("command", c) for c in command] + [("tty", "true" if args.tty else "false")]
    if args.container:
        query.append(("container", args.container))
    path = (f"/exec/{quote(pod['namespace'], safe='')}/{quote(pod['name'], safe='')}?"
            + urlencode(query))  # fmt: skip
    conn = _connect(args, path)
    terminal = args.tty and args.stdin and sys.stdin.isatty()
    saved = None
    if terminal:
        import termios
        import tty

        saved = termios.tcgetattr(sys.stdin.fileno())
        tty.setraw(sys.stdin.fileno())
        _send_size(conn)
        signal.signal(signal.SIGWINCH, lambda *_: _send_size(conn))
    if args.stdin:
        threading.Thread(target=_stdin_to, args=(conn,), daemon=True).start()
    else:
        conn.sendall(ch.frame(ch.STDIN_EOF))
    try:
        return _frames_out(conn)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


def _send_size(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        size = os.get_terminal_size(sys.stdin.fileno())
        conn.sendall(ch.resize_frame(size.columns, size.lines))


def _stdin_to(conn: socket.socket) -> None:
    fd = sys.stdin.fileno()
    try:
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            conn.sendall(ch.frame(ch.STDIN, data))
        conn.sendall(ch.frame(ch.STDIN_EOF))
    except OSError:
        pass


def _frames_out(conn: socket.socket) -> int:
    reader = ch.FrameReader()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    while True:
        data = conn.recv(65536)
        if not data:
            print("\ngitops: the session ended without an exit status", file=sys.stderr)
            return ERROR
        for channel, payload in reader.feed(data):
            if channel == ch.STDOUT:
                out.write(payload)
                out.flush()
            elif channel == ch.STDERR:
                err.write(payload)
                err.flush()
            elif channel == ch.EXIT:
                return int(payload.decode() or 1)
            elif channel == ch.ERROR:
                print(f"gitops: {payload.decode(errors='replace')}", file=sys.stderr)
                return ERROR


# -- port-forward ---------------------------------------------------------------------------
def cmd_port_forward(args: argparse.Namespace) -> int:
    pairs = []
    for spec in args.ports:
        local, _, remote = spec.rpartition(":")
        local = local or remote
        if not (local.isdigit() and remote.isdigit() and 0 <= int(local) <= 65535
                and 1 <= int(remote) <= 65535):  # fmt: skip
            print(f"gitops: {spec!r}: expected [LOCAL:]REMOTE ports", file=sys.stderr)
            return ERROR
        pairs.append((int(local), int(remote)))
    pod, pairs = _target(args, pairs)
    listeners = []
    for local, remote in pairs:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", local))
        except OSError as exc:
            print(f"gitops: cannot listen on 127.0.0.1:{local}: {exc}", file=sys.stderr)
            return ERROR
        listener.listen(64)
        print(f"Forwarding from 127.0.0.1:{listener.getsockname()[1]} -> {remote}", flush=True)
        listeners.append((listener, remote))
    path = f"/portforward/{quote(pod['namespace'], safe='')}/{quote(pod['name'], safe='')}"
    for listener, remote in listeners:
        threading.Thread(target=_accept, args=(args, listener, f"{path}?port={remote}"),
                         daemon=True).start()  # fmt: skip
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        return OK
    return OK


def _target(
    args: argparse.Namespace, pairs: list[tuple[int, int]]
) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """The pod, and its ports: a Service's port is its target port on a ready endpoint."""
    kind, slash, name = args.target.partition("/")
    if not slash:
        return _pod(args, args.target), pairs
    if kind not in ("svc", "service", "services"):
        if kind in ("pod", "pods", "po"):
            return _pod(args, name), pairs
        print(f"gitops: {args.target!r}: expected POD, pod/POD or svc/NAME", file=sys.stderr)
        raise SystemExit(ERROR)
    query = f"?namespace={quote(args.namespace)}" if args.namespace else ""
    rows = [r for r in client.get(args.server, f"/api/v1/endpoints{query}") if r["name"] == name]
    ready = [(r, e) for r in rows for e in r["endpoints"]]
    if not ready:
        print(f"gitops: service {name} has no ready endpoint", file=sys.stderr)
        raise SystemExit(FAILED)
    mapped = []
    for local, remote in pairs:
        hit = next(((r, e) for r, e in ready if r["port"] == remote), None)
        if hit is None:
            print(f"gitops: service {name} has no port {remote}", file=sys.stderr)
            raise SystemExit(FAILED)
        mapped.append((local, int(hit[1]["port"])))
    endpoint = ready[0][1]
    return _pod(args, endpoint["pod"]), mapped


def _accept(args: argparse.Namespace, listener: socket.socket, path: str) -> None:
    while True:
        client_sock, _ = listener.accept()
        threading.Thread(target=_relay, args=(args, client_sock, path), daemon=True).start()


def _relay(args: argparse.Namespace, local: socket.socket, path: str) -> None:
    try:
        remote = _connect(args, path)
    except SystemExit:
        local.close()
        return

    def one_way(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    back = threading.Thread(target=one_way, args=(remote, local), daemon=True)
    back.start()
    one_way(local, remote)
    back.join()
    local.close()
    remote.close()


# -- proxy ----------------------------------------------------------------------------------
SERVICE_PROXY = re.compile(r"^/api/v1/namespaces/([a-z0-9-]{1,63})/services/([a-z0-9.-]{1,253})"
                           r"(?::(\d{1,5}))?/proxy(/.*)?$")  # fmt: skip
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
               "host", "authorization"}  # fmt: skip


def cmd_proxy(args: argparse.Namespace) -> int:
    """kubectl proxy's two halves: the reconciler's API with the token added, and each
    Service's HTTP through a port-forward to one of its ready pods (on whichever node)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    token = client.read_token()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *more: Any) -> None:
            pass  # quiet, as kubectl proxy is

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if 0 < length <= 64 << 20 else b""
            found = SERVICE_PROXY.match(self.path.split("?")[0])
            try:
                if found:
                    self._service(found, body)
                else:
                    self._api(body)
            except (OSError, SystemExit) as exc:
                self._fail(502, f"proxy: {exc}" if str(exc) else "proxy: the upstream failed")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        def _fail(self, code: int, message: str) -> None:
            data = json.dumps({"error": message}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _api(self, body: bytes) -> None:
            import urllib.error
            import urllib.request

            req = urllib.request.Request(args.server.rstrip("/") + self.path,  # noqa: S310
                                         data=body or None, method=self.command,
                                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            try:
                with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310 - our server
                    self._reply(resp.status, resp.headers.items(), resp.read())
            except urllib.error.HTTPError as exc:
                self._reply(exc.code, exc.headers.items(), exc.read())

        def _reply(self, code: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(code)
            for key, value in headers:
                if key.lower() not in HOP_HEADERS and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _service(self, found: re.Match[str], body: bytes) -> None:
            namespace, name, port, rest = found.groups()
            where = argparse.Namespace(**{**vars(args), "namespace": namespace})
            rows = [r for r in client.get(args.server, f"/api/v1/endpoints?namespace={namespace}")
                    if r["name"] == name and (port is None or r["port"] == int(port))]  # fmt: skip
            ready = [e for r in rows for e in r["endpoints"]]
            if not ready:
                self._fail(503, f'no endpoints available for service "{name}"')
                return
            endpoint = ready[0]
            pod = _pod(where, endpoint["pod"])
            to = f"{quote(namespace, safe='')}/{quote(pod['name'], safe='')}"
            upstream = _connect(where, f"/portforward/{to}?port={endpoint['port']}")
            query = "?" + self.path.split("?", 1)[1] if "?" in self.path else ""
            head = [f"{self.command} {rest or '/'}{query} HTTP/1.1", f"Host: {name}",
                    "Connection: close", f"Content-Length: {len(body)}"]  # fmt: skip
            head += [f"{k}: {v}" for k, v in self.headers.items()
                     if k.lower() not in HOP_HEADERS and k.lower() != "content-length"]  # fmt: skip
            upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            upstream.shutdown(socket.SHUT_WR)
            while data := upstream.recv(65536):  # the pod's whole answer, as it gave it
                self.wfile.write(data)
            upstream.close()
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"Starting to serve on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return OK
    return OK
