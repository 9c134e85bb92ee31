"""gRPC probes, run from this machine against a pod's address as the kubelet runs them: the
standard health protocol (``grpc.health.v1.Health/Check``) over an insecure channel.

The only module that imports ``grpc``. Kubernetes' rules: the probe passes when the server
answers ``SERVING`` for the probe's ``service`` (empty: the server as a whole); an answer of
anything else, or a server that does not implement the protocol, fails and counts at once (it
answered); a connection refused or timed out fails as a server still starting does.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gitops.model.templates import ProbeSpec
from gitops.probing.probes import ProbeResult

_OPTIONS = [("grpc.enable_retries", 0), ("grpc.primary_user_agent", "gitops-probe/1")]


def check(spec: ProbeSpec, ip: str) -> ProbeResult:
    target = f"{ip}:{int(spec.port or 0)}"
    channel = grpc.insecure_channel(target, options=_OPTIONS)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=spec.service)
        reply = stub.Check(request, timeout=float(spec.timeout))
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return ProbeResult(
                False, f"{target}: this server does not implement the grpc health protocol", True
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ProbeResult(False, f"{target}: timeout: health rpc did not complete within "
                               f"{spec.timeout}s")  # fmt: skip
        if code == grpc.StatusCode.NOT_FOUND:  # the server knows no such service
            return ProbeResult(False, f"{target}: service {spec.service!r} not found", True)
        detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        return ProbeResult(False, f"{target}: failed to connect service: {detail}")
    finally:
        channel.close()
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return ProbeResult(True, "")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return ProbeResult(False, f"{target}: service unhealthy (responded with {status!r})", True)
