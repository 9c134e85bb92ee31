"""HTTP and TCP probes run from this machine against a pod's address, as the kubelet probes.

The prober's other way is a ``docker exec`` of busybox ``wget``/``nc`` in the pod's pause
container: a runc process on the engine per probe, which at a probe every 0.1 s per starting
pod competes with the containers being created for the same CPU. A probe from here is one
socket: no engine call at all. It needs the pod's bridge to be routed from this machine, which
holds for an engine on this machine (the bridge is one of this host's interfaces,
``gitops.nodes.routes``) and is told by the node's ``probes`` setting otherwise
(``gitops.config.nodes``).

Kubernetes' rules: an HTTP probe passes on a status from 200 to 399 (a redirect is not
followed: it passes, as the kubelet passes a redirect off the pod), HTTPS skips certificate
checks, the probe's headers are sent as given; a TCP probe passes when the connection opens.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Final

from gitops.model.templates import ProbeSpec
from gitops.probing import grpcprobe
from gitops.probing.probes import ProbeResult

USER_AGENT: Final = "gitops-probe/1"
_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


def probe(spec: ProbeSpec, ip: str) -> ProbeResult:
    """Run an HTTP, TCP or gRPC probe against ``ip``, bounded by the probe's timeout."""
    if spec.handler == "http":
        return http_get(spec, ip)
    if spec.handler == "tcp":
        return tcp_connect(spec, ip)
    if spec.handler == "grpc":
        return grpcprobe.check(spec, ip)
    raise ValueError(f"a {spec.handler} probe runs in the container, not from here")


def http_get(spec: ProbeSpec, ip: str) -> ProbeResult:
    path = spec.path if spec.path.startswith("/") else "/" + spec.path
    port = int(spec.port or 0)
    url = f"{spec.scheme.lower()}://{ip}:{port}{path}"
    conn: http.client.HTTPConnection
    if spec.scheme.upper() == "HTTPS":
        conn = http.client.HTTPSConnection(ip, port, timeout=spec.timeout, context=_INSECURE)
    else:
        conn = http.client.HTTPConnection(ip, port, timeout=spec.timeout)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **dict(spec.headers)}
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read(10 * 1024)  # what the kubelet reads of a body, at most
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, f"GET {url}: {_why(exc)}")
    finally:
        conn.close()
    if 200 <= resp.status < 400:
        return ProbeResult(True, "")
    # The server is up and answered that it is not well: unlike a refused connection, this is
    # no server still starting (``gitops.probing.probes`` counts it at once).
    return ProbeResult(False, f"GET {url}: HTTP {resp.status} {resp.reason}", answered=True)


def tcp_connect(spec: ProbeSpec, ip: str) -> ProbeResult:
    port = int(spec.port or 0)
    try:
        socket.create_connection((ip, port), timeout=spec.timeout).close()
    except OSError as exc:
        return ProbeResult(False, f"connect {ip}:{port}: {_why(exc)}")
    return ProbeResult(True, "")


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
