"""gRPC probes against a real gRPC health server on loopback (grpcio's own HealthServicer):
SERVING passes; NOT_SERVING, an unknown service and a server without the health protocol fail
as answers; a port nobody listens on fails as a server still starting."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gitops.model.templates import ProbeSpec
from gitops.probing import podnet


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[int, health.HealthServicer]]:
    port = _free_port()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, srv)
    srv.add_insecure_port(f"127.0.0.1:{port}")
    srv.start()
    yield port, servicer
    srv.stop(None)


def _spec(port: int, service: str = "") -> ProbeSpec:
    return ProbeSpec("grpc", port, service=service, timeout=2)


def test_serving_passes_and_other_answers_fail_at_once(
    server: tuple[int, health.HealthServicer],
) -> None:
    port, servicer = server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("cart", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert podnet.probe(_spec(port), "127.0.0.1").ok
    not_serving = podnet.probe(_spec(port, "cart"), "127.0.0.1")
    assert not not_serving.ok and not_serving.answered
    assert "service unhealthy (responded with 'NOT_SERVING')" in not_serving.output
    unknown = podnet.probe(_spec(port, "nope"), "127.0.0.1")
    assert not unknown.ok and unknown.answered and "'nope' not found" in unknown.output
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert not podnet.probe(_spec(port), "127.0.0.1").ok


def test_a_server_without_the_health_protocol_and_no_server() -> None:
    port = _free_port()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    srv.add_insecure_port(f"127.0.0.1:{port}")
    srv.start()
    try:
        result = podnet.probe(_spec(port), "127.0.0.1")
        assert not result.ok and result.answered
        assert "does not implement the grpc health protocol" in result.output
    finally:
        srv.stop(None)
    nobody = podnet.probe(_spec(_free_port()), "127.0.0.1")
    assert not nobody.ok and not nobody.answered
    assert "failed to connect service" in nobody.output
