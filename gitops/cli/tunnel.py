"""``gitops exec`` and ``gitops port-forward``: to a pod on whichever node holds it, through the
running reconciler's stream listener (``gitops.serve.tunnels``) and its token, so a user needs
no access to any engine.

    gitops exec POD [-c C] [-i] [-t] -- CMD [ARG...]   exits with the command's exit status
    gitops port-forward POD|svc/NAME [LOCAL:]REMOTE    listens on 127.0.0.1 only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from gitops.cli import client
from gitops.cli.common import ERROR, FAILED, OK
from gitops.config.tokens import api_token, default_state_dir
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


# -- shared ---------------------------------------------------------------------------------
def _pod(args: argparse.Namespace, name: str) -> dict[str, Any]:
    query = f"?namespace={quote(args.namespace)}" if args.namespace else ""
    found = [p for p in client.get(args.server, f"/api/v1/pods{query}") if p["name"] == name]
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
    try:
        token = api_token(default_state_dir())
    except OSError as exc:
        print(f"gitops: cannot read the API token: {exc}", file=sys.stderr)
        raise SystemExit(ERROR) from exc
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
