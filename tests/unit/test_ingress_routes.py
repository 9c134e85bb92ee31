"""Ingress routes on plain data: Kubernetes' precedence, one pool per Ingress, host and Service
port, what reloads and what does not; the configuration is checked by the real ``haproxy -c``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gitops.decide import ingress as di
from gitops.decide.desired import DesiredState
from gitops.decide.endpoints import Endpoint, PortEndpoints
from gitops.manifests import model as m
from gitops.manifests import parse_manifests
from gitops.traffic import httpconfig
from gitops.traffic.balancer import Balancer, render
from tests.helpers import dump, secret
from tests.tlscerts import make_cert, tls_secret
from tests.unit.test_ingress_manifests import NS, WEB, ingress, rule, svc

API = {"name": "api", "port": {"number": 80}}
BCRYPT = "alice:$2y$05$GEMGHXUsE140YGPzaeXKve/qW4vuisdIinXehFxxbRbz6DWTqQvji\n"


def desired(*docs: dict[str, Any]) -> DesiredState:
    return DesiredState("c1", parse_manifests({"i.yaml": dump(*docs)}), (NS,), ())


def eps(service: str, *ips: str) -> PortEndpoints:
    found = tuple(Endpoint(f"{service}-{ip}", "n1", ip, 8080) for ip in ips)
    return PortEndpoints(NS, service, "http", 80, None, "None", found)


def test_routes_are_ordered_as_kubernetes_matches_them() -> None:
    doc = ingress("site", [
        rule(None, ("/", "Prefix", WEB)),
        rule("*.example.com", ("/", "Prefix", WEB)),
        rule("a.example.com", ("/", "Prefix", WEB), ("/api", "Prefix", API),
             ("/api/v1", "Prefix", API), ("/api", "Exact", WEB)),
    ])  # fmt: skip
    table = di.compute(desired(svc(), svc("api"), doc), [eps("web", "10.0.0.1"), eps("api")])
    assert [(r.host, r.match, r.path) for r in table.routes] == [
        ("a.example.com", "Exact", "/api"),
        ("a.example.com", "Prefix", "/api/v1"),
        ("a.example.com", "Prefix", "/api"),
        ("a.example.com", "Prefix", "/"),
        ("*.example.com", "Prefix", "/"),
        ("", "Prefix", "/"),
    ]
    assert table.hosts == ("a.example.com", "*.example.com")
    names = [p.name for p in table.pools]
    assert (
        "ing:web:site:a.example.com:api:80" in names
        and "ing:web:site:_.example.com:web:80" in names
    )
    (entry,) = parse_manifests({"i.yaml": dump(svc(), svc("api"), doc)}).of(m.Ingress)
    assert di.health(entry, table) == (False, "no ready endpoint for api:80")


def test_endpoints_change_by_runtime_command_and_a_new_route_reloads() -> None:
    doc = ingress("site", [rule("a.example.com", ("/", "Prefix", WEB))])
    d = desired(svc(), doc)
    b = Balancer()
    assert b.update([], di.compute(d, [eps("web", "10.0.0.1")])).reload
    change = b.update([], di.compute(d, [eps("web", "10.0.0.1", "10.0.0.2")]))
    assert not change.reload
    assert change.commands == (
        "set server ing:web:site:a.example.com:web:80/s1 addr 10.0.0.2 port 8080",
        "set server ing:web:site:a.example.com:web:80/s1 state ready",
    )
    drop, gone = b.drop({"web-10.0.0.1"})
    assert gone == {"10.0.0.1:8080"}
    assert drop.commands == ("set server ing:web:site:a.example.com:web:80/s0 state maint",)
    more = ingress("site", [rule("a.example.com", ("/", "Prefix", WEB), ("/b", "Exact", WEB))])
    assert b.update([], di.compute(desired(svc(), more), [eps("web", "10.0.0.2")])).reload


def test_a_rotated_certificate_is_loaded_without_a_reload(tmp_path: Path) -> None:
    doc = ingress("site", [rule("a.example.com", ("/", "Prefix", WEB))],
                  tls=[{"hosts": ["a.example.com"], "secretName": "a"}])  # fmt: skip
    one, two = (
        make_cert(tmp_path, "1", ["a.example.com"]),
        make_cert(tmp_path, "2", ["a.example.com"]),
    )
    b = Balancer()
    b.update(
        [], di.compute(desired(svc(), tls_secret("a", NS, *one), doc), [eps("web", "10.0.0.1")])
    )
    change = b.update(
        [], di.compute(desired(svc(), tls_secret("a", NS, *two), doc), [eps("web", "10.0.0.1")])
    )
    assert not change.reload and [c.name for c in change.certs] == ["web_a.pem"]
    assert "PRIVATE" not in repr(change)  # key material is never in a repr (nor a log line)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")
def test_haproxy_accepts_the_configuration_of_every_feature(tmp_path: Path) -> None:
    crt, key = make_cert(tmp_path, "a", ["a.example.com"])
    doc = ingress("site", [
        rule("a.example.com", ("/", "Prefix", WEB), ("/api", "Prefix", WEB)),
        rule("*.b.example.com", ("/x", "Exact", WEB)),
    ], tls=[{"hosts": ["a.example.com"], "secretName": "a"}], annotations={
        "gitops.io/rewrite-target": "/", "gitops.io/auth-type": "basic",
        "gitops.io/auth-secret": "users", "gitops.io/whitelist-source-range": "127.0.0.0/8",
        "gitops.io/proxy-body-size": "1m", "gitops.io/proxy-read-timeout": "5",
    })  # fmt: skip
    regex = ingress("re", [rule("c.example.com", ("/s(/|$)(.*)", "ImplementationSpecific", WEB))],
                    defaultBackend={"service": WEB},
                    annotations={"nginx.ingress.kubernetes.io/use-regex": "true",
                                 "nginx.ingress.kubernetes.io/rewrite-target": "/$2"})  # fmt: skip
    d = desired(svc(), tls_secret("a", NS, crt, key), secret("users", NS, auth=BCRYPT), doc, regex)
    table = di.compute(d, [eps("web", "10.0.0.1")])
    b = Balancer()
    b.update([], table)
    certs = tmp_path / "certs"
    certs.mkdir()
    for c in table.certs:
        (certs / c.name).write_bytes(c.pem)
    (certs / httpconfig.CERT_LIST).write_text(httpconfig.cert_list(table, str(certs)))
    site = httpconfig.Site(("127.0.0.1",), 18080, 18443, str(certs), str(tmp_path / "m.sock"))
    text = render([], ["127.0.0.1"], str(tmp_path / "a.sock"), 1000, b.ingress, b.pools, site)
    (tmp_path / "h.cfg").write_text(text)
    check = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "h.cfg")],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr + text
    assert "user alice password '$2y$05$" in text
    assert "    default_backend ing:web:re:_:web:80" in text and "deny_status 404" not in text
    assert "replace-path '(?i)^/s(/|$)(.*).*' '/\\2'" in text
