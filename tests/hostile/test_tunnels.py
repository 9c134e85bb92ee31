"""``gitops exec`` and ``port-forward`` over the real stream listener, in front of a reconciler
on the in-memory node (whose command is ``cat``): frames both ways, the exit status, the
token, a refusal's reason, and a forwarded port's bytes."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gitops.model import sessions as ch
from gitops.nodes.memory import MemoryNode
from gitops.reconciler import Reconciler
from gitops.serve.tunnels import Tunnels
from tests.conftest import GitRemote, converge
from tests.helpers import deployment
from tests.hostile.test_front_door import IMAGE, api_of, make

TOKEN = "t0ken"


@pytest.fixture
def served(remote: GitRemote, tmp_path: Path) -> Iterator[tuple[str, int, Reconciler]]:
    remote.write("web.yaml", deployment(image=IMAGE, replicas=1))
    remote.push("web")
    reconciler = make(remote, tmp_path, MemoryNode("local", {IMAGE}))
    reconciler.settings = replace(reconciler.settings, api_token=TOKEN)
    converge(reconciler)
    tunnels = Tunnels("127.0.0.1", 0, TOKEN.encode(), reconciler.look, reconciler.exec_stream)
    tunnels.start()
    with api_of(reconciler) as (url, app):
        app.stream_port = tunnels.port
        yield url, tunnels.port, reconciler
    tunnels.stop()


def gitops(
    server: str, *args: str, token: str = TOKEN, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITOPS_API_TOKEN": token}
    # The flags before the command's "--", as kubectl takes them.
    cmd = [sys.executable, "-m", "gitops", args[0], "--server", server, *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, input=input)


def test_exec_passes_stdin_and_returns_the_exit_status(
    served: tuple[str, int, Reconciler],
) -> None:
    server, _, reconciler = served
    [pod] = reconciler.look().pods
    done = gitops(server, "exec", "-i", pod.name, "-n", "demo", "--", "sh", "-c", "cat; exit 7",
                  input="hello through the node\n")  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert done.stdout == "hello through the node\n"
    plain = gitops(server, "exec", pod.name, "--", "true")
    assert plain.returncode == 0 and plain.stdout == ""
    refused = gitops(server, "exec", pod.name, "--", "sh", token="wrong")
    assert refused.returncode == 2 and "need the token" in refused.stderr
    for args, said, code in [
        (("exec", "nope", "--", "sh"), 'pods "nope" not found', 1),
        (("exec", pod.name, "-c", "sidecar", "--", "sh"), "container sidecar is not running", 1),
        (("exec", pod.name), "give the command", 2),
    ]:
        bad = gitops(server, *args)
        assert bad.returncode == code and said in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr


def test_the_stream_listener_refuses_what_it_cannot_take(
    served: tuple[str, int, Reconciler],
) -> None:
    _, port, reconciler = served
    [pod] = reconciler.look().pods

    def ask(head: str) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head.encode())
            return s.recv(4096)

    auth = f"Authorization: Bearer {TOKEN}\r\n"
    assert ask(f"POST /exec/demo/{pod.name}?command=sh HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.1 401")  # fmt: skip
    assert ask(f"POST /portforward/demo/{pod.name}?port=80 HTTP/1.1\r\nUpgrade: tcp\r\n"
               "Authorization: Bearer nope\r\n\r\n").startswith(b"HTTP/1.1 401")  # fmt: skip
    assert ask(f"GET /exec/demo/{pod.name}?command=sh HTTP/1.1\r\n{auth}\r\n").startswith(
        b"HTTP/1.1 400")  # fmt: skip
    up = f"Connection: Upgrade\r\nUpgrade: tcp\r\n{auth}"
    assert ask(f"POST /portforward/demo/{pod.name}?port=0 HTTP/1.1\r\n{up}\r\n").startswith(
        b"HTTP/1.1 400")  # fmt: skip
    assert ask(f"POST /x/y HTTP/1.1\r\n{up}\r\n").startswith(b"HTTP/1.1 404")
    assert ask("garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # framed both ways
        s.sendall(f"POST /exec/demo/{pod.name}?command=cat&tty=true HTTP/1.1\r\n{up}\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        s.sendall(ch.resize_frame(120, 40) + ch.frame(ch.STDIN, b"typed") + ch.frame(ch.STDIN_EOF))
        reader = ch.FrameReader()
        got: list[tuple[int, bytes]] = []
        while not any(c == ch.EXIT for c, _ in got):
            got += reader.feed(s.recv(4096))
    assert (ch.STDOUT, b"typed") in got and (ch.EXIT, b"0") in got


def test_port_forward_relays_a_local_port_to_the_pod(served: tuple[str, int, Reconciler]) -> None:
    server, _, reconciler = served
    [pod] = reconciler.look().pods
    env = {**os.environ, "GITOPS_API_TOKEN": TOKEN}
    forward = subprocess.Popen(
        [sys.executable, "-m", "gitops", "port-forward", pod.name, "0:8080", "--server", server],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:") and line.endswith(" -> 8080\n")
        local = int(line.split()[2].rpartition(":")[2])
        for attempt in range(2):  # each connection is a tunnel of its own
            with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
                s.sendall(f"ping {attempt}".encode())
                s.shutdown(socket.SHUT_WR)
                echoed = b""
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    more = s.recv(4096)
                    if not more:
                        break
                    echoed += more
            assert echoed == f"ping {attempt}".encode()
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_proxy_passes_the_api_on_with_the_token(served: tuple[str, int, Reconciler]) -> None:
    server, _, reconciler = served
    [pod] = reconciler.look().pods
    env = {**os.environ, "GITOPS_API_TOKEN": TOKEN}
    proxy = subprocess.Popen([sys.executable, "-m", "gitops", "proxy", "-p", "0", "--server",
                              server], stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proxy.stdout is not None
        port = int(proxy.stdout.readline().rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/api/v1/namespaces/demo/pods/{pod.name}/log")  # no token given
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        answer.read()
        conn.request("GET", "/api/v1/namespaces/demo/services/none/proxy/")
        missing = conn.getresponse()
        assert missing.status == 503 and b"no endpoints available" in missing.read()
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
