"""Certificates for tests, made by ``openssl`` as a user would make them."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any


def make_cert(directory: Path, name: str, hosts: list[str], days: int = 30) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a self-signed certificate for ``hosts``."""
    directory.mkdir(parents=True, exist_ok=True)
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    san = ",".join(f"DNS:{h}" for h in hosts)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", str(days),
         "-subj", f"/CN={hosts[0]}", "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt.read_bytes(), key.read_bytes()


def tls_secret(
    name: str, namespace: str, crt: bytes, key: bytes, kind: str = "kubernetes.io/tls"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": kind,
        "data": {
            "tls.crt": base64.b64encode(crt).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }
