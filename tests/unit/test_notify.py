"""Notifications: the formats, retries with back-off over real HTTP on 127.0.0.1, permanent
refusals, and the events the cluster and rollout records emit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gitops.config.settings import NodeConfig, Settings
from gitops.model import events as ev
from gitops.nodes.memory import MemoryNode
from gitops.report.notify import Notifier, Receiver
from gitops.state.cluster import Cluster
from gitops.state.history import History
from tests.conftest import wait_until


@pytest.fixture
def endpoint() -> Iterator[tuple[list[int], list[dict[str, Any]], str]]:
    """Answers with the status codes queued in ``codes`` (then 200); records bodies."""
    codes: list[int] = []
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            code = codes.pop(0) if codes else 200
            if code == 200:
                bodies.append(body)
            self.send_response(code)
            if code == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield codes, bodies, f"http://127.0.0.1:{httpd.server_address[1]}/hook/SECRET-PATH"
    httpd.shutdown()


EVENT = ev.Event(ev.ROLLOUT_FAILED, "no progress for 10s", 1.0, "shop", "web", "c" * 40, "x")


def test_retries_5xx_and_429_then_delivers(
    endpoint: tuple[list[int], list[dict[str, Any]], str],
) -> None:
    codes, bodies, url = endpoint
    codes += [500, 429, 503]
    notifier = Notifier((Receiver("generic", url),), "gitops test", first_delay=0.01)
    notifier(EVENT)
    wait_until(notifier.results, 10, 0.02)
    notifier.stop()
    assert notifier.results() == {("generic", ev.ROLLOUT_FAILED, "success"): 1}
    assert bodies[0]["kind"] == "RolloutFailed" and bodies[0]["severity"] == "warning"
    assert bodies[0]["source"] == "gitops test" and bodies[0]["commit"] == "c" * 40


def test_a_4xx_is_permanent_and_gives_up_after_the_attempts(
    endpoint: tuple[list[int], list[dict[str, Any]], str], caplog: pytest.LogCaptureFixture
) -> None:
    codes, bodies, url = endpoint
    codes += [404, 500, 500, 500]
    notifier = Notifier((Receiver("slack", url),), "t", attempts=3, first_delay=0.01)
    notifier(EVENT)
    notifier(EVENT)
    wait_until(lambda: sum(notifier.results().values()) == 2, 10, 0.02)
    notifier.stop()
    kind = ev.ROLLOUT_FAILED
    assert notifier.results() == {("slack", kind, "rejected"): 1, ("slack", kind, "failure"): 1}
    assert not bodies and codes == []  # 1 + 3 attempts, none more
    assert "SECRET-PATH" not in caplog.text  # a receiver's URL holds its credential


def test_slack_text_names_the_event_and_subject() -> None:
    text = ev.slack(EVENT, "gitops")["text"]
    assert text.startswith(":red_circle: *RolloutFailed* deployment shop/web at `cccccccccccc`")
    node = ev.Event(ev.NODE_READY, "Ready again", 1.0, name="node-2")
    assert "*NodeReady* node node-2" in ev.slack(node, "gitops")["text"]


def test_a_node_going_silent_and_coming_back_is_told(tmp_path: Path) -> None:
    now = [0.0]
    told: list[ev.Event] = []
    node = MemoryNode("node-1")
    settings = Settings(repo="r", nodes=(NodeConfig("node-1"),), node_grace=10, eviction_timeout=30)
    cluster = Cluster(settings, {"node-1": node}, History(tmp_path), lambda: now[0], told.append)
    cluster.check()
    node.down = True
    for t in (5.0, 11.0, 12.0):
        now[0] = t
        cluster.check()
    assert [e.kind for e in told] == [ev.NODE_NOT_READY]
    assert "does not answer" in told[0].message and told[0].name == "node-1"
    node.down = False
    now[0] = 13.0
    cluster.check()
    assert [e.kind for e in told] == [ev.NODE_NOT_READY, ev.NODE_READY]
