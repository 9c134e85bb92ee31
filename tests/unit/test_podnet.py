"""Probes from the reconciler's machine (gitops.probing.podnet) against a real HTTP server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gitops.model.templates import ProbeSpec
from gitops.nodes import routes
from gitops.probing import podnet

seen: list[dict[str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        seen.append(dict(self.headers))
        status = {"/healthz": 200, "/moved": 302, "/sick": 503}.get(self.path, 404)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://elsewhere.invalid/")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_passes_from_200_to_399_and_sends_the_probes_headers(port: int) -> None:
    spec = ProbeSpec("http", port, "/healthz", headers=(("X-Probe", "yes"),))
    assert podnet.probe(spec, "127.0.0.1").ok
    assert seen[-1]["X-Probe"] == "yes" and seen[-1]["User-Agent"] == podnet.USER_AGENT
    assert podnet.probe(ProbeSpec("http", port, "moved"), "127.0.0.1").ok  # not followed


def test_an_error_status_is_a_failure_the_server_answered(port: int) -> None:
    result = podnet.probe(ProbeSpec("http", port, "/sick"), "127.0.0.1")
    assert not result.ok and result.answered
    assert result.output == f"GET http://127.0.0.1:{port}/sick: HTTP 503 Service Unavailable"
    assert podnet.probe(ProbeSpec("http", port, "/nope"), "127.0.0.1").answered


def test_a_refused_connection_is_a_failure_nobody_answered() -> None:
    closed = _closed_port()
    for handler in ("http", "tcp"):
        result = podnet.probe(ProbeSpec(handler, closed), "127.0.0.1")
        assert not result.ok and not result.answered
        assert result.output.endswith("connection refused")


def test_tcp_passes_when_the_connection_opens(port: int) -> None:
    assert podnet.probe(ProbeSpec("tcp", port), "127.0.0.1").ok


def test_exec_probes_never_run_from_here() -> None:
    with pytest.raises(ValueError):
        podnet.probe(ProbeSpec("exec", command=("true",)), "127.0.0.1")


ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
br-1\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_only_directly_connected_networks_are_routed_from_here() -> None:
    assert routes.routed("172.18.0.5", ROUTES)  # a bridge of this host (172.18.0.0/16)
    assert routes.routed("10.0.0.7", ROUTES)  # eth0's own network
    assert not routes.routed("172.19.0.5", ROUTES)  # only through the default gateway
    assert not routes.routed("not an address", ROUTES)
    assert not routes.routed("172.18.0.5", ROUTES.splitlines()[0] + "\n")  # no routes at all
