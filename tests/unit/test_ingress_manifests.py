"""Ingress validation: hosts, paths, backends, TLS Secrets, annotations and conflicts, each
reported with file, document and field."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gitops.errors import ManifestError
from gitops.manifests import ingress as ing
from gitops.manifests import model as m
from gitops.manifests import parse_manifests
from tests.helpers import deployment, dump, secret
from tests.tlscerts import make_cert, tls_secret

NS = "web"


def svc(name: str = "web", ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": name}, "ports": ports or [{"name": "http", "port": 80}]},
    }


def ingress(name: str, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    annotations = spec.pop("annotations", {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"rules": rules, **spec},
    }


def rule(host: str | None, *paths: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "http": {
            "paths": [{"path": p, "pathType": t, "backend": {"service": b}} for p, t, b in paths]
        }
    }
    if host is not None:
        out["host"] = host
    return out


WEB = {"name": "web", "port": {"number": 80}}


def errors(*docs: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifests({"i.yaml": dump(*docs)})
    return [str(e) for e in info.value.errors]


def test_a_valid_ingress_is_read_with_its_paths_matched_as_kubernetes_says() -> None:
    doc = ingress("site", [rule("a.example.com", ("/", "Prefix", WEB), ("/x/", "Prefix", WEB),
                                ("/exact", "Exact", WEB), ("/impl/", "ImplementationSpecific",
                                                           {"name": "web", "port": {"name": "http"}}))])  # fmt: skip
    manifests = parse_manifests({"i.yaml": dump(svc(), doc)})
    (entry,) = ing.served(manifests)
    paths = entry.resource.spec.rules[0].http.paths  # type: ignore[union-attr]
    assert [ing.match_of(p, False) for p in paths] == [
        ("Prefix", "/"), ("Prefix", "/x"), ("Exact", "/exact"), ("Prefix", "/impl"),
    ]  # fmt: skip


def test_a_missing_service_or_port_is_named_with_its_field() -> None:
    doc = ingress("site", [rule("a.example.com", ("/", "Prefix", {"name": "nope", "port": {"number": 80}}),
                                ("/b", "Prefix", {"name": "web", "port": {"number": 81}}),
                                ("/c", "Prefix", {"name": "web", "port": {"name": "grpc"}}))])  # fmt: skip
    assert errors(svc(), doc) == [
        "i.yaml:1: Ingress/site: spec.rules[0].http.paths[0].backend.service.name: "
        "Service 'nope' not found in namespace 'web'",
        "i.yaml:1: Ingress/site: spec.rules[0].http.paths[1].backend.service.port.number: "
        "Service 'web' has no port 81 (its ports: 80)",
        "i.yaml:1: Ingress/site: spec.rules[0].http.paths[2].backend.service.port.name: "
        "Service 'web' has no port named 'grpc' (its ports: http)",
    ]


def test_two_ingresses_claiming_one_host_and_path_are_both_named() -> None:
    a = ingress("a", [rule("a.example.com", ("/api", "Prefix", WEB))])
    b = ingress("b", [rule("a.example.com", ("/api/", "ImplementationSpecific", WEB))])
    c = ingress("c", [rule("a.example.com", ("/api", "Exact", WEB))])  # Exact: another route
    assert errors(svc(), a, b, c) == [
        "i.yaml:2: Ingress/b: spec.rules[0].http.paths[0].path: Prefix path /api of host "
        "a.example.com is already claimed by Ingress web/a (i.yaml:1, spec.rules[0].http.paths[0])"
    ]


def test_hosts_and_paths_that_could_write_proxy_configuration_are_refused() -> None:
    doc = ingress("site", [rule("A.example.com", ("/x y", "Prefix", WEB)),
                           rule("10.0.0.1", ("/a'b", "Exact", WEB)),
                           rule("*.ok.example.com", ("/fine", "Prefix", WEB))])  # fmt: skip
    found = errors(svc(), doc)
    assert [e.split(": ")[2] for e in found] == [
        "spec.rules[0].host", "spec.rules[0].http.paths[0].path", "spec.rules[1].host",
        "spec.rules[1].http.paths[0].path",
    ]  # fmt: skip


def test_tls_secrets_are_checked_for_type_keys_match_and_hosts(tmp_path: Path) -> None:
    crt, key = make_cert(tmp_path, "a", ["a.example.com"])
    _, other_key = make_cert(tmp_path, "b", ["b.example.com"])
    docs = [
        svc(),
        tls_secret("opaque", NS, crt, key, kind="Opaque"),
        tls_secret("mismatch", NS, crt, other_key),
        tls_secret("good", NS, crt, key),
        ingress("site", [rule("a.example.com", ("/", "Prefix", WEB))], tls=[
            {"hosts": ["a.example.com"], "secretName": "opaque"},
            {"hosts": ["a.example.com"], "secretName": "mismatch"},
            {"hosts": ["b.example.com"], "secretName": "good"},
            {"hosts": ["a.example.com"], "secretName": "absent"},
        ]),
    ]  # fmt: skip
    assert errors(*docs) == [
        "i.yaml:4: Ingress/site: spec.tls[0].secretName: Secret 'opaque' (i.yaml:1) is of type "
        "'Opaque', not 'kubernetes.io/tls'",
        "i.yaml:4: Ingress/site: spec.tls[1].secretName: Secret 'mismatch' (i.yaml:2): tls.key "
        "does not match the certificate in tls.crt",
        "i.yaml:4: Ingress/site: spec.tls[2].hosts[0]: the certificate of Secret 'good' "
        "(i.yaml:3) is not for b.example.com (it is for: a.example.com)",
        "i.yaml:4: Ingress/site: spec.tls[3].secretName: Secret 'absent' not found in namespace "
        "'web'",
    ]
    assert not any("PRIVATE" in e or "BEGIN" in e for e in errors(*docs))


def test_an_expired_or_unreadable_certificate_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com")])
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(past).not_valid_after(past + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    docs = [
        svc(),
        tls_secret("old", NS, pem, key_pem),
        tls_secret("junk", NS, b"not a certificate", key_pem),
        ingress("site", [rule("a.example.com", ("/", "Prefix", WEB))], tls=[
            {"hosts": ["a.example.com"], "secretName": "old"},
            {"hosts": ["a.example.com"], "secretName": "junk"},
        ]),
    ]  # fmt: skip
    assert errors(*docs) == [
        "i.yaml:3: Ingress/site: spec.tls[0].secretName: Secret 'old' (i.yaml:1): tls.crt the "
        "certificate expired at 2020-01-02T00:00:00Z",
        "i.yaml:3: Ingress/site: spec.tls[1].secretName: Secret 'junk' (i.yaml:2): tls.crt is "
        "not a PEM certificate",
    ]


def test_annotations_are_read_and_bad_ones_named() -> None:
    good = {
        "nginx.ingress.kubernetes.io/ssl-redirect": "false",
        "gitops.io/rewrite-target": "/",
        "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "120",
        "nginx.ingress.kubernetes.io/whitelist-source-range": "127.0.0.1/32, 10.0.0.0/8",
    }
    opts, problems = ing.options(good)
    assert problems == []
    assert opts == ing.Options(
        ssl_redirect=False, rewrite_target="/", body_limit=8 << 20, read_timeout=120,
        allow=("127.0.0.1/32", "10.0.0.0/8"),
    )  # fmt: skip
    bad = {
        "gitops.io/ssl-redirect": "yes",
        "gitops.io/proxy-body-size": "lots",
        "gitops.io/proxy-read-timeout": "0",
        "gitops.io/whitelist-source-range": "10.0.0.0/33",
        "gitops.io/auth-type": "digest",
    }
    doc = ingress("site", [rule("a.example.com", ("/", "Prefix", WEB))], annotations=bad)
    assert sorted(e.split(": ", 3)[2] for e in errors(svc(), doc)) == [
        "metadata.annotations.gitops.io/auth-type",
        "metadata.annotations.gitops.io/proxy-body-size",
        "metadata.annotations.gitops.io/proxy-read-timeout",
        "metadata.annotations.gitops.io/ssl-redirect",
        "metadata.annotations.gitops.io/whitelist-source-range",
    ]


def test_basic_auth_needs_hashes_haproxy_can_check() -> None:
    md5 = "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n"
    doc = ingress("site", [rule("a.example.com", ("/", "Prefix", WEB))], annotations={
        "nginx.ingress.kubernetes.io/auth-type": "basic",
        "nginx.ingress.kubernetes.io/auth-secret": "users",
    })  # fmt: skip
    found = errors(svc(), secret("users", NS, auth=md5), doc)
    assert len(found) == 1 and "htpasswd -B" in found[0] and "$apr1$abc" not in found[0]
    assert found[0].startswith(
        "i.yaml:2: Ingress/site: metadata.annotations.nginx.ingress.kubernetes.io/auth-secret:"
    )
    bcrypt = "alice:$2y$05$abcdefghijklmnopqrstuu5s8W0Yk4M9Kx0pPpP5yT3W7hKqzv1F.\n"
    parse_manifests({"i.yaml": dump(svc(), secret("users", NS, auth=bcrypt), doc)})


def test_an_ingress_of_another_class_is_not_gitops_and_is_not_checked() -> None:
    nginx = ingress("other", [rule("a.example.com", ("/", "Prefix", {"name": "nope", "port": {"number": 1}}))],
                    ingressClassName="nginx")  # fmt: skip
    manifests = parse_manifests({"i.yaml": dump(svc(), nginx, deployment(namespace=NS))})
    (entry,) = manifests.of(m.Ingress)
    assert ing.served(manifests) == []
    assert ing.not_served(entry.resource, []) is not None
    default = {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "nginx", "annotations": {ing.DEFAULT_CLASS: "true"}},
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }  # fmt: skip
    plain = ingress("plain", [rule("a.example.com", ("/", "Prefix", WEB))])
    manifests = parse_manifests({"i.yaml": dump(svc(), plain, default)})
    assert ing.served(manifests) == []  # the default class is ingress-nginx's
    assert manifests.of(m.IngressClass)[0].namespace == ""
