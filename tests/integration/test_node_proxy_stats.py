"""A node's own proxy tells the reconciler what it sent each pod (``--node-proxy-stats-port``),
for the autoscalers' Pods and Object metrics: its configuration, rendered for a node, run by
the real HAProxy on loopback in front of a real HTTP server; the counts read back over the
stats page's secret path equal the requests sent, and the page answers nothing else."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.decide.endpoints import Endpoint, PortEndpoints
from gitops.nodes.memory import MemoryNode
from gitops.nodes.proxyimage import ADMIN_SOCKET
from gitops.traffic.nodeproxy import NodeProxies
from tests.integration.test_run import free_port, wait_for


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "index.html").write_text("ok\n")
    handler = lambda *a: _Quiet(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_a_node_proxy_counts_what_it_sent_each_pod_behind_a_secret_path(
    tmp_path: Path, backend: int
) -> None:
    node_port, stats_port = free_port(), free_port()
    node = MemoryNode("far")
    proxies = NodeProxies({"far": node}, {"far": "127.0.0.1"}, stats_port=stats_port)
    eps = (Endpoint("web-a", "far", "127.0.0.1", backend),)
    proxies.update([PortEndpoints("demo", "web", "http", 80, node_port, "None", eps)])
    assert node.proxy_config is not None
    config = node.proxy_config.decode().replace(ADMIN_SOCKET, str(tmp_path / "admin.sock"))
    (tmp_path / "haproxy.cfg").write_text(config)
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(tmp_path / "haproxy.cfg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{node_port}/"), 10, 0.1)
        for _ in range(7):
            with urllib.request.urlopen(f"http://127.0.0.1:{node_port}/", timeout=5) as r:
                assert r.read() == b"ok\n"
        time.sleep(0.2)
        counts = proxies.request_totals()
        assert counts.get("127.0.0.1", 0) >= 7, counts  # and the one wait_for sent
        with pytest.raises(urllib.error.HTTPError) as denied:  # the page has a secret path
            urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/;csv", timeout=5)
        assert denied.value.code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
