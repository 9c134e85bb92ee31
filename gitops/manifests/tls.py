"""A ``kubernetes.io/tls`` Secret's certificate and key, read as HAProxy will serve them.

Stage: manifests, inside validation (``gitops.manifests.ingress``) and when the proxy's files are
made (``gitops.decide.ingress``). Messages name what is wrong and never quote key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import exceptions, x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

TLS_TYPE = "kubernetes.io/tls"
CRT, KEY = "tls.crt", "tls.key"


@dataclass(frozen=True)
class Certificate:
    names: tuple[str, ...]  # the DNS names it is for (subjectAltName, else the common name)
    not_before: float
    not_after: float


def read(crt: bytes, key: bytes, now: float) -> tuple[Certificate | None, list[tuple[str, str]]]:
    """The certificate, and (data key, problem) for each thing HAProxy would refuse or a client
    would: no certificate, an unreadable or encrypted key, a key that is not the certificate's,
    a certificate not yet or no longer valid at ``now``."""
    problems: list[tuple[str, str]] = []
    try:
        chain = x509.load_pem_x509_certificates(crt)
    except ValueError:
        return None, [(CRT, "is not a PEM certificate")]
    leaf = chain[0]
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except TypeError:
        problems.append((KEY, "is encrypted: HAProxy needs the key unencrypted"))
        private = None
    except (ValueError, exceptions.UnsupportedAlgorithm):
        problems.append((KEY, "is not a PEM private key"))
        private = None
    if private is not None and _spki(private.public_key()) != _spki(leaf.public_key()):
        problems.append((KEY, "does not match the certificate in tls.crt"))
    cert = Certificate(
        _names(leaf), leaf.not_valid_before_utc.timestamp(), leaf.not_valid_after_utc.timestamp()
    )
    if cert.not_after <= now:
        problems.append((CRT, f"the certificate expired at {_iso(cert.not_after)}"))
    elif cert.not_before > now:
        problems.append((CRT, f"the certificate is not valid before {_iso(cert.not_before)}"))
    return cert, problems


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate for ``names`` is valid for ``host`` (one-label wildcards)."""
    host = host.lower()
    for name in (n.lower() for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return not host.startswith("*.") or host == name
    return False


def _spki(public: object) -> bytes:
    return public.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
