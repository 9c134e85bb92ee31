"""Ingress on a real engine and the real HAProxy, with certificates made by openssl: two hosts
and three paths over HTTP and HTTPS (SNI picks the certificate, curl --resolve to 127.0.0.1),
a rolling update and a certificate rotation under keep-alive load with no failed request, a
bad Ingress refused while the routes keep serving, and HAProxy's per-route metrics moving with
the traffic under a real Prometheus scrape."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import deployment, namespace
from tests.integration.test_prometheus import query
from tests.integration.test_run import free_port, get, wait_for
from tests.tlscerts import make_cert, tls_secret

NS = "ing"
A, B = "a.example.test", "b.example.test"


def app(name: str, image: str) -> list[dict[str, Any]]:
    doc = deployment(
        name=name, namespace=NS, image=image, replicas=2,
        container={
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                               "periodSeconds": 1},
        },
        strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    )  # fmt: skip
    doc["spec"]["selector"]["matchLabels"] = {"app": name}
    doc["spec"]["template"]["metadata"]["labels"] = {"app": name}
    svc = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80,
                                                        "targetPort": "http"}]},
    }  # fmt: skip
    return [doc, svc]


def route(host: str, path: str, service: str) -> dict[str, Any]:
    return {"host": host, "http": {"paths": [{"path": path, "pathType": "Prefix", "backend": {
        "service": {"name": service, "port": {"number": 80}}}}]}}  # fmt: skip


def ingresses(tls_hosts: list[str]) -> list[dict[str, Any]]:
    site = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "site", "namespace": NS},
        "spec": {
            "rules": [route(A, "/", "web"), route(B, "/", "api")],
            "tls": [{"hosts": [h], "secretName": h.split(".")[0]} for h in tls_hosts],
        },
    }  # fmt: skip
    # The third path strips its prefix: /api/version reaches the api pods as /version.
    api = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "api", "namespace": NS,
                     "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/",
                                     "nginx.ingress.kubernetes.io/ssl-redirect": "false"}},
        "spec": {"ingressClassName": "gitops", "rules": [route(A, "/api", "api")]},
    }  # fmt: skip
    return [site, api]


def curl(url: str, port: int, certs: Path | None = None) -> str:
    host = urllib.parse.urlsplit(url).hostname
    cmd = ["curl", "-sS", "--max-time", "5", "--resolve", f"{host}:{port}:127.0.0.1", url]
    cmd += ["--cacert", str(certs)] if certs else []
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    if out.returncode != 0:
        raise OSError(out.stderr.strip())
    return out.stdout.strip()


class Connection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1, naming the host in SNI as a browser would after DNS."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        super().__init__(host, port, context=context, timeout=5)
        self.ctx = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sock = self.ctx.wrap_socket(raw, server_hostname=self.host)


class Load:
    """Requests over keep-alive connections in a thread, bounded in count and time: a failed
    request is counted and its connection made anew."""

    def __init__(self, make: Any, host: str, limit: int = 12000, seconds: float = 150) -> None:
        self.make, self.host = make, host
        self.seen: list[str] = []
        self.failures: list[str] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limit, seconds), daemon=True)

    def _run(self, limit: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        conn = None
        while not self._stop.is_set() and len(self.seen) + len(self.failures) < limit:
            if time.monotonic() > deadline:
                break
            if conn is None:
                conn, self.connections = self.make(), self.connections + 1
            try:
                conn.request("GET", "/version", headers={"Host": self.host})
                resp = conn.getresponse()
                body = resp.read().decode().strip()
                if resp.status != 200:
                    raise OSError(f"HTTP {resp.status}")
                self.seen.append(body)
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None

    def __enter__(self) -> Load:
        self._thread.start()
        wait_for(lambda: len(self.seen) >= 100, 30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def running(
    remote: GitRemote, instance: str, tmp_path: Path, ports: tuple[int, int]
) -> Iterator[str]:
    port = free_port()
    flags = ("--ingress-http-port", str(ports[0]), "--ingress-https-port", str(ports[1]))
    proc = start_gitops(
        remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log", flags
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_gitops(proc)


def status_of(api: str, kind: str, name: str) -> dict[str, Any]:
    try:
        st = get(api + "/api/v1/status")
    except OSError:
        return {}
    return next((r for r in st["resources"] if (r["kind"], r["name"]) == (kind, name)), {})


def peer_cert(port: int, host: str, ctx: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as s,
    ):
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return der


def der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_ingress_routes_tls_zero_downtime_rotation_and_metrics(
    remote: GitRemote, images: Images, running: str, ports: tuple[int, int], tmp_path: Path,
    instance: str,
) -> None:  # fmt: skip
    http_port, https_port = ports
    v1, v2 = images["v1"].rsplit(":", 1)[1], images["v2"].rsplit(":", 1)[1]
    a_crt, a_key = make_cert(tmp_path / "c", "a", [A])
    b_crt, b_key = make_cert(tmp_path / "c", "b", [B])
    (tmp_path / "a.pem").write_bytes(a_crt)
    (tmp_path / "b.pem").write_bytes(b_crt)
    remote.write("ns.yaml", namespace(NS))
    remote.write("apps.yaml", *app("web", images["v1"]), *app("api", images["v2"]))
    remote.write("tls.yaml", tls_secret("a", NS, a_crt, a_key), tls_secret("b", NS, b_crt, b_key))
    remote.write("ingress.yaml", *ingresses([A, B]))
    remote.push("ingress")
    wait_for(lambda: status_of(running, "Ingress", "site").get("health") == "Healthy", 90, 0.3)

    # Two hosts, three paths, HTTP and HTTPS; each host's own certificate is the one served.
    wait_for(lambda: _answers(f"http://{A}:{http_port}/api/version", http_port) == v2, 30, 0.2)
    assert curl(f"https://{A}:{https_port}/version", https_port, tmp_path / "a.pem") == v1
    assert curl(f"https://{B}:{https_port}/version", https_port, tmp_path / "b.pem") == v2
    assert curl(f"http://{A}:{http_port}/api/version", http_port) == v2  # rewritten to /version
    with pytest.raises(OSError):  # b's certificate is not a's: SNI picked the right one
        curl(f"https://{A}:{https_port}/version", https_port, tmp_path / "b.pem")
    redirect = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve",
         f"{A}:{http_port}:127.0.0.1", f"http://{A}:{http_port}/version"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout  # fmt: skip
    assert redirect.startswith("308 https://a.example.test")  # a TLS host redirects (nginx's)
    unknown = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: c.example.test",
         f"http://127.0.0.1:{http_port}/"], capture_output=True, text=True, timeout=10, check=True,
    ).stdout  # fmt: skip
    assert unknown == "404"
    rows = get(running + f"/api/v1/ingresses?namespace={NS}")
    site = next(r for r in rows if r["name"] == "site")
    assert site["hosts"] == [A, B] and site["ports"] == [http_port, https_port]
    assert all(t["notAfter"] for t in site["tls"])
    assert {(r["host"], r["service"], r["endpoints"]) for r in site["rules"]} == {
        (A, "web", 2),
        (B, "api", 2),
    }
    key_files = list((tmp_path / "state" / "proxy" / "certs").iterdir())
    assert key_files and all(f.stat().st_mode & 0o077 == 0 for f in key_files)

    # A rolling update of web under keep-alive load over HTTPS: no request fails.
    ctx = ssl.create_default_context(cafile=str(tmp_path / "a.pem"))
    with Load(lambda: Connection(A, https_port, ctx), A) as load:
        remote.write("apps.yaml", *app("web", images["v2"]), *app("api", images["v2"]))
        remote.push("web v2")
        wait_for(lambda: load.seen[-20:] == [v2] * 20 and len(load.seen) >= 2000, 150, 0.2)
    print(f"\nrolling update through the Ingress: {len(load.seen)} requests over "
          f"{load.connections} connections, {len(load.failures)} failed")  # fmt: skip
    assert load.failures == [], load.failures[:5]
    assert len(load.seen) >= 2000 and load.connections < len(load.seen) / 10  # kept alive
    assert load.seen[0] == v1 and set(load.seen[: load.seen.index(v2)]) == {v1}

    # The certificate rotated by a commit: served to new connections, none failed meanwhile.
    new_crt, new_key = make_cert(tmp_path / "c", "a2", [A])
    (tmp_path / "both.pem").write_bytes(a_crt + new_crt)
    both = ssl.create_default_context(cafile=str(tmp_path / "both.pem"))
    with Load(lambda: Connection(A, https_port, both), A) as load:
        remote.write("tls.yaml", tls_secret("a", NS, new_crt, new_key),
                     tls_secret("b", NS, b_crt, b_key))  # fmt: skip
        remote.push("rotate a's certificate")
        wait_for(lambda: peer_cert(https_port, A, both) == der(new_crt), 60, 0.2)
        wait_for(lambda: len(load.seen) >= 1000, 60, 0.2)
    print(f"certificate rotation: {len(load.seen)} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]

    # A bad Ingress is refused with file, document and field; the routes keep serving.
    clash = ingresses([A, B])[1]
    clash["metadata"]["name"] = "clash"
    remote.write("zz-clash.yaml", clash)
    remote.push("a conflicting Ingress")
    wait_for(lambda: any("zz-clash.yaml:0: Ingress/clash: spec.rules[0].http.paths[0].path"
                         in e for e in get(running + "/api/v1/status")["errors"]), 60, 0.3)  # fmt: skip
    errors = get(running + "/api/v1/status")["errors"]
    assert any("already claimed by Ingress ing/api (ingress.yaml:1" in e for e in errors), errors
    assert curl(f"http://{A}:{http_port}/api/version", http_port) == v2
    _metrics_follow_traffic(running, http_port, tmp_path)


def _answers(url: str, port: int) -> str:
    try:
        return curl(url, port)
    except OSError:
        return ""


def _metrics_follow_traffic(api: str, http_port: int, tmp_path: Path) -> None:
    """A real Prometheus scrapes gitops: the api route's 2xx count grows with the requests
    sent, and the dashboard's Ingress panels and the 5xx alert evaluate against it."""
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus is not installed")
    deploy = ROOT / "deploy"
    config = yaml.safe_load((deploy / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["scrape_configs"][0]["static_configs"] = [
        {"targets": [urllib.parse.urlsplit(api).netloc]}
    ]
    config["rule_files"] = [str(deploy / "prometheus" / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    expr = ('sum(haproxy_backend_http_responses_total{namespace="ing",ingress="api",'
            f'host="{A}",service="api",code="2xx"}})')  # fmt: skip

    def count() -> float:
        try:
            result = query(base, expr)["data"]["result"]
        except OSError:
            return -1.0
        return float(result[0]["value"][1]) if result else -1.0

    try:
        wait_for(lambda: count() >= 0, 60, 0.5)
        before = count()
        for _ in range(50):
            _answers(f"http://{A}:{http_port}/api/version", http_port)
        wait_for(lambda: count() >= before + 50, 30, 0.5)
        print(f"prometheus: the api route's 2xx went from {before:.0f} to {count():.0f}")
        dashboard = json.loads((deploy / "grafana" / "gitops.json").read_text())
        panels = [p for p in dashboard["panels"] if "haproxy_backend" in json.dumps(p)]
        assert panels
        for panel in panels:
            for target in panel["targets"]:
                answer = query(base, target["expr"].replace("$job", ".*"))
                assert answer["status"] == "success" and answer["data"]["result"], panel["title"]
        with urllib.request.urlopen(base + "/api/v1/rules", timeout=10) as resp:
            rules = [r for g in json.load(resp)["data"]["groups"] for r in g["rules"]]
        alert = next(r for r in rules if r["name"] == "GitopsIngress5xxRatioHigh")
        assert alert["health"] in ("ok", "unknown") and alert["state"] == "inactive"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


SERVE = r"""# One connection on stdin/stdout (busybox nc -ll -e): the request's headers are the answer;
# an Upgrade: websocket request is switched (answering the RFC 6455 sample key, the one the test
# sends: HAProxy checks Sec-WebSocket-Accept), then every byte is echoed back.
hdrs=""
cr=$(printf '\r')
while IFS= read -r line; do line=${line%"$cr"}; [ -z "$line" ] && break; hdrs="$hdrs$line
"; done
if printf '%s' "$hdrs" | grep -qi '^upgrade: websocket'; then
  printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
  printf 'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'
  exec cat
fi
len=$(printf '%s' "$hdrs" | wc -c)
printf 'HTTP/1.1 200 OK\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' "$len" "$hdrs"
"""


def echo_app(image: str) -> list[dict[str, Any]]:
    doc, svc = app("echo", image)
    spec = doc["spec"]["template"]["spec"]
    c = spec["containers"][0]
    c["command"] = ["nc", "-ll", "-p", "8080", "-e", "/bin/sh", "/cfg/serve.sh"]
    c["readinessProbe"] = {"tcpSocket": {"port": "http"}, "periodSeconds": 1}
    c["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"}]
    spec["volumes"] = [{"name": "cfg", "configMap": {"name": "serve"}}]
    doc["spec"]["replicas"] = 1
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "serve", "namespace": NS},
          "data": {"serve.sh": SERVE}}  # fmt: skip
    return [cm, doc, svc]


def plain(name: str, host: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"rules": [route(host, "/", "echo")]},
    }  # fmt: skip


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_ingress_headers_websocket_body_limit_source_ranges_and_basic_auth(
    remote: GitRemote, images: Images, running: str, ports: tuple[int, int]
) -> None:
    port = ports[0]
    hashed = subprocess.run(["htpasswd", "-nbB", "alice", "s3cret"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    users = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "users", "namespace": NS},
             "stringData": {"auth": hashed}}  # fmt: skip
    remote.write("ns.yaml", namespace(NS))
    remote.write("echo.yaml", *echo_app(images["v1"]), users)
    remote.write("ingress.yaml",
        plain("ws", "ws.example.test", {}),
        plain("limited", "limited.example.test", {
            "gitops.io/proxy-body-size": "1k", "gitops.io/auth-type": "basic",
            "gitops.io/auth-secret": "users", "gitops.io/auth-realm": "Staff only"}),
        plain("private", "private.example.test",
              {"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8"}),
    )  # fmt: skip
    remote.push("echo")
    wait_for(lambda: status_of(running, "Ingress", "ws").get("health") == "Healthy", 90, 0.3)

    # X-Forwarded-*: the proxy's own; the client's X-Forwarded-For is replaced, not trusted.
    answer = raw(port, b"GET /x HTTP/1.1\r\nHost: ws.example.test\r\n"
                       b"X-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n").decode().lower()  # fmt: skip
    assert answer.startswith("http/1.1 200"), answer
    assert "x-forwarded-for: 127.0.0.1\n" in answer
    assert "6.6.6.6" not in answer
    assert "x-forwarded-proto: http" in answer and "x-forwarded-host: ws.example.test" in answer

    # WebSocket: upgraded, then bytes both ways through the tunnel.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /chat HTTP/1.1\r\nHost: ws.example.test\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        for word in (b"hello\n", b"again\n"):
            s.sendall(word)
            assert s.recv(64) == word

    # A body over proxy-body-size: 413; basic auth: 401 without, 200 with the user's password.
    big = raw(port, b"POST / HTTP/1.1\r\nHost: limited.example.test\r\nContent-Length: 2000\r\n"
                    b"Authorization: Basic YWxpY2U6czNjcmV0\r\nConnection: close\r\n\r\n" + b"x" * 2000)  # fmt: skip
    assert big.startswith(b"HTTP/1.1 413"), big[:100]
    denied = raw(port, b"GET / HTTP/1.1\r\nHost: limited.example.test\r\nConnection: close\r\n\r\n")
    assert denied.startswith(b"HTTP/1.1 401") and b'realm="Staff only"' in denied, denied[:300]
    wrong = raw(port, b"GET / HTTP/1.1\r\nHost: limited.example.test\r\n"
                      b"Authorization: Basic YWxpY2U6d3Jvbmc=\r\nConnection: close\r\n\r\n")  # fmt: skip
    assert wrong.startswith(b"HTTP/1.1 401")
    ok = raw(port, b"GET / HTTP/1.1\r\nHost: limited.example.test\r\n"
                   b"Authorization: Basic YWxpY2U6czNjcmV0\r\nConnection: close\r\n\r\n")  # fmt: skip
    assert ok.startswith(b"HTTP/1.1 200"), ok[:100]
    # whitelist-source-range 10.0.0.0/8: this machine's 127.0.0.1 is refused.
    private = raw(
        port, b"GET / HTTP/1.1\r\nHost: private.example.test\r\nConnection: close\r\n\r\n"
    )
    assert private.startswith(b"HTTP/1.1 403"), private[:100]
    out = subprocess.run(
        [sys.executable, "-m", "gitops", "get", "ingress", "-n", NS, "-o", "wide",
         "--server", running], capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "ws.example.test/→echo:80(1)" in out.stdout and "limited" in out.stdout
